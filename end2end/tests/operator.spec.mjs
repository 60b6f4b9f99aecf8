// What the pages tell an operator at a glance (issue 14), in Chromium, with and without
// JavaScript: the phase word that never disagrees with the banner or the result line, the end of
// a window as a result, form errors, 403 and 404 pages in the layout, page titles, asking before
// destructive actions, the history as a report, mirrors and peers in words.
import { test, expect } from '@playwright/test';
import { hydrated, noScript, signIn, signInRequest } from './helpers.mjs';

test.describe.configure({ mode: 'serial' });

async function allRunning(page) {
  await page.goto('/mirrors');
  await expect(page.locator('#mirrors-table tbody tr[data-status="running"]')).toHaveCount(3, { timeout: 30_000 });
}

// The phase word, the banner and the result line agree (the banner is absent in normal operation).
async function expectAgreement(page) {
  const phase = await page.locator('#phase').getAttribute('data-phase');
  await expect(page.locator('#phase-word')).toHaveText(phase.toUpperCase());
  if (phase === 'normal') {
    await expect(page.locator('#maintenance-banner')).toHaveCount(0);
  } else {
    await expect(page.locator('#maintenance-banner')).toHaveAttribute('data-phase', phase);
  }
  const said = (await page.locator('#maintenance-outcome').textContent()) || '';
  expect(said).not.toMatch(/\bis (enabling|enabled|disabling|disabled)\b/);
  return phase;
}

test('the phase word, banner and result line agree through a whole window, and the end is a result', async ({ page }) => {
  test.setTimeout(90_000);
  await signIn(page, 'operator');
  await allRunning(page);
  await page.goto('/');
  await hydrated(page);
  await expect(page.locator('#phase-word')).toHaveText('NORMAL');
  await expect(page.locator('#phase-word')).toHaveCSS('color', 'rgb(29, 122, 58)');
  await page.getByLabel(/^Reason/).fill('phase word check');
  await page.getByLabel(/I have read the plan/).check();
  await page.getByRole('button', { name: 'Enable maintenance' }).click();
  await expect(page.locator('#maintenance-outcome')).toContainText('Enable accepted');
  // Focus moves to the result of the submit.
  await expect(page.locator('#maintenance-outcome')).toBeFocused();
  await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'enabled', { timeout: 30_000 });
  await expect(page.locator('#maintenance-banner')).toHaveAttribute('data-phase', 'enabled');
  expect(await expectAgreement(page)).toBe('enabled');
  await expect(page.locator('#phase-word')).not.toHaveCSS('color', 'rgb(29, 122, 58)');

  await page.getByRole('button', { name: 'Disable maintenance' }).click();
  await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'normal', { timeout: 30_000 });
  expect(await expectAgreement(page)).toBe('normal');
  const result = page.locator('#window-result');
  await expect(result).toBeVisible();
  await expect(page.locator('#result-counts')).toHaveText('3 of 3 resumed, 0 failed, 0 still held by a user');
  await expect(page.locator('#result-duration')).toContainText('It lasted');
  // It stays after a reload, and links to the window's report.
  await page.reload();
  await hydrated(page);
  await expect(page.locator('#result-counts')).toHaveText('3 of 3 resumed, 0 failed, 0 still held by a user');
  const windowId = await result.getAttribute('data-window');
  await page.locator('#result-report').click();
  await expect(page).toHaveURL(new RegExp(`/history/${windowId}$`));
  await expect(page.locator('#window-phase')).toHaveText('disabled');
  await page.goBack();
  await hydrated(page);
  await page.getByRole('button', { name: 'Dismiss' }).click();
  await expect(page.locator('#window-result')).toHaveCount(0);
  await page.reload();
  await expect(page.locator('#phase-word')).toHaveText('NORMAL');
  await expect(page.locator('#window-result')).toHaveCount(0);
});

