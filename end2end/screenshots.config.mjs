// Playwright settings for the screenshot run (end2end/screenshots.mjs); not part of the tests.
import base from './playwright.config.mjs';

export default { ...base, testDir: './screenshots', timeout: 600_000 };
