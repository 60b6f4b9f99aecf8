// Runs the end-to-end suite once per catalog backend (SQLite, then Postgres).
//
// For each backend it creates a fresh database, starts the already-built server binary on a free
// port, waits for /healthz, runs Playwright against it, stops the server with SIGTERM and drops
// the database. A missing Chromium or Postgres is a failure, never a skip.
//
// Before starting the server it creates one user per role with the real command line
// (`server user create`); the tests sign in as them (names and password in QUIESCE_E2E_*).
//
// Environment: QUIESCE_E2E_BACKENDS (default "sqlite,postgres"), QUIESCE_TEST_POSTGRES_URL
// (default postgres://postgres@127.0.0.1:5432/postgres), QUIESCE_SERVER_BIN (default
// ../target/debug/server), CHROMIUM_PATH (default /usr/bin/chromium).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const serverBin = process.env.QUIESCE_SERVER_BIN || join(root, 'target', 'debug', 'server');
const siteRoot = process.env.QUIESCE_SITE_ROOT || join(root, 'target', 'site');
const chromium = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const pgAdmin = process.env.QUIESCE_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const backends = (process.env.QUIESCE_E2E_BACKENDS || 'sqlite,postgres').split(',').map((s) => s.trim()).filter(Boolean);

function fail(msg) {
  console.error(`end2end: ${msg}`);
  process.exit(1);
}

if (!existsSync(chromium)) fail(`Chromium not found at ${chromium} (install Debian's chromium package)`);
if (!existsSync(serverBin)) fail(`server binary not found at ${serverBin}; build it first (cargo leptos build)`);
if (!existsSync(join(siteRoot, 'pkg'))) fail(`site not built at ${siteRoot}/pkg; run cargo leptos build`);

