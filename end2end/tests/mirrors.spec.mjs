// The Mirrors page on the demo's real replication: what a viewer and an operator can do. Status
// changes arrive through the live event stream (no reloads, no refresh button).
import { test, expect } from '@playwright/test';
import { hydrated, signIn } from './helpers.mjs';

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
  await target.getByRole('button', { name: 'Pause' }).click();
  await expect(page.locator('#mirrors-outcome')).toContainText(name);
  await expect(target).toHaveAttribute('data-status', 'paused', { timeout: 30_000 });
  await expect(target).toContainText('user');
  await target.getByRole('button', { name: 'Resume' }).click();
  await expect(target).toHaveAttribute('data-status', 'running', { timeout: 30_000 });
});
