// The walking skeleton: the maintenance page is server-rendered from the database, hydrates, and
// it connects to the live event stream.
import { test, expect } from '@playwright/test';
import { hydrated, signIn, signInRequest } from './helpers.mjs';

const backend = process.env.QUIESCE_BACKEND;

test('the status endpoint answers JSON from the catalog, only when signed in', async ({ request }) => {
  expect((await request.get('/api/status')).status()).toBe(401);
  await signInRequest(request, 'viewer');
  const r = await request.get('/api/status');
  expect(r.status()).toBe(200);
  const body = await r.json();
  expect(body.backend).toBe(backend);
  expect(body.catalog_ok).toBe(true);
  expect(body.instance.id).toMatch(/^[0-9a-f-]{36}$/);
});

test('the page is rendered on the server with the instance status', async ({ request }) => {
  await signInRequest(request, 'viewer');
  const status = await (await request.get('/api/status')).json();
  const html = await (await request.get('/')).text();
  expect(html).toContain('Maintenance');
  // The instance card is on the About page, linked from every page's footer.
  expect(html).toContain('href="/about"');
  expect(await (await request.get('/about')).text()).toContain(status.instance.id);
});

test('the page hydrates and connects to the live event stream', async ({ page }) => {
  await signIn(page, 'viewer');
  await hydrated(page);
  await page.getByRole('link', { name: 'About this instance' }).click();
  await expect(page.locator('#catalog-backend')).toContainText(backend);
  await expect(page.locator('#instance-id')).toHaveText(/^[0-9a-f-]{36}$/);
  await expect(page.locator('#live-state')).toHaveAttribute('data-state', 'live');
  await expect(page.locator('#live-state')).toHaveText('Live');
});

test('an unknown page is a 404 with a way back', async ({ page }) => {
  await signIn(page, 'viewer');
  const r = await page.goto('/no-such-page');
  expect(r.status()).toBe(404);
  await expect(page.getByRole('link', { name: 'Back to maintenance' })).toBeVisible();
});
