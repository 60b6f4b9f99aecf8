// Maintenance in the browser, on the demo's replicating mirrors. Nothing here reloads a page or
// clicks a refresh button while waiting: what changes reaches the page through the live event
// stream.
import { test, expect } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { hydrated, noScript, signIn, signInRequest } from './helpers.mjs';

// One window at a time across the whole server: these run one after the other.
test.describe.configure({ mode: 'serial' });

// Every demo mirror running: the starting point of each test (the demo snapshots on its own).
async function allRunning(page) {
  await page.goto('/mirrors');
  await hydrated(page);
  await expect(page.locator('#mirrors-table tbody tr[data-status="running"]')).toHaveCount(3, { timeout: 30_000 });
}

test('an operator enables maintenance, watches it live, sees the banner, and disables it', async ({ page }) => {
  await signIn(page, 'operator');
  await allRunning(page);
  await page.getByRole('link', { name: 'Maintenance', exact: true }).click();
  await hydrated(page);
  await expect(page.locator('#live-state')).toHaveAttribute('data-state', 'live');
  await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'normal');
  await expect(page.locator('#plan-pause')).toContainText('Would pause: 3');
  await page.getByLabel(/^Reason/).fill('database upgrade');
  await page.getByLabel(/I have read the plan/).check();
  await page.getByRole('button', { name: 'Enable maintenance' }).click();
  await expect(page.locator('#maintenance-outcome')).toContainText('Enable accepted');
  // The count climbs to all paused on its own.
  const count = page.locator('#progress-count');
  await expect(count).toHaveAttribute('data-total', '3');
  await expect(count).toHaveAttribute('data-done', '3', { timeout: 30_000 });
  await expect(count).toHaveText('Paused 3 of 3 mirrors');
  await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'enabled');
  await expect(page.locator('#window-mirrors tbody tr[data-now="paused"]')).toHaveCount(3);
  await expect(page.locator('#elapsed')).toContainText('Open for');
  // Between events the time open counts on in the browser: with every re-read of the page
  // refused, the figure still moves (and is not a new render: its render time stays).
  const isPage = (url) => url.pathname === '/';
  await page.route(isPage, (route) =>
    route.request().headers()['x-quiesce-reread'] ? route.abort() : route.continue());
  // A re-read already in flight may still land once: the figure must move within one render.
  const open = page.locator('#elapsed [data-tick-now]').first();
  await expect
    .poll(async () => {
      const rendered = await open.getAttribute('data-tick-now');
      const shown = await open.textContent();
      await page.waitForTimeout(1500);
      return (await open.getAttribute('data-tick-now')) === rendered && (await open.textContent()) !== shown;
    }, { timeout: 15_000 })
    .toBe(true);
  await page.unroute(isPage);

  await page.getByRole('link', { name: 'Mirrors' }).click();
  await expect(page.locator('#maintenance-banner')).toContainText('database upgrade');
  await expect(page.locator('#mirrors-table tbody tr[data-status="paused"]')).toHaveCount(3);

  await page.getByRole('link', { name: 'Maintenance', exact: true }).click();
  await hydrated(page);
  await page.getByRole('button', { name: 'Disable maintenance' }).click();
  // The window ends and the page returns to normal operation without a reload.
  await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'normal', { timeout: 30_000 });
  await expect(page.locator('#maintenance-banner')).toHaveCount(0);
  await page.getByRole('link', { name: 'Mirrors' }).click();
  await expect(page.locator('#mirrors-table tbody tr[data-status="running"]')).toHaveCount(3, { timeout: 30_000 });
});