test('without JavaScript the end of a window is a result too, and is dismissed with a form', async ({ browser }) => {
  test.setTimeout(90_000);
  const { context, page } = await noScript(browser, 'operator');
  await page.getByLabel(/^Reason/).fill('no-script result');
  await page.getByLabel(/I have read the plan/).check();
  await page.getByRole('button', { name: 'Enable maintenance' }).click();
  // The page the post lands on says what was done, and focus is on it.
  await expect(page.locator('#maintenance-outcome')).toContainText('Enable accepted: window');
  await expect(page.locator('#maintenance-outcome')).not.toHaveClass(/is-error/);
  await expect(page.locator('#maintenance-outcome')).toBeFocused();
  await expect(async () => {
    await page.goto('/');
    await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'enabled', { timeout: 500 });
  }).toPass({ timeout: 30_000 });
  await expectAgreement(page);
  await page.getByRole('button', { name: 'Disable maintenance' }).click();
  await expect(async () => {
    await page.goto('/');
    await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'normal', { timeout: 500 });
  }).toPass({ timeout: 30_000 });
  await expectAgreement(page);
  await expect(page.locator('#result-counts')).toHaveText('3 of 3 resumed, 0 failed, 0 still held by a user');
  await page.getByRole('button', { name: 'Dismiss' }).click();
  await expect(page.locator('#phase-word')).toHaveText('NORMAL');
  await expect(page.locator('#window-result')).toHaveCount(0);
  await expect(page.locator('#maintenance-outcome')).toHaveText('Result dismissed.');
  await context.close();
});

test('without JavaScript the plan follows the chosen scope once asked, and nothing is enabled', async ({ browser }) => {
  const { context, page } = await noScript(browser, 'operator');
  await expect(page.locator('#plan-heading')).toHaveText('Plan for enabling maintenance on all mirrors');
  await expect(page.locator('#plan-pause')).toContainText('Would pause: 3');
  await page.getByLabel('Chosen mirrors').check();
  const first = page.locator('#scope-mirrors input[type=checkbox]').first();
  const id = await first.getAttribute('value');
  await first.check();
  await page.getByLabel(/^Reason/).fill('kernel patch on one mirror');
  await page.getByRole('button', { name: 'Show the plan for this scope' }).click();
  await expect(page.locator('#plan-heading')).toHaveText('Plan for enabling maintenance on 1 chosen mirror(s)');
  await expect(page.locator('#plan-pause')).toContainText('Would pause: 1');
  await expect(page.getByLabel('Chosen mirrors')).toBeChecked();
  await expect(page.locator(`#scope-mirrors input[value="${id}"]`)).toBeChecked();
  await expect(page.getByLabel(/^Reason/)).toHaveValue('kernel patch on one mirror');
  await expect(page.locator('#phase-word')).toHaveText('NORMAL');
  await context.close();
});

test('form errors are shown without JavaScript: a blank reason and a stale second enable', async ({ browser }) => {
  test.setTimeout(90_000);
  const { context, page } = await noScript(browser, 'operator');
  // Spaces pass the browser's `required` check; the server refuses them.
  await page.getByLabel(/^Reason/).fill('   ');
  await page.getByLabel(/I have read the plan/).check();
  await page.getByRole('button', { name: 'Enable maintenance' }).click();
  await expect(page).toHaveURL(/\/$/);
  expect(page.url()).not.toContain('__err');
  await expect(page.locator('#maintenance-outcome')).toContainText('a reason is required');
  await expect(page.locator('#maintenance-outcome')).toHaveClass(/is-error/);
  await expect(page.locator('#phase-word')).toHaveText('NORMAL');

  // This page is now stale: someone else opens a window; our enable is refused, naming it.
  const api = await (await import('@playwright/test')).request.newContext({ baseURL: process.env.QUIESCE_BASE_URL });
  await signInRequest(api, 'admin');
  const opened = await api.post('/api/maintenance/enable', { data: { reason: 'someone else', scope: 'all' } });
  expect(opened.status()).toBe(200);
  const other = await opened.json();
  try {
    await page.getByLabel(/^Reason/).fill('my late enable');
    await page.getByLabel(/I have read the plan/).check();
    await page.getByRole('button', { name: 'Enable maintenance' }).click();
    await expect(page.locator('#maintenance-outcome')).toContainText('another maintenance window is active');
    await expect(page.locator('#maintenance-outcome')).toContainText(other.id);
    await expect(page.locator('#phase')).not.toHaveAttribute('data-phase', 'normal');
  } finally {
    await expect(async () => {
      const s = await (await api.get('/api/maintenance/status')).json();
      expect(s.window.phase).toBe('enabled');
    }).toPass({ timeout: 30_000 });
    expect((await api.post('/api/maintenance/disable', { data: { window_id: other.id } })).status()).toBe(200);
    await expect(async () => {
      expect(await (await api.get('/api/maintenance/status')).json()).toBeNull();
    }).toPass({ timeout: 30_000 });
    await api.dispose();
    await context.close();
  }
});

