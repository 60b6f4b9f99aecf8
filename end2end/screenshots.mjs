// Screenshots of each page in each maintenance state, for people to look at after a change (not
// part of the test run). Starts real servers like the end-to-end tests (run.mjs: SQLite, then
// Postgres, which adds the enabling and failed states) and writes PNGs under
// end2end/screenshots-out/<backend>/<state>/.
//
//   node end2end/screenshots.mjs                 (after cargo leptos build)
//   QUIESCE_E2E_BACKENDS=postgres node end2end/screenshots.mjs
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const child = spawn(process.execPath, [join(here, 'run.mjs'), '--config', 'screenshots.config.mjs'], { stdio: 'inherit' });
child.on('exit', (code) => process.exit(code ?? 1));