test('the window is in the history with its per-mirror outcomes and exports', async ({ page }) => {
  await signIn(page, 'viewer', '/history');
  const row = page.locator('#history-table tbody tr', { hasText: 'database upgrade' }).first();
  await expect(row).toHaveAttribute('data-outcome', 'succeeded');
  // Filtering by today's date (UTC) keeps it; a day in the future finds nothing.
  const today = new Date().toISOString().slice(0, 10);
  await page.goto(`/history?from=${today}&to=${today}`);
  await expect(page.locator('#history-table tbody tr', { hasText: 'database upgrade' })).not.toHaveCount(0);
  await page.goto('/history?from=2999-01-01');
  await expect(page.locator('#history-table')).toHaveCount(0);
  await page.goto('/history');
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

test('a window scoped to one chosen mirror pauses only that mirror', async ({ page }) => {
  await signIn(page, 'operator');
  await allRunning(page);
  const name = await page.locator('#mirrors-table tbody tr').first().getAttribute('data-mirror');
  await page.getByRole('link', { name: 'Maintenance', exact: true }).click();
  await hydrated(page);
  // With JavaScript the plan follows each tick: the no-JavaScript "Show the plan" button is hidden.
  await expect(page.locator('#preview-plan')).toBeHidden();
  await page.getByLabel('Chosen mirrors').check();
  await page.locator('#scope-mirrors').getByLabel(new RegExp(`^ ?${name} `)).check();
  // The dry run follows the choice.
  await expect(page.locator('#plan-heading')).toContainText('1 chosen mirror');
  await expect(page.locator('#plan-pause')).toContainText('Would pause: 1');
  await page.getByLabel(/^Reason/).fill(`patch ${name}`);
  await page.getByLabel(/I have read the plan/).check();
  await page.getByRole('button', { name: 'Enable maintenance' }).click();
  await expect(page.locator('#progress-count')).toHaveText('Paused 1 of 1 mirrors', { timeout: 30_000 });
  await expect(page.locator('#phase')).toContainText('1 chosen mirror(s)');
  await page.getByRole('link', { name: 'Mirrors' }).click();
  await expect(page.locator(`#mirrors-table tr[data-mirror="${name}"]`)).toHaveAttribute('data-status', 'paused');
  await expect(page.locator('#mirrors-table tbody tr[data-status="running"]')).toHaveCount(2);
  await page.getByRole('link', { name: 'Maintenance', exact: true }).click();
  await hydrated(page);
  // Once the page's stream is live it has re-read the window: the button clicked is the one
  // that stays (a click while the page re-renders may land on one that is going away).
  await expect(page.locator('#live-state')).toHaveAttribute('data-state', 'live');
  await expect(page.locator('#progress-count')).toHaveText('Paused 1 of 1 mirrors');
  await page.getByRole('button', { name: 'Disable maintenance' }).click();
  await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'normal', { timeout: 30_000 });
});

test('a second browser enabling at the same time gets a clear error naming the window', async ({ browser }) => {
  const pages = [];
  for (const role of ['operator', 'admin']) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, role);
    await allRunning(page);
    await page.goto('/');
    await hydrated(page);
    await page.getByLabel(/^Reason/).fill(`concurrent ${role}`);
    await page.getByLabel(/I have read the plan/).check();
    pages.push(page);
  }
  // Both press Enable at once; the catalog lets exactly one window open. (Re-reads of the window
  // are held back a moment so neither form is replaced by the other's window before its click.)
  for (const p of pages) await p.route('**/api/maintenance/progress', (route) => setTimeout(() => route.continue(), 1500));
  await Promise.all(pages.map((p) => p.getByRole('button', { name: 'Enable maintenance' }).click()));
  const outcomes = await Promise.all(
    pages.map(async (p) => {
      const line = p.locator('#maintenance-outcome');
      await expect(line).not.toHaveText('');
      return line.textContent();
    }),
  );
  const accepted = outcomes.filter((t) => t.startsWith('Enable accepted'));
  const refused = outcomes.filter((t) => t.includes('another maintenance window is active'));
  expect(accepted, outcomes.join(' | ')).toHaveLength(1);
  expect(refused, outcomes.join(' | ')).toHaveLength(1);
  // The refusal names the window that won, with its reason.
  expect(refused[0]).toMatch(/concurrent (operator|admin)/);
  // Both pages show the one window live; the winner disables it.
  for (const p of pages) await expect(p.locator('#phase')).toHaveAttribute('data-phase', 'enabled', { timeout: 30_000 });
  await pages[0].getByRole('button', { name: 'Disable maintenance' }).click();
  for (const p of pages) await expect(p.locator('#phase')).toHaveAttribute('data-phase', 'normal', { timeout: 30_000 });
  for (const p of pages) await p.context().close();
});

