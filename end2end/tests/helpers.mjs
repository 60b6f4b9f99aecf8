// Shared steps: who the test users are, and signing in through the real form.
import { expect } from '@playwright/test';

export const PASSWORD = process.env.QUIESCE_E2E_PASSWORD;
export const USERS = JSON.parse(process.env.QUIESCE_E2E_USERS || '{}');

// Signs in through the login page (after hydration, so the form posts through the WASM client).
export async function signIn(page, role, next = '/') {
  await page.goto(`/login?next=${encodeURIComponent(next)}`);
  await hydrated(page);
  await page.getByLabel('Username').fill(USERS[role]);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('#whoami-role')).toHaveText(role);
}

// Signs an API request context in (JSON body, like a script would).
export async function signInRequest(request, role) {
  const r = await request.post('/api/login', { data: { username: USERS[role], password: PASSWORD } });
  expect(r.status()).toBe(200);
}

// Waits until the WASM has hydrated the page.
export async function hydrated(page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}
