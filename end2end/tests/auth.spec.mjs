// Signing in and out in a real browser, and what each role sees.
import { test, expect } from '@playwright/test';
import { PASSWORD, USERS, hydrated, signIn } from './helpers.mjs';

test('a page asked for without a session leads to sign-in and back', async ({ page }) => {
  await page.goto('/users');
  await expect(page).toHaveURL(/\/login\?next=%2Fusers/);
  await hydrated(page);
  await page.getByLabel('Username').fill(USERS.admin);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/users$/);
  await expect(page.locator('#users-table')).toContainText(USERS.viewer);
});

test('a wrong password is refused without saying whether the user exists', async ({ page }) => {
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Username').fill(USERS.viewer);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('#login-error')).toHaveText('invalid username or password');
  await expect(page).toHaveURL(/\/login/);
});

test('a viewer and an operator see what their role allows, and sign out', async ({ page }) => {
  await signIn(page, 'viewer');
  await expect(page.locator('#access-note')).toContainText('You are a viewer');
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login/);
  // The old session is gone: pages send us back to sign-in.
  await page.goto('/');
  await expect(page).toHaveURL(/\/login/);

  await signIn(page, 'operator');
  await expect(page.locator('#access-note')).toContainText('You are an operator');
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login/);
});

test('an admin manages users on the Users page', async ({ page }) => {
  await signIn(page, 'admin');
  await page.getByRole('link', { name: 'Users' }).click();
  await expect(page).toHaveURL(/\/users$/);
  const name = `made-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6)}`;
  await page.locator('#new-username').fill(name);
  await page.locator('#new-password').fill('a long enough password');
  await page.locator('#new-role').selectOption('operator');
  await page.getByRole('button', { name: 'Add user' }).click();
  await expect(page.locator('#users-outcome')).toHaveText(`Created ${name}.`);
  const row = page.locator(`tr[data-username="${name}"]`);
  await expect(row).toBeVisible();
  await row.getByRole('button', { name: 'Disable' }).click();
  await expect(page.locator('#users-outcome')).toHaveText(`${name} is disabled.`);
  await expect(page.locator('#audit-table')).toContainText('user disabled');
});