test('a viewer sees no maintenance buttons and the server refuses a direct call', async ({ page, request }) => {
  await signIn(page, 'viewer');
  await expect(page.locator('#phase')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Enable maintenance' })).toHaveCount(0);
  await expect(page.locator('#enable-form')).toHaveCount(0);
  await signInRequest(request, 'viewer');
  const r = await request.post('/api/maintenance/enable', { data: { reason: 'sneaky', scope: 'all' } });
  expect(r.status()).toBe(403);
});

test('the page says when it is no longer live, and re-syncs after reconnecting', async ({ page }) => {
  // Keep a handle on the page's EventSource so the test can drop its connection the way a
  // network failure would (the stream ends with an error) while new connections are refused.
  await page.addInitScript(() => {
    const Real = window.EventSource;
    window.__streams = [];
    window.EventSource = class extends Real {
      constructor(...args) {
        super(...args);
        window.__streams.push(this);
      }
    };
  });
  await signIn(page, 'operator');
  await expect(page.locator('#live-state')).toHaveAttribute('data-state', 'live');
  await page.route('**/api/events', (route) => route.abort());
  await page.evaluate(() => {
    for (const s of window.__streams) {
      s.close();
      s.dispatchEvent(new Event('error'));
    }
  });
  await expect(page.locator('#live-state')).toHaveAttribute('data-state', 'reconnecting');
  await expect(page.locator('#live-state')).toContainText('out of date');
  // Meanwhile the state changes (a script enables maintenance)...
  const api = page.context().request;
  const r = await api.post('/api/maintenance/enable', { data: { reason: 'while disconnected', scope: 'all' } });
  expect(r.status()).toBe(200);
  const opened = await r.json();
  await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'normal');
  // ...and once the stream is back the page re-reads everything and shows it.
  await page.unroute('**/api/events');
  await expect(page.locator('#live-state')).toHaveAttribute('data-state', 'live', { timeout: 45_000 });
  await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'enabled', { timeout: 30_000 });
  await expect(page.locator('#phase')).toContainText('while disconnected');
  const d = await api.post('/api/maintenance/disable', { data: { window_id: opened.id } });
  expect(d.status()).toBe(200);
  await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'normal', { timeout: 30_000 });
});

test('a page whose session ends says so instead of showing stale state', async ({ page }) => {
  await signIn(page, 'operator');
  await expect(page.locator('#live-state')).toHaveAttribute('data-state', 'live');
  // Signing out in another tab of the same browser ends the session this page's stream uses
  // (the server re-checks open streams every 15 s).
  const other = await page.context().newPage();
  await other.goto('/');
  await hydrated(other);
  await other.getByRole('button', { name: 'Sign out' }).click();
  await expect(other).toHaveURL(/\/login/);
  await expect(page.locator('#live-state')).toHaveAttribute('data-state', 'signed-out', { timeout: 30_000 });
  await expect(page.locator('#live-state')).toContainText('Sign in again');
});

