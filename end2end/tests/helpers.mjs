// Shared steps: who the test users are, and signing in through the real form.
import { expect } from '@playwright/test';

export const PASSWORD = process.env.QUIESCE_E2E_PASSWORD;
export const USERS = JSON.parse(process.env.QUIESCE_E2E_USERS || '{}');

// Signs in through the login page (after hydration, so the form posts through the WASM client).
export async function signIn(page, role, next = '/') {
  await page.goto(`/login?next=${encodeURIComponent(next)}`);
  await hydrated(page);
  await page.getByLabel('Username').fill(USERS[role]);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('#whoami-role')).toHaveText(role);
}

// Signs an API request context in (JSON body, like a script would).
export async function signInRequest(request, role) {
  const r = await request.post('/api/login', { data: { username: USERS[role], password: PASSWORD } });
  expect(r.status()).toBe(200);
}

// A browser context with JavaScript switched off, signed in through the real form.
export async function noScript(browser, role) {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto('/login');
  await page.getByLabel('Username').fill(USERS[role]);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('#whoami-role')).toHaveText(role);
  return { context, page };
}

// Waits until the WASM has hydrated the page.
export async function hydrated(page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

// The maintenance states the accessibility check and the screenshots visit. `normal` and
// `after-disable` and `enabled` are reached through the real API on both backends; `enabling` and
// `failed` are held still by writing the window's phase in the Postgres catalog (the orchestrator
// runs only when asked, so the page shows them until the window is aborted) — Postgres only.
export const STATES = ['normal', 'enabling', 'enabled', 'failed', 'after-disable'];

export function stateAvailable(state) {
  return !['enabling', 'failed'].includes(state) || process.env.QUIESCE_BACKEND === 'postgres';
}

async function waitStatus(api, done) {
  await expect(async () => {
    const s = await (await api.get('/api/maintenance/status')).json();
    expect(done(s)).toBe(true);
  }).toPass({ timeout: 30_000 });
}

// Puts the server in `state` through `api` (an admin's request context); returns a function that
// brings it back to normal operation with every mirror running.
export async function enterState(api, state) {
  const { spawnSync } = await import('node:child_process');
  const psql = (sql) => {
    const r = spawnSync('psql', [process.env.QUIESCE_DATABASE_URL, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`psql failed: ${r.stderr || r.error}`);
  };
  const result = await (await api.get('/api/maintenance/last-result')).json();
  if (result) await api.post('/api/maintenance/dismiss-result', { data: { window_id: result.window_id } });
  if (state === 'normal') return async () => {};
  const r = await api.post('/api/maintenance/enable', { data: { reason: `state ${state}`, scope: 'all' } });
  expect(r.status(), await r.text()).toBe(200);
  const w = await r.json();
  await waitStatus(api, (s) => s?.window?.phase === 'enabled');
  const disable = async () => {
    expect((await api.post('/api/maintenance/disable', { data: { window_id: w.id } })).status()).toBe(200);
    await waitStatus(api, (s) => s === null);
  };
  if (state === 'after-disable') {
    await disable();
    return async () => {
      await api.post('/api/maintenance/dismiss-result', { data: { window_id: w.id } });
    };
  }
  if (state === 'enabled') return disable;
  if (state === 'enabling') {
    psql(`UPDATE maintenance_windows SET phase = 'enabling', step = 'wait_snapshots' WHERE id = '${w.id}'`);
  } else if (state === 'failed') {
    psql(`UPDATE maintenance_windows SET phase = 'failed', step = 'confirm_paused',
      error = 'mirrors did not confirm their pause before the deadline' WHERE id = '${w.id}'`);
  }
  return async () => {
    expect((await api.post('/api/maintenance/abort', { data: { window_id: w.id } })).status()).toBe(200);
    await waitStatus(api, (s) => s === null);
    await api.post('/api/maintenance/dismiss-result', { data: { window_id: w.id } });
  };
}

// Every page a signed-in admin can open, plus the 404 page.
export const ALL_PAGES = ['/', '/mirrors', '/peers', '/history', '/users', '/account', '/about', '/no-such-page'];