test('form errors are shown with JavaScript, and focus moves to them', async ({ page }) => {
  await signIn(page, 'operator');
  await hydrated(page);
  await page.getByLabel(/^Reason/).fill('   ');
  await page.getByLabel(/I have read the plan/).check();
  await page.getByRole('button', { name: 'Enable maintenance' }).click();
  const line = page.locator('#maintenance-outcome');
  await expect(line).toContainText('a reason is required');
  await expect(line).toHaveClass(/is-error/);
  await expect(line).toBeFocused();
  await expect(page.locator('#phase-word')).toHaveText('NORMAL');
});

test('a form error on another page without JavaScript: creating a mirror with no peers chosen', async ({ browser }) => {
  const { context, page } = await noScript(browser, 'operator');
  await page.goto('/mirrors');
  // Nothing is preselected: source and destination do not default to the same peer.
  await expect(page.locator('#mirror-source')).toHaveValue('');
  await expect(page.locator('#mirror-dest')).toHaveValue('');
  await page.getByLabel('Name').fill('e2e-bad');
  await page.locator('#mirror-source').selectOption({ index: 1 });
  await page.locator('#mirror-dest').selectOption({ index: 1 });
  await page.getByLabel(/^Tables/).fill('no_such_table');
  await page.getByRole('button', { name: 'Create mirror' }).click();
  await expect(page).toHaveURL(/\/mirrors$/);
  await expect(page.locator('#mirrors-outcome')).toHaveClass(/is-error/);
  await expect(page.locator('#mirrors-outcome')).not.toBeEmpty();
  await expect(page.locator('#mirrors-table tr[data-mirror="e2e-bad"]')).toHaveCount(0);
  await context.close();
});

for (const js of [true, false]) {
  test(`role-gated and missing pages are 403 and 404 pages in the layout (JavaScript ${js ? 'on' : 'off'})`, async ({ browser }) => {
    const context = await browser.newContext({ javaScriptEnabled: js });
    const page = await context.newPage();
    await signInRequest(context.request, 'viewer');
    let r = await page.goto('/users');
    expect(r.status()).toBe(403);
    await expect(page.locator('header.topbar')).toBeVisible();
    await expect(page.locator('#forbidden h1')).toHaveText('Not allowed');
    await expect(page.locator('#create-user-form')).toHaveCount(0);
    await expect(page.getByText('your role does not allow this')).toHaveCount(0);
    await expect(page).toHaveTitle('Not allowed · Quiesce');
    for (const path of ['/history/999999', '/no-such-page']) {
      r = await page.goto(path);
      expect(r.status(), path).toBe(404);
      await expect(page.locator('header.topbar')).toBeVisible();
      await expect(page.locator('#not-found h1')).toHaveText('Not found');
      await expect(page).toHaveTitle('Not found · Quiesce');
    }
    await context.close();
  });
}

test('each page has its own title', async ({ page }) => {
  await page.goto('/login');
  await expect(page).toHaveTitle('Sign in · Quiesce');
  await signIn(page, 'admin');
  for (const [path, title] of [
    ['/', 'Maintenance'],
    ['/mirrors', 'Mirrors'],
    ['/peers', 'Peers'],
    ['/history', 'History'],
    ['/users', 'Users'],
    ['/account', 'Your account'],
    ['/about', 'About'],
  ]) {
    await page.goto(path);
    await hydrated(page);
    await expect(page, path).toHaveTitle(`${title} · Quiesce`);
  }
  // Navigating inside the app changes it too.
  await page.getByRole('link', { name: 'Mirrors' }).click();
  await expect(page).toHaveTitle('Mirrors · Quiesce');
});

