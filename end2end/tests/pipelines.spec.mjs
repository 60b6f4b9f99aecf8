// Maintenance from a pipeline, end to end: an operator makes an API token on the Account page,
// plans a window in the browser, watches it start on its own (through the live stream, no
// reload), and the `quiesce` CLI — the post-upgrade hook — ends it with that token.
import { test, expect } from '@playwright/test';
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hydrated, signIn } from './helpers.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = process.env.QUIESCE_CLI_BIN || join(root, 'target', 'debug', 'quiesce');

test.describe.configure({ mode: 'serial' });

// A UTC time `offsetMs` from now, as a datetime-local field takes it (the page's times are UTC).
function utc(offsetMs) {
  return new Date(Date.now() + offsetMs).toISOString().slice(0, 19);
}

// Runs the CLI without blocking the test's event loop (the page keeps receiving events).
function run(args, env) {
  return new Promise((resolveRun) => {
    const child = spawn(cli, args, { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (code) => resolveRun({ code, stdout, stderr }));
  });
}

test('a window planned in the browser starts on its own and the CLI ends it', async ({ page, baseURL }) => {
  test.setTimeout(120_000);
  await signIn(page, 'operator', '/account');
  await hydrated(page);
  await page.getByLabel('Name').fill(`e2e-pipeline-${Date.now()}`);
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = (await page.locator('#token-secret').textContent()).trim();
  expect(secret).toMatch(/^qzt_/);

  await page.getByRole('link', { name: 'Planned', exact: true }).click();
  await hydrated(page);
  await page.locator('#plan-reason').fill('planned from the browser');
  await page.locator('#plan-start').fill(utc(10_000));
  await page.locator('#plan-end').fill(utc(3_600_000));
  await page.getByRole('button', { name: 'Plan window' }).click();
  const row = page.locator('#planned-table tbody tr', { hasText: 'planned from the browser' });
  await expect(row).toContainText('planned');
  await page.getByRole('link', { name: 'Maintenance', exact: true }).click();
  await hydrated(page);
  await expect(page.locator('#live-state')).toHaveAttribute('data-state', 'live');
  await expect(page.locator('#planned-banner')).toContainText('planned from the browser');

  // It starts on its own; the page learns it from the live stream.
  await expect(page.locator('#maintenance-banner')).toContainText('planned from the browser', { timeout: 40_000 });
  await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'enabled', { timeout: 40_000 });

  // The post-upgrade hook ends it.
  const r = await run(['maintenance', 'disable', '--wait', '--timeout', '60s'], {
    QUIESCE_URL: baseURL,
    QUIESCE_TOKEN: secret,
  });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toContain('maintenance disabled');
  await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'normal', { timeout: 30_000 });
  await expect(page.locator('#maintenance-banner')).toHaveCount(0);
  // The plan keeps its planned times beside the window it started.
  await page.getByRole('link', { name: 'Planned', exact: true }).click();
  await expect(row).toContainText('started');
});
