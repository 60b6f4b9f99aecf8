// UI benchmark: prints figures, asserts nothing (DESIGN.md §10 targets are compared by people).
//
//   1. what a page loads (wasm + js + css), raw and gzip-compressed;
//   2. latency from a state change (a mirror paused or resumed through the API) to every open
//      Mirrors page showing it, over N changes with P pages open (p50 / p99 / max);
//   3. per page (maintenance, mirrors, peers, history, about): bytes the browser loads (document,
//      scripts, wasm, styles; raw, gzip, brotli), time to interactive in Chromium (navigation to
//      hydrated), and requests per second under `wrk -c 32` next to the sign-in page (a bare
//      Leptos page of the same build), as a ratio.
//
// Run through scripts/bench-ui.sh, which builds the release site, starts a server with the demo
// on a fresh SQLite catalog and passes its address here. Options (env): BENCH_PAGES (100),
// BENCH_CHANGES (100), BENCH_WRK_SECONDS (10).
import { chromium } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants as zc, gzipSync } from 'node:zlib';

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
const br = (bytes) => brotliCompressSync(bytes, { params: { [zc.BROTLI_PARAM_QUALITY]: 11 } }).length;
const PAGES = (process.env.BENCH_PAGE_LIST || '/,/mirrors,/peers,/history,/about').split(',');

// 1. Sizes.
{
  const pkg = join(siteRoot, 'pkg');
  let raw = 0;
  let gz = 0;
  console.log('== what the page loads ==');
  let brotli = 0;
  for (const f of readdirSync(pkg).filter((f) => /\.(wasm|js|css)$/.test(f)).sort()) {
    const bytes = readFileSync(join(pkg, f));
    const z = gzipSync(bytes, { level: 9 }).length;
    const b = br(bytes);
    raw += bytes.length;
    gz += z;
    brotli += b;
    console.log(`${f.padEnd(40)} ${kb(bytes.length).padStart(12)} raw  ${kb(z).padStart(10)} gzip  ${kb(b).padStart(10)} br`);
  }
  console.log(`${'total'.padEnd(40)} ${kb(raw).padStart(12)} raw  ${kb(gz).padStart(10)} gzip  ${kb(brotli).padStart(10)} br (target ≤ 250 KB gzip)`);
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
const storage = await context.storageState();

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
    // The whole body: a re-read swaps the list's region (the table with it) for the server's.
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
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

// 3. Per page: what the browser loads and when it is interactive.
const perPage = {};
{
  const b2 = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run'],
  });
  console.log('\n== per page: bytes loaded (cold cache) and time to interactive ==');
  for (const path of PAGES) {
    const ctx = await b2.newContext({ baseURL: base, storageState: storage });
    const page = await ctx.newPage();
    const bodies = [];
    page.on('response', async (r) => {
      const u = new URL(r.url());
      if (u.origin !== new URL(base).origin || u.pathname === '/api/events') return;
      try {
        bodies.push(await r.body());
      } catch {
        // a redirect or a stream has no body to count
      }
    });
    const t0 = Date.now();
    await page.goto(path);
    await page.locator('body[data-hydrated="true"]').waitFor({ timeout: 60_000 });
    const tti = Date.now() - t0;
    await page.waitForLoadState('networkidle').catch(() => {});
    const raw = bodies.reduce((n, b) => n + b.length, 0);
    const gz = bodies.reduce((n, b) => n + gzipSync(b, { level: 9 }).length, 0);
    const brotli = bodies.reduce((n, b) => n + br(b), 0);
    perPage[path] = { raw, gz, brotli, tti };
    await ctx.close();
  }
  await b2.close();
}

// 4. wrk.
function wrk(path) {
  const r = spawnSync('wrk', ['-t2', '-c32', `-d${wrkSeconds}s`, '--latency', '-H', `Cookie: quiesce_session=${cookie.value}`, `${base}${path}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const rps = Number((r.stdout.match(/Requests\/sec:\s+([0-9.]+)/) || [])[1]);
  const p = (q) => (r.stdout.match(new RegExp(`\\s${q}%\\s+([0-9.]+\\w+)`)) || [])[1];
  const non2xx = (r.stdout.match(/Non-2xx or 3xx responses:\s+(\d+)/) || [])[1] || 0;
  return { rps, p50: p(50), p99: p(99), non2xx };
}
{
  console.log(`\n== wrk -t2 -c32 -d${wrkSeconds}s, per page ==`);
  const bare = wrk('/login');
  console.log(`sign-in page (bare): ${bare.rps.toFixed(0)} req/s, p50 ${bare.p50}, p99 ${bare.p99}, non-2xx ${bare.non2xx}`);
  console.log(`${'page'.padEnd(10)} ${'raw'.padStart(10)} ${'gzip'.padStart(10)} ${'brotli'.padStart(10)} ${'TTI'.padStart(8)} ${'req/s'.padStart(8)} ${'ratio'.padStart(6)} ${'p50'.padStart(8)} ${'p99'.padStart(8)}`);
  for (const path of PAGES) {
    const w = wrk(path);
    const b = perPage[path];
    console.log(
      `${path.padEnd(10)} ${kb(b.raw).padStart(10)} ${kb(b.gz).padStart(10)} ${kb(b.brotli).padStart(10)} ${`${b.tti} ms`.padStart(8)} ` +
        `${w.rps.toFixed(0).padStart(8)} ${(w.rps / bare.rps).toFixed(2).padStart(6)} ${String(w.p50).padStart(8)} ${String(w.p99).padStart(8)}` +
        (w.non2xx ? ` non-2xx ${w.non2xx}` : ''),
    );
  }
  console.log('targets: ≤ 250 KB gzip per page, wrk ratio ≥ 0.7, p99 ≤ 20 ms');
}