for (const js of [true, false]) {
  test(`dropping a mirror and removing a peer ask first, naming what is lost (JavaScript ${js ? 'on' : 'off'})`, async ({ browser }) => {
    const context = await browser.newContext({ javaScriptEnabled: js });
    const page = await context.newPage();
    await signInRequest(context.request, 'admin');
    await page.goto('/mirrors');
    const row = page.locator('#mirrors-table tbody tr').first();
    const name = await row.getAttribute('data-mirror');
    await row.getByRole('link', { name: 'Drop…' }).click();
    const box = page.locator('#drop-confirm');
    await expect(box).toBeVisible();
    await expect(box.locator('h2')).toHaveText(`Drop mirror ${name}?`);
    await expect(box).toContainText('cannot be resumed');
    await expect(box.getByRole('button', { name: `Drop ${name}` })).toBeVisible();
    await box.getByRole('link', { name: 'Cancel' }).click();
    await expect(page.locator('#drop-confirm')).toHaveCount(0);
    await expect(page.locator(`#mirrors-table tr[data-mirror="${name}"]`)).not.toHaveAttribute('data-status', 'dropped');

    await page.goto('/peers');
    const peer = page.locator('#peers-table tbody tr').first();
    const peerName = await peer.getAttribute('data-peer');
    // Peers say how many mirrors use them (the demo's three use both).
    await expect(peer).toHaveAttribute('data-mirrors', '3');
    await peer.getByRole('link', { name: 'Remove…' }).click();
    const confirm = page.locator('#remove-confirm');
    await expect(confirm.locator('h2')).toHaveText(`Remove peer ${peerName}?`);
    await expect(confirm).toContainText('stored credentials');
    await expect(page.locator('#remove-in-use')).toContainText('3 mirror(s) use it');
    await confirm.getByRole('link', { name: 'Cancel' }).click();
    await expect(page.locator('#remove-confirm')).toHaveCount(0);
    await context.close();
  });
}

test('a confirmed drop drops exactly that mirror', async ({ page }) => {
  test.setTimeout(60_000);
  await signIn(page, 'admin', '/mirrors');
  await hydrated(page);
  const api = page.context().request;
  // A mirror of its own, into a fresh destination, so the demo's three are untouched.
  const peers = await (await api.get('/api/peers')).json();
  const mirrors = await (await api.get('/api/mirrors')).json();
  const source = peers.find((p) => p.name === mirrors[0].source_peer);
  const dest = await api.post('/api/peers/create', {
    data: { name: `e2e-drop-${Date.now()}`, url: `e2e-drop-${Date.now()}.db`, create_file: true },
  });
  expect(dest.status(), await dest.text()).toBe(200);
  const destId = (await dest.json()).id;
  const created = await api.post('/api/mirrors/create', {
    data: { name: 'e2e-to-drop', source_peer_id: source.id, dest_peer_id: destId, tables: mirrors[0].tables[0] },
  });
  expect(created.status(), await created.text()).toBe(200);
  const row = page.locator('#mirrors-table tr[data-mirror="e2e-to-drop"]');
  await expect(row).toBeVisible({ timeout: 30_000 });
  await row.getByRole('link', { name: 'Drop…' }).click();
  // The row is re-rendered by live progress updates: a click that landed on a row being
  // replaced is lost, so it is repeated once (the box itself is what this test checks).
  if (!(await page.locator('#drop-confirm').isVisible({ timeout: 5_000 }).catch(() => false))) {
    await page.waitForTimeout(5_000);
    if ((await page.locator('#drop-confirm').count()) === 0) {
      await row.getByRole('link', { name: 'Drop…' }).click();
    }
  }
  await expect(page.locator('#drop-confirm')).toContainText(mirrors[0].tables[0]);
  await page.getByRole('button', { name: 'Drop e2e-to-drop' }).click();
  await expect(page.locator('#mirrors-outcome')).toHaveText('e2e-to-drop was dropped.');
  await expect(page.locator('#mirrors-outcome')).toBeFocused();
  await expect(page.locator('#drop-confirm')).toHaveCount(0);
  await expect(page.locator('#mirrors-table tbody tr[data-status="running"]')).toHaveCount(3, { timeout: 30_000 });
  expect((await api.post('/api/peers/delete', { data: { id: destId } })).status()).toBe(200);
});

