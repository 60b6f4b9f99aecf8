// UI benchmark: prints figures, asserts nothing (DESIGN.md §10 targets are compared by people).
//
//   1. what a page loads (wasm + js + css), raw and gzip-compressed;
//   2. latency from a state change (a mirror paused or resumed through the API) to every open
//      Mirrors page showing it, over N changes with P pages open (p50 / p99 / max);
//   3. requests per second and latency percentiles for the maintenance page under `wrk -c 32`,
//      next to the sign-in page (a bare Leptos page of the same build).
//
// Run through scripts/bench-ui.sh, which builds the release site, starts a server with the demo
// on a fresh SQLite catalog and passes its address here. Options (env): BENCH_PAGES (100),
// BENCH_CHANGES (100), BENCH_WRK_SECONDS (10).
import { chromium } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const base = process.env.QUIESCE_BASE_URL;
const user = process.env.BENCH_USER;
const password = process.env.BENCH_PASSWORD;
const siteRoot = process.env.QUIESCE_SITE_ROOT;
const pagesWanted = Number(process.env.BENCH_PAGES || 100);
const changes = Number(process.env.BENCH_CHANGES || 100);
const wrkSeconds = Number(process.env.BENCH_WRK_SECONDS || 10);

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

// 1. Sizes.
{
  const pkg = join(siteRoot, 'pkg');
  let raw = 0;
  let gz = 0;
  console.log('== what the page loads ==');
  for (const f of readdirSync(pkg).filter((f) => /\.(wasm|js|css)$/.test(f)).sort()) {
    const bytes = readFileSync(join(pkg, f));
    const z = gzipSync(bytes, { level: 9 }).length;
    raw += bytes.length;
    gz += z;
    console.log(`${f.padEnd(20)} ${kb(bytes.length).padStart(12)} raw  ${kb(z).padStart(10)} gzip`);
  }
  console.log(`${'total'.padEnd(20)} ${kb(raw).padStart(12)} raw  ${kb(gz).padStart(10)} gzip (target ≤ 250 KB)`);
}

// A signed-in browser context and its session cookie.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run',
    '--disable-renderer-backgrounding', '--disable-background-timer-throttling',
    '--disable-backgrounding-occluded-windows'],
});
const context = await browser.newContext({ baseURL: base });
const login = await context.request.post('/api/login', { data: { username: user, password } });
if (login.status() !== 200) throw new Error(`sign-in failed: ${login.status()}`);
const cookie = (await context.cookies()).find((c) => c.name === 'quiesce_session');
const api = context.request;

