// Playwright drives Debian's Chromium (no browser download). The server under test is started
// by run.mjs, which passes its address in QUIESCE_BASE_URL.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  // One server per backend is shared by every test, and maintenance is global to it (a window
  // pauses every mirror): tests run one at a time so one cannot change what another asserts.
  fullyParallel: false,
  workers: 1,
  // In CI a test that fails is run once more: the last CI run failed one SQLite test that passed
  // on every run before and after, and its name was lost to the log's tail. A test that fails
  // twice still fails the run; one that passes on the retry is named "flaky" at the end of
  // run.mjs's output so it gets looked at.
  retries: process.env.CI ? 1 : 0,
  forbidOnly: true,
  // run.mjs also asks for a JSON report, to name every failed or retried test at the very end of
  // its output (a CI log is often read from its tail).
  reporter: process.env.QUIESCE_E2E_REPORT
    ? [['list'], ['json', { outputFile: process.env.QUIESCE_E2E_REPORT }]]
    : [['list']],
  use: {
    baseURL: process.env.QUIESCE_BASE_URL,
    trace: 'off',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        '--no-first-run',
      ],
    },
  },
  projects: [{ name: 'chromium', use: { browserName: 'chromium' } }],
});