test('the history reads as a report, and a window detail names its steps in words', async ({ page }) => {
  await signIn(page, 'viewer', '/history');
  const row = page.locator('#history-table tbody tr', { hasText: 'phase word check' }).first();
  await expect(row).toHaveAttribute('data-outcome', 'succeeded');
  await expect(row).toContainText('all mirrors');
  await expect(row.locator('td.num')).toHaveText('3');
  await expect(row).toContainText(/\d+ (s|min)/);
  const id = await row.getAttribute('data-window');
  const code = row.locator('code.short-id');
  await expect(code).toHaveText(id.slice(0, 8));
  await expect(code).toHaveAttribute('title', id);
  await row.getByRole('link').click();
  await expect(page.locator('#timeline')).toContainText('Confirming mirrors paused');
  await expect(page.locator('#timeline')).toContainText('Releasing holds');
  await expect(page.locator('#timeline')).not.toContainText('confirm_paused');
  await expect(page.locator('#window-duration')).toHaveText(/\d+ (s|min)/);
  // Every bar is visible, however long the held period was.
  for (const bar of await page.locator('#timeline .bar').all()) {
    const box = await bar.boundingBox();
    expect(box.width).toBeGreaterThan(1);
  }
});

test('a mirror held by maintenance names the window, links to it, and offers no Pause', async ({ page }) => {
  test.setTimeout(90_000);
  await signIn(page, 'operator');
  await allRunning(page);
  const api = page.context().request;
  const r = await api.post('/api/maintenance/enable', { data: { reason: 'hold link check', scope: 'all' } });
  expect(r.status()).toBe(200);
  const w = await r.json();
  try {
    await page.goto('/mirrors');
    await hydrated(page);
    await expect(page.locator('#mirrors-table tbody tr[data-status="paused"]')).toHaveCount(3, { timeout: 30_000 });
    const row = page.locator('#mirrors-table tbody tr').first();
    const link = row.getByRole('link', { name: /maintenance window/ });
    await expect(link).toHaveAttribute('href', `/history/${w.id}`);
    await expect(row).toContainText('hold link check');
    await expect(row.getByRole('button', { name: 'Pause' })).toHaveCount(0);
    await expect(row).toContainText('held by maintenance');
    await expect(page.locator('#mirror-columns-help')).toContainText('Copied');
  } finally {
    await expect(async () => {
      const s = await (await api.get('/api/maintenance/status')).json();
      expect(s.window.phase).toBe('enabled');
    }).toPass({ timeout: 30_000 });
    expect((await api.post('/api/maintenance/disable', { data: { window_id: w.id } })).status()).toBe(200);
    await page.goto('/');
    await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'normal', { timeout: 30_000 });
    await allRunning(page);
  }
});

test('the instance card is on the About page, and the layout uses a wide screen', async ({ page }) => {
  await page.setViewportSize({ width: 1800, height: 1000 });
  await signIn(page, 'viewer');
  await expect(page.locator('#instance-status')).toHaveCount(0);
  await page.getByRole('link', { name: 'About this instance' }).click();
  await expect(page.locator('#instance-id')).toHaveText(/^[0-9a-f-]{36}$/);
  await page.goto('/history');
  const main = await page.locator('main').boundingBox();
  expect(main.width).toBeGreaterThan(1400);
  // Timestamps do not wrap.
  const cell = page.locator('#history-table tbody tr td.nowrap').first();
  if (await cell.count()) {
    const box = await cell.boundingBox();
    // One line of text plus padding (two lines would be over 60 px).
    expect(box.height).toBeLessThan(55);
  }
});
