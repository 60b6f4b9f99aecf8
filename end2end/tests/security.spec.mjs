// The Content-Security-Policy in a real browser: every page hydrates under it, and the browser
// reports no violation. Also the Account page: changing one's own password.
import { test, expect } from '@playwright/test';
import { PASSWORD, USERS, hydrated, signIn } from './helpers.mjs';

// Collects CSP violations (the page's own event) and console errors naming the policy.
async function watchViolations(page) {
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Content-Security-Policy/i.test(m.text())) problems.push(m.text());
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`Content Security Policy violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  return problems;
}

test('every page hydrates under the Content-Security-Policy without a violation', async ({ page }) => {
  const problems = await watchViolations(page);
  const r = await page.goto('/login');
  expect(r.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
  await hydrated(page);
  await signIn(page, 'admin');
  for (const path of ['/', '/mirrors', '/peers', '/history', '/users', '/account']) {
    await page.goto(path);
    await hydrated(page);
  }
  expect(problems).toEqual([]);
});

test('a user an admin created must choose a password on the Account page first', async ({ page, request }) => {
  // A user an admin creates must choose their own password first.
  const admin = await request.post('/api/login', { data: { username: USERS.admin, password: PASSWORD } });
  expect(admin.status()).toBe(200);
  const name = `acct-${Date.now().toString(36)}`;
  const made = await request.post('/api/users/create', { data: { username: name, password: 'an initial passphrase', role: 'viewer' } });
  expect(made.status()).toBe(200);

  const problems = await watchViolations(page);
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill('an initial passphrase');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.locator('#must-change')).toBeVisible();
  await page.goto('/mirrors');
  await expect(page).toHaveURL(/\/account$/);
  await hydrated(page);
  await page.locator('#current-password').fill('an initial passphrase');
  await page.locator('#new-password').fill('password1234');
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page.locator('#account-outcome')).toContainText('does not meet the rules');
  await page.locator('#current-password').fill('an initial passphrase');
  await page.locator('#new-password').fill('my own sturdy phrase');
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator('#whoami-role')).toHaveText('viewer');
  expect(problems).toEqual([]);
});
