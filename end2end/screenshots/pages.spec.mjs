// Takes a full-page screenshot of every page in every maintenance state, as an operator (and the
// Users page as a viewer, the 403 page), into end2end/screenshots-out/<backend>/<state>/.
import { test } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALL_PAGES, STATES, enterState, hydrated, signIn, stateAvailable } from '../tests/helpers.mjs';

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'screenshots-out', process.env.QUIESCE_BACKEND || 'unknown');

test('screenshots of every page in every state', async ({ page, browser }) => {
  await page.setViewportSize({ width: 1440, height: 900 });
  await signIn(page, 'admin');
  const api = page.context().request;
  for (const state of STATES.filter(stateAvailable)) {
    const leave = await enterState(api, state);
    try {
      const dir = join(out, state);
      mkdirSync(dir, { recursive: true });
      const latest = await (await api.get('/api/maintenance/windows')).json();
      const pages = [...ALL_PAGES, ...(latest.length ? [`/history/${latest[0].id}`] : [])];
      for (const path of pages) {
        await page.goto(path);
        await hydrated(page);
        await page.waitForLoadState('networkidle').catch(() => {});
        const name = path === '/' ? 'maintenance' : path.slice(1).replaceAll('/', '_');
        await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
      }
    } finally {
      await leave();
    }
  }
  const viewer = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const vp = await viewer.newPage();
  await signIn(vp, 'viewer');
  await vp.goto('/users');
  await vp.screenshot({ path: join(out, 'viewer-users-403.png'), fullPage: true });
  await viewer.close();
  console.log(`screenshots in ${out}`);
});
