// Maintenance in the browser, on the demo's replicating mirrors: an operator enables with a
// reason, sees every mirror paused and the banner on other pages, then disables.
import { test, expect } from '@playwright/test';
import { signIn, signInRequest } from './helpers.mjs';

// One window at a time across the whole server: these run one after the other.
test.describe.configure({ mode: 'serial' });

test('an operator enables maintenance, sees the banner, and disables it', async ({ page }) => {
  await signIn(page, 'operator');
  await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'normal');
  await expect(page.locator('#plan-pause')).toBeVisible();
  await page.getByLabel(/^Reason/).fill('database upgrade');
  await page.getByLabel(/I have read the plan/).check();
  await page.getByRole('button', { name: 'Enable maintenance' }).click();
  await expect(page.locator('#maintenance-outcome')).toContainText('Maintenance window');
  await expect(async () => {
    await page.locator('#refresh-status').click();
    await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'enabled', { timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.locator('#window-mirrors tbody tr')).toHaveCount(3);

  await page.getByRole('link', { name: 'Mirrors' }).click();
  await expect(page.locator('#maintenance-banner')).toContainText('database upgrade');
  await expect(page.locator('#mirrors-table tbody tr[data-status="paused"]')).toHaveCount(3);

  await page.getByRole('link', { name: 'Maintenance', exact: true }).click();
  await page.getByRole('button', { name: 'Disable maintenance' }).click();
  await expect(async () => {
    await page.locator('#refresh-status').click();
    await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'normal', { timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  await page.getByRole('link', { name: 'Mirrors' }).click();
  await expect(page.locator('#maintenance-banner')).toHaveCount(0);
  await expect(async () => {
    await page.locator('#refresh-mirrors').click();
    await expect(page.locator('#mirrors-table tbody tr[data-status="running"]')).toHaveCount(3, { timeout: 1000 });
  }).toPass({ timeout: 30_000 });
});

test('the window is in the history with its per-mirror outcomes and exports', async ({ page }) => {
  await signIn(page, 'viewer', '/history');
  const row = page.locator('#history-table tbody tr', { hasText: 'database upgrade' }).first();
  await expect(row).toContainText('disabled');
  await row.getByRole('link').click();
  await expect(page.locator('#window-phase')).toHaveText('disabled');
  await expect(page.locator('#timeline li')).not.toHaveCount(0);
  const outcomes = page.locator('#window-mirrors tbody tr');
  await expect(outcomes).toHaveCount(3);
  for (const r of await outcomes.all()) await expect(r).toContainText('resumed');
  const csvUrl = await page.locator('#export-csv').getAttribute('href');
  const csv = await page.request.get(csvUrl);
  expect(csv.status()).toBe(200);
  const lines = (await csv.text()).trim().split('\n');
  expect(lines).toHaveLength(4);
  expect(lines.slice(1).every((l) => l.includes('database upgrade') && l.includes(',resumed,'))).toBe(true);
  const json = await page.request.get(await page.locator('#export-json').getAttribute('href'));
  expect((await json.json()).mirrors).toHaveLength(3);
});

test('a viewer sees no maintenance buttons and the server refuses a direct call', async ({ page, request }) => {
  await signIn(page, 'viewer');
  await expect(page.locator('#phase')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Enable maintenance' })).toHaveCount(0);
  await signInRequest(request, 'viewer');
  const r = await request.post('/api/maintenance/enable', { data: { reason: 'sneaky', scope: 'all' } });
  expect(r.status()).toBe(403);
});