function psql(sql) {
  const r = spawnSync('psql', [pgAdmin, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql failed: ${r.stderr || r.error}`);
}

function createDatabase(backend) {
  if (backend === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'quiesce-e2e-'));
    return { url: `sqlite://${dir}/catalog.db`, dir, drop: () => rmSync(dir, { recursive: true, force: true }) };
  }
  if (backend === 'postgres') {
    const name = `quiesce_e2e_${randomUUID().replaceAll('-', '')}`;
    psql(`CREATE DATABASE ${name}`);
    const u = new URL(pgAdmin);
    u.pathname = `/${name}`;
    // The demo's SQLite peers live in a directory of their own.
    const dir = mkdtempSync(join(tmpdir(), 'quiesce-e2e-'));
    return {
      url: u.toString(),
      dir,
      drop: () => {
        psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  fail(`unknown backend ${backend}`);
}

const PASSWORD = 'end-to-end password';
const USERS = { viewer: 'e2e-viewer', operator: 'e2e-operator', admin: 'e2e-admin' };

function createUsers(databaseUrl) {
  for (const [role, name] of Object.entries(USERS)) {
    const r = spawnSync(serverBin, ['user', 'create', '--username', name, '--role', role], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, QUIESCE_DATABASE_URL: databaseUrl, QUIESCE_PASSWORD: PASSWORD, QUIESCE_LOG: 'warn' },
    });
    if (r.status !== 0) throw new Error(`user create ${name} failed: ${r.stderr}`);
  }
}

// Starts the server on port 0 and resolves with its base URL, read from its "serving on" log line.
function startServer(databaseUrl, dataDir) {
  return new Promise((resolveStart, rejectStart) => {
    const child = spawn(serverBin, [], {
      cwd: root,
      env: {
        ...process.env,
        QUIESCE_DATABASE_URL: databaseUrl,
        QUIESCE_LISTEN: '127.0.0.1:0',
        // Local tests run over plain http; production keeps the Secure cookie flag.
        QUIESCE_PLAIN_HTTP: 'true',
        // Real replication behind the pages: demo peers, a steady writer and three mirrors.
        QUIESCE_DEMO: 'true',
        QUIESCE_DATA_DIR: dataDir,
        // The Postgres peers the tests create use the local test server's trust authentication
        // (no password): an ambient credential the server refuses unless told otherwise.
        QUIESCE_PEER_ALLOW_PASSWORDLESS: 'true',
        QUIESCE_SITE_ROOT: siteRoot,
        QUIESCE_LOG: process.env.QUIESCE_LOG || 'info,sqlx::postgres::notice=warn',
        NO_COLOR: '1',
      },
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let buffered = '';
    let started = false;
    const timer = setTimeout(() => rejectStart(new Error('server did not start within 60 s')), 60_000);
    child.stderr.on('data', (chunk) => {
      process.stderr.write(chunk);
      if (started) return;
      buffered += chunk.toString();
      const m = buffered.match(/serving on (http:\/\/[0-9.:]+)/);
      if (m) {
        started = true;
        clearTimeout(timer);
        resolveStart({ child, baseUrl: m[1] });
      }
    });
    child.on('exit', (code) => {
      if (!started) {
        clearTimeout(timer);
        rejectStart(new Error(`server exited with ${code} before serving`));
      }
    });
  });
}

async function waitHealthy(baseUrl) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`${baseUrl}/healthz`);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${baseUrl}/healthz did not answer 200 within 30 s`);
}

function stopServer(child) {
  return new Promise((res) => {
    if (child.exitCode !== null) return res(child.exitCode);
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('exit', (code) => {
      clearTimeout(kill);
      res(code);
    });
    child.kill('SIGTERM');
  });
}

// Every failed or flaky test in Playwright's JSON report, as "file:line title: first error line".
function troubledTests(reportPath) {
  let report;
  try {
    report = JSON.parse(readFileSync(reportPath, 'utf8'));
  } catch {
    return ['(no report was written)'];
  }
  const out = [];
  const walk = (suite) => {
    for (const spec of suite.specs || []) {
      for (const test of spec.tests || []) {
        if (test.status !== 'unexpected' && test.status !== 'flaky') continue;
        const err = (test.results || []).map((r) => r.error?.message).find(Boolean) || '';
        const first = err.replace(/\u001b\[[0-9;]*m/g, '').split('\n').find((l) => l.trim()) || '';
        out.push(`${test.status === 'flaky' ? 'flaky' : 'FAILED'} ${spec.file}:${spec.line} ${spec.title}: ${first.trim()}`);
      }
    }
    for (const child of suite.suites || []) walk(child);
  };
  for (const suite of report.suites || []) walk(suite);
  return out;
}

const summary = [];
let failed = 0;
for (const backend of backends) {
  console.log(`\n=== end-to-end on ${backend} ===`);
  const db = createDatabase(backend);
  const reportPath = join(db.dir, 'playwright-report.json');
  let server;
  try {
    createUsers(db.url);
    server = await startServer(db.url, db.dir);
    await waitHealthy(server.baseUrl);
    // Not spawnSync: this process must keep reading the server's log pipe while the tests run,
    // or the pipe fills up and the server blocks on its next log line.
    const status = await new Promise((done) => {
      const child = spawn('npx', ['playwright', 'test', ...process.argv.slice(2)], {
        cwd: here,
        stdio: 'inherit',
        env: {
          ...process.env,
          QUIESCE_BASE_URL: server.baseUrl,
          QUIESCE_BACKEND: backend,
          QUIESCE_DATABASE_URL: db.url,
          QUIESCE_E2E_PASSWORD: PASSWORD,
          QUIESCE_E2E_USERS: JSON.stringify(USERS),
          QUIESCE_E2E_REPORT: reportPath,
        },
      });
      child.on('exit', (code) => done(code));
    });
    for (const line of troubledTests(reportPath)) summary.push(`${backend}: ${line}`);
    if (status !== 0) {
      failed += 1;
      console.error(`end2end: Playwright failed on ${backend}`);
    }
  } catch (e) {
    failed += 1;
    summary.push(`end2end: ${backend}: ${e.message}`);
    console.error(`end2end: ${backend}: ${e.message}`);
  } finally {
    if (server) {
      const code = await stopServer(server.child);
      if (code !== 0) {
        failed += 1;
        summary.push(`end2end: server on ${backend} exited with ${code} after SIGTERM (expected 0)`);
        console.error(`end2end: server on ${backend} exited with ${code} after SIGTERM (expected 0)`);
      }
    }
    db.drop();
  }
}
if (summary.length) console.log(`\n${summary.join('\n')}`);
console.log(`\nend-to-end: ${backends.length - failed} backends passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
