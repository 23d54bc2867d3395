// The end-to-end test: code-server with the packaged .vsix, driven by Playwright in Debian's Chromium. Run by
// `npm run test:e2e` (which packages the .vsix first), and as the last step of `npm test`, after the other tests.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 300_000,
    maxWorkers: 1,
  },
});
