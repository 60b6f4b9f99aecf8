// The Peers page says whether each peer answers and how fast, and why one does not.
import { test, expect } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { hydrated, noScript, signIn } from './helpers.mjs';

const pgAdmin = process.env.QUIESCE_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

function psql(sql) {
  const r = spawnSync('psql', [pgAdmin, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql failed: ${r.stderr || r.error}`);
}

test('the Peers page says which peers answer, how fast, and why one does not, with and without JavaScript', async ({ page, browser }) => {
  test.setTimeout(60_000);
  const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6)}`;
  const db = `qe2e_health_${suffix}`;
  const peerName = `zz-health-${suffix}`;
  psql(`CREATE DATABASE ${db}`);
  const url = new URL(pgAdmin);
  url.pathname = `/${db}`;
  let peerId;
  const api = page.context().request;
  try {
    await signIn(page, 'admin');
    const r = await api.post('/api/peers/create', { data: { name: peerName, url: url.toString(), capture: 'trigger' } });
    expect(r.status(), await r.text()).toBe(200);
    peerId = (await r.json()).id;

    await page.goto('/peers');
    await hydrated(page);
    const rows = page.locator('#peers-table tbody tr');
    await expect(page.locator(`#peers-table tr[data-peer="${peerName}"]`)).toHaveCount(1);
    const count = await rows.count();
    expect(count).toBeGreaterThanOrEqual(3);
    // Every peer (the demo's and the new one) answers, with its round trip.
    for (let i = 0; i < count; i++) {
      const cell = rows.nth(i).locator('td.peer-health');
      await expect(cell).toHaveAttribute('data-health', 'reachable');
      await expect(cell).toHaveText(/^reachable · \d+ ms$/);
    }

    // Without JavaScript nothing probes: each peer reads "not checked" (never a "checking…" that
    // would never end), and "Check now" has the server probe while it renders the page.
    const { context, page: bare } = await noScript(browser, 'admin');
    try {
      await bare.goto('/peers');
      const cells = bare.locator('#peers-table td.peer-health');
      await expect(cells).toHaveCount(count);
      await expect(bare.locator('#peers-table td.peer-health[data-health="unknown"]')).toHaveCount(count);
      await expect(bare.locator('#peers-table')).not.toContainText('checking');
      await cells.first().getByRole('link', { name: 'Check now' }).click();
      await expect(bare).toHaveURL(/\/peers\?health=1$/);
      for (let i = 0; i < count; i++) {
        await expect(cells.nth(i)).toHaveAttribute('data-health', 'reachable');
        await expect(cells.nth(i)).toHaveText(/^reachable · \d+ ms$/);
      }
    } finally {
      await context.close();
    }

    // The database stops taking connections: the page says so, and why.
    psql(`ALTER DATABASE ${db} WITH ALLOW_CONNECTIONS false`);
    psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db}'`);
    await page.reload();
    await hydrated(page);
    const down = page.locator(`#peers-table tr[data-peer="${peerName}"] td.peer-health`);
    await expect(down).toHaveAttribute('data-health', 'unreachable');
    await expect(down.locator('.badge')).toHaveText('unreachable');
    await expect(down.locator('.small')).not.toBeEmpty();
    await expect(down).not.toContainText('password');
    // The others still answer.
    await expect(page.locator('#peers-table td.peer-health[data-health="reachable"]')).toHaveCount(count - 1);
  } finally {
    psql(`ALTER DATABASE ${db} WITH ALLOW_CONNECTIONS true`);
    if (peerId) await api.post('/api/peers/delete', { data: { id: peerId } });
    psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  }
});