// 2. State change → page latency.
{
  console.log(`\n== state change → page shows it (${pagesWanted} Mirrors pages open, ${changes} changes) ==`);
  const mirrors = await (await api.get('/api/mirrors')).json();
  const target = mirrors[0];
  // Wait until the demo mirror runs.
  for (let i = 0; i < 300; i++) {
    const m = (await (await api.get('/api/mirrors')).json()).find((x) => x.id === target.id);
    if (m.status === 'running') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  // One browser context per page, as if 100 people watched: a browser allows six HTTP/1.1
  // connections per host, so one context could hold only six live pages (see app/src/live.rs).
  const storageState = await context.storageState();
  const pages = [];
  // Open the pages ten at a time (each hydrates and connects its stream).
  for (let i = 0; i < pagesWanted; i += 10) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(10, pagesWanted - i) }, async () => {
        const ctx = await browser.newContext({ baseURL: base, storageState });
        const page = await ctx.newPage();
        await page.goto('/mirrors', { timeout: 120_000 });
        await page.locator('body[data-hydrated="true"]').waitFor({ timeout: 120_000 });
        await page.locator('#live-state[data-state="live"]').waitFor({ timeout: 120_000 });
        return page;
      }),
    );
    pages.push(...batch);
  }
  // Each page records when the target row shows a new status (the browser's clock is the
  // machine's, as is this process's).
  const watch = (name) => {
    window.__seen = [];
    const row = () => document.querySelector(`#mirrors-table tr[data-mirror="${name}"]`);
    let last = row()?.dataset.status;
    new MutationObserver(() => {
      const now = Date.now();
      const s = row()?.dataset.status;
      if (s && s !== last) {
        last = s;
        window.__seen.push({ s, at: now });
      }
    }).observe(document.getElementById('mirrors-table'), { subtree: true, childList: true, attributes: true });
  };
  await Promise.all(pages.map((p) => p.evaluate(watch, target.name)));
  // Changes at a steady pace; afterwards each page's record is matched to them.
  const gapMs = Number(process.env.BENCH_GAP_MS || 1000);
  const made = [];
  const apiTimes = [];
  let pause = true;
  for (let i = 0; i < changes; i++) {
    const t0 = Date.now();
    const r = await api.post(pause ? '/api/mirrors/pause' : '/api/mirrors/resume', { data: { id: target.id } });
    apiTimes.push(Date.now() - t0);
    if (r.status() !== 200) throw new Error(`change ${i}: ${r.status()} ${await r.text()}`);
    made.push({ t0, expected: pause ? ['pausing', 'paused'] : ['running'] });
    pause = !pause;
    await new Promise((r) => setTimeout(r, Math.max(0, gapMs - (Date.now() - t0))));
  }
  await new Promise((r) => setTimeout(r, 2000));
  const latencies = [];
  let missed = 0;
  for (const p of pages) {
    const seen = await p.evaluate(() => window.__seen);
    made.forEach((c, i) => {
      const until = made[i + 1]?.t0 ?? Infinity;
      const hit = seen.find((e) => e.at >= c.t0 && e.at < until && c.expected.includes(e.s));
      if (hit) latencies.push(hit.at - c.t0);
      else missed += 1;
    });
  }
  console.log(`pages showing each change before the next one (${gapMs} ms later): ${latencies.length}, missed: ${missed}`);
  console.log(`API call alone: p50 ${pct(apiTimes, 50)} ms, p99 ${pct(apiTimes, 99)} ms`);
  console.log(
    `change → shown, over ${latencies.length} (page, change) pairs: p50 ${pct(latencies, 50)} ms, ` +
      `p99 ${pct(latencies, 99)} ms, max ${Math.max(...latencies)} ms (target p99 ≤ 50 ms)`,
  );
  await Promise.all(pages.map((p) => p.context().close()));
}
await browser.close();

// 3. wrk.
function wrk(path) {
  const r = spawnSync('wrk', ['-t2', '-c32', `-d${wrkSeconds}s`, '--latency', '-H', `Cookie: quiesce_session=${cookie.value}`, `${base}${path}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const rps = Number((r.stdout.match(/Requests\/sec:\s+([0-9.]+)/) || [])[1]);
  const p = (q) => (r.stdout.match(new RegExp(`\\s${q}%\\s+([0-9.]+\\w+)`)) || [])[1];
  const non2xx = (r.stdout.match(/Non-2xx or 3xx responses:\s+(\d+)/) || [])[1] || 0;
  return { rps, p50: p(50), p99: p(99), non2xx };
}
{
  console.log(`\n== wrk -t2 -c32 -d${wrkSeconds}s ==`);
  const bare = wrk('/login');
  const page = wrk('/');
  console.log(`sign-in page (bare): ${bare.rps.toFixed(0)} req/s, p50 ${bare.p50}, p99 ${bare.p99}, non-2xx ${bare.non2xx}`);
  console.log(`maintenance page:    ${page.rps.toFixed(0)} req/s, p50 ${page.p50}, p99 ${page.p99}, non-2xx ${page.non2xx}`);
  console.log(`ratio ${(page.rps / bare.rps).toFixed(2)} (target ≥ 0.7, p99 ≤ 20 ms)`);
}
