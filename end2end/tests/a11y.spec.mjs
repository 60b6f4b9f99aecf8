// Accessibility: axe-core (from npm, injected into the page) finds no WCAG 2 A/AA violations on
// any page, in every maintenance state (normal, enabling, enabled, failed, after disable; the
// held-still states enabling and failed on the Postgres run, see helpers.mjs), and on the 403
// page a viewer gets.
import { test, expect } from '@playwright/test';
import { createRequire } from 'node:module';
import { ALL_PAGES, STATES, enterState, hydrated, signIn, stateAvailable } from './helpers.mjs';

test.describe.configure({ mode: 'serial' });
// axe-core is injected as an inline script, which the app's Content-Security-Policy (rightly)
// blocks; the checker, not the app, needs the exemption (security.spec.mjs checks the policy).
test.use({ bypassCSP: true });

const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

async function violations(page) {
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
  );
  return result.violations;
}

async function expectNoViolations(page, what) {
  await hydrated(page);
  const found = (await violations(page)).map(
    (v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
  );
  expect(found, `${what}: ${found.join('\n')}`).toEqual([]);
}

test('the check itself finds a violation when there is one', async ({ page }) => {
  await page.goto('/login');
  await hydrated(page);
  await page.evaluate(() => {
    const input = document.createElement('input');
    input.type = 'text';
    document.querySelector('main, body').appendChild(input);
  });
  const ids = (await violations(page)).map((v) => v.id);
  expect(ids).toContain('label');
});

test('the sign-in page has no accessibility violations', async ({ page }) => {
  await page.goto('/login');
  await expectNoViolations(page, '/login');
});

test('every signed-in page has no accessibility violations', async ({ page }) => {
  await signIn(page, 'admin');
  for (const path of ['/', '/mirrors', '/peers', '/history', '/users']) {
    await page.goto(path);
    await expectNoViolations(page, path);
  }
});

test('the maintenance page, a window detail and the banner have none while a window is active', async ({ page }) => {
  await signIn(page, 'operator');
  const api = page.context().request;
  const r = await api.post('/api/maintenance/enable', { data: { reason: 'accessibility check', scope: 'all' } });
  expect(r.status()).toBe(200);
  const window = await r.json();
  try {
    await page.goto('/');
    await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'enabled', { timeout: 30_000 });
    await expectNoViolations(page, '/ (enabled)');
    await page.goto('/mirrors');
    await expect(page.locator('#maintenance-banner')).toBeVisible();
    await expectNoViolations(page, '/mirrors (banner)');
    await page.goto(`/history/${window.id}`);
    await expectNoViolations(page, '/history/<id>');
  } finally {
    const d = await api.post('/api/maintenance/disable', { data: { window_id: window.id } });
    expect(d.status()).toBe(200);
    await page.goto('/');
    await expect(page.locator('#phase')).toHaveAttribute('data-phase', 'normal', { timeout: 30_000 });
  }
});

for (const state of STATES) {
  test(`every page in state ${state} has no accessibility violations`, async ({ page }) => {
    test.skip(!stateAvailable(state), 'held-still states are written in the Postgres catalog');
    test.setTimeout(120_000);
    await signIn(page, 'admin');
    const leave = await enterState(page.context().request, state);
    try {
      const phase = { normal: 'normal', 'after-disable': 'normal' }[state] || state;
      // Held-still states are written straight into the catalog, with no event: the page the
      // server rendered for this address just before (which it may serve again for up to a
      // second, see server::page_cache) still shows the state before. An address of its own
      // is rendered afresh.
      await page.goto(`/?fresh=${Date.now()}`);
      await hydrated(page);
      await expect(page.locator('#phase')).toHaveAttribute('data-phase', phase);
      if (state === 'after-disable') await expect(page.locator('#window-result')).toBeVisible();
      for (const path of ALL_PAGES) {
        await page.goto(path);
        await expectNoViolations(page, `${path} (${state})`);
      }
      const latest = await (await page.context().request.get('/api/maintenance/windows')).json();
      if (latest.length) {
        await page.goto(`/history/${latest[0].id}`);
        await expectNoViolations(page, `/history/<id> (${state})`);
      }
    } finally {
      await leave();
    }
  });
}

test('the 403 page a viewer gets has no accessibility violations', async ({ page }) => {
  await signIn(page, 'viewer');
  await page.goto('/users');
  await expectNoViolations(page, '/users (viewer, 403)');
});
