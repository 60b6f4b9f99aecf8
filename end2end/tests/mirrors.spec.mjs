// The Mirrors page on the demo's real replication: what a viewer and an operator can do. Status
// changes arrive through the live event stream (no reloads, no refresh button).
import { test, expect } from '@playwright/test';
import { hydrated, signIn, signInRequest } from './helpers.mjs';

test('a viewer sees the replicating mirrors but no buttons', async ({ page }) => {
  await signIn(page, 'viewer', '/mirrors');
  const rows = page.locator('#mirrors-table tbody tr');
  await expect(rows).toHaveCount(3);
  await expect(page.getByRole('button', { name: 'Pause' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Drop' })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Drop…' })).toHaveCount(0);
  await expect(page.locator('#create-mirror-form')).toHaveCount(0);
});

test('an operator pauses and resumes a mirror', async ({ page }) => {
  await signIn(page, 'operator', '/mirrors');
  await hydrated(page);
  const row = page.locator('#mirrors-table tbody tr').first();
  await expect(row).toBeVisible();
  const name = await row.getAttribute('data-mirror');
  const target = page.locator(`#mirrors-table tr[data-mirror="${name}"]`);
  // The demo mirrors reach running on their own (snapshot of a small table, then CDC).
  await expect(target).toHaveAttribute('data-status', 'running', { timeout: 30_000 });
  const runningSince = Date.parse(await target.locator('.since').getAttribute('data-since'));
  await target.getByRole('button', { name: 'Pause' }).click();
  await expect(page.locator('#mirrors-outcome')).toContainText(name);
  await expect(target).toHaveAttribute('data-status', 'paused', { timeout: 30_000 });
  await expect(target).toContainText('user');
  // "In this state since": the row says when the mirror paused, not when it started running.
  await expect(target.locator('.since')).toHaveText(/^since [A-Z][a-z]{2} \d{1,2} \d{2}:\d{2} UTC$/);
  const pausedSince = Date.parse(await target.locator('.since').getAttribute('data-since'));
  expect(pausedSince).toBeGreaterThan(runningSince);
  await target.getByRole('button', { name: 'Resume' }).click();
  await expect(target).toHaveAttribute('data-status', 'running', { timeout: 30_000 });
});

// The filter is a plain GET form: the same URL lists the same mirrors with and without
// JavaScript, and the count line says how many match out of how many.
for (const js of [true, false]) {
  test(`the list filters by name and status ${js ? 'with' : 'without'} JavaScript`, async ({ browser }) => {
    const context = await browser.newContext({ javaScriptEnabled: js });
    await signInRequest(context.request, 'viewer');
    const page = await context.newPage();
    await page.goto('/mirrors');
    if (js) await hydrated(page);
    const rows = page.locator('#mirrors-table tbody tr');
    await expect(rows).toHaveCount(3);
    await expect(rows.first().locator('.since')).toHaveText(/^since [A-Z][a-z]{2} \d{1,2} \d{2}:\d{2} UTC$/);
    const name = await rows.first().getAttribute('data-mirror');
    await page.locator('#filter-name').fill(name.toUpperCase());
    await page.locator('#mirror-filters').getByRole('button', { name: 'Filter' }).click();
    await expect(page).toHaveURL(new RegExp(`name=${encodeURIComponent(name.toUpperCase())}`));
    await expect(rows).toHaveCount(1);
    await expect(rows.first()).toHaveAttribute('data-mirror', name);
    await expect(page.locator('#mirror-counts')).toContainText('1 of 1 matching');
    // A status nobody is in: nothing matches, and the page says so rather than "no mirrors".
    await page.goto('/mirrors?status=failed');
    await expect(page.locator('#no-mirrors')).toHaveText('No mirror matches this filter.');
    await expect(page.locator('#filter-status')).toHaveValue('failed');
    await page.getByRole('link', { name: 'Clear' }).click();
    await expect(rows).toHaveCount(3);
    await context.close();
  });
}