// A mirror still copying a big table when enable starts: the page lists it as what enable waits
// for, with how long it has been at it, and an operator can stop waiting for it.
test('enable waits for a snapshot in flight, shows it, and an operator skips the wait', async ({ page }) => {
  test.setTimeout(120_000);
  const pgAdmin = process.env.QUIESCE_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6)}`;
  const names = [`qe2e_src_${suffix}`, `qe2e_dst_${suffix}`];
  const dbUrl = (name) => {
    const u = new URL(pgAdmin);
    u.pathname = `/${name}`;
    return u.toString();
  };
  for (const n of names) psql(pgAdmin, `CREATE DATABASE ${n}`);
  try {
    psql(dbUrl(names[0]), `CREATE TABLE big (id BIGINT PRIMARY KEY, v TEXT);
      INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 3000000) g;`);
    await signIn(page, 'admin');
    const api = page.context().request;
    const peer = async (name, url) => {
      const r = await api.post('/api/peers/create', { data: { name, url } });
      expect(r.status(), await r.text()).toBe(200);
      return (await r.json()).id;
    };
    const src = await peer(`big-src-${suffix}`, dbUrl(names[0]));
    const dst = await peer(`big-dst-${suffix}`, dbUrl(names[1]));
    const mirrorName = `big-${suffix}`;
    const created = await api.post('/api/mirrors/create', {
      data: { name: mirrorName, source_peer_id: src, dest_peer_id: dst, tables: 'big' },
    });
    expect(created.status(), await created.text()).toBe(200);
    const mirror = await created.json();

    await page.goto('/');
    await hydrated(page);
    await expect(page.locator('#plan-snapshot')).toContainText(mirrorName);
    await page.getByLabel(/^Reason/).fill('upgrade during a snapshot');
    await page.getByLabel(/I have read the plan/).check();
    await page.getByRole('button', { name: 'Enable maintenance' }).click();
    const row = page.locator(`#waiting-table tr[data-mirror="${mirrorName}"]`);
    await expect(page.locator('#waiting-heading')).toContainText('Waiting for these snapshots');
    await expect(row).toBeVisible();
    await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'enabling');
    await expect(page.locator('#elapsed')).toContainText('fails if still waiting in');
    await row.getByRole('button', { name: `Skip waiting for ${mirrorName}` }).click();
    await expect(page.locator('#maintenance-outcome')).toHaveText('Stopped waiting for that mirror.');
    // The skipped mirror is paused at its next batch boundary like the others.
    await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'enabled', { timeout: 60_000 });
    await expect(page.locator('#waiting')).toHaveCount(0);
    await expect(page.locator(`#window-mirrors tr[data-mirror="${mirrorName}"]`)).toHaveAttribute('data-now', 'paused');
    await page.getByRole('button', { name: 'Disable maintenance' }).click();
    await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'normal', { timeout: 60_000 });
    const dropped = await api.post('/api/mirrors/drop', { data: { id: mirror.id } });
    expect(dropped.status()).toBe(200);
    for (const id of [src, dst]) expect((await api.post('/api/peers/delete', { data: { id } })).status()).toBe(200);
  } finally {
    for (const n of names) psql(pgAdmin, `DROP DATABASE IF EXISTS ${n} WITH (FORCE)`);
  }
});

function psql(url, sql) {
  const r = spawnSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql failed: ${r.stderr || r.error}`);
}

// Without JavaScript the forms post to the server functions and the server redirects back; the
// page is then as fresh as its last load, and says so.
test('enable and disable work without JavaScript', async ({ browser }) => {
  const { context, page } = await noScript(browser, 'operator');
  await expect(page.locator('#live-state')).toHaveAttribute('data-state', 'static');
  await expect(page.locator('#live-state')).toHaveText('Not live: reload to refresh');
  await page.getByLabel(/^Reason/).fill('no-script upgrade');
  await page.getByLabel(/I have read the plan/).check();
  await page.getByRole('button', { name: 'Enable maintenance' }).click();
  await expect(async () => {
    await page.goto('/');
    await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'enabled', { timeout: 500 });
  }).toPass({ timeout: 30_000 });
  await expect(page.locator('#phase')).toContainText('no-script upgrade');
  await page.getByRole('button', { name: 'Disable maintenance' }).click();
  await expect(async () => {
    await page.goto('/');
    await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'normal', { timeout: 500 });
  }).toPass({ timeout: 30_000 });
  await context.close();
});

// A browser allows six HTTP/1.1 connections per host: hidden tabs give their stream up, so many
// open tabs still load; a tab shown again reconnects and re-reads what it shows.
test('hidden tabs close their stream, so many tabs of one browser still load', async ({ page }) => {
  const hide = (p, hidden) =>
    p.evaluate((hidden) => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
      document.dispatchEvent(new Event('visibilitychange'));
    }, hidden);
  await signIn(page, 'viewer');
  await expect(page.locator('#live-state')).toHaveAttribute('data-state', 'live');
  await hide(page, true);
  await expect(page.locator('#live-state')).toHaveAttribute('data-state', 'hidden');
  const tabs = [];
  for (let i = 0; i < 8; i++) {
    const tab = await page.context().newPage();
    await tab.goto('/mirrors');
    await hydrated(tab);
    await expect(tab.locator('#live-state')).toHaveAttribute('data-state', 'live');
    await hide(tab, true);
    await expect(tab.locator('#live-state')).toHaveAttribute('data-state', 'hidden');
    tabs.push(tab);
  }
  await hide(page, false);
  await expect(page.locator('#live-state')).toHaveAttribute('data-state', 'live');
  for (const tab of tabs) await tab.close();
});
