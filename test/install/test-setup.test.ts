// `npm test`'s pretest step (test/e2e/setup.sh): quick when everything is in place, and, where it cannot install what
// is missing, one line that says what to install, at once. The cases without apt or without root are made on this
// machine in a private mount namespace (root and `unshare` needed, as in CI): /usr/bin/chromium, and apt-get, are
// hidden there for the script alone, and the user is dropped to `nobody`.
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const SETUP = path.resolve(__dirname, '..', 'e2e', 'setup.sh');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-setup-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

function setup(extra: Record<string, string> = {}): SpawnSyncReturns<string> & { ms: number } {
  const started = performance.now();
  const r = spawnSync('bash', [SETUP], { env: { ...process.env, ...extra }, encoding: 'utf8', timeout: 30_000 });
  return { ...r, ms: performance.now() - started };
}

/** Runs the script in a mount namespace where `hide` (existing paths) are not executable; optionally as nobody. */
function setupIsolated(hide: string[], asNobody: boolean): SpawnSyncReturns<string> {
  const blank = path.join(scratch, 'blank');
  fs.writeFileSync(blank, '', { mode: 0o644 });
  const mounts = hide.map((p) => `if [ -e ${p} ]; then mount --bind ${blank} ${p}; fi`).join(' && ');
  const as = asNobody ? 'setpriv --reuid 65534 --regid 65534 --clear-groups ' : '';
  const tools = path.join(scratch, 'tools');
  // Without CHROMIUM_PATH, so that the script looks for the hidden /usr/bin/chromium.
  const { CHROMIUM_PATH: _, ...env } = process.env;
  return spawnSync('unshare', ['--mount', 'bash', '-c', `${mounts} && ${as}env HOME=${scratch} ATTENTION_LENS_E2E_TOOLS=${tools} bash ${SETUP}`], {
    env,
    encoding: 'utf8',
    timeout: 30_000,
  });
}

const isRoot = process.getuid?.() === 0;
const canIsolate = isRoot && spawnSync('unshare', ['--mount', 'true']).status === 0 && spawnSync('setpriv', ['--version']).status === 0;

function expectOneLine(r: SpawnSyncReturns<string>, pattern: RegExp): void {
  expect(r.status, r.stderr).toBe(1);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^test setup: /);
  expect(lines[0]).toMatch(pattern);
}

describe('the pretest step (test/e2e/setup.sh)', () => {
  it('only looks when chromium, Node 24 and code-server are in place', () => {
    const r = setup();
    expect(r.status, `${r.stderr}\n(run 'npm run pretest' first: this test expects the tools installed)`).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toMatch(/^test setup: ready: \S+chromium, Node 24\.\d+\.\d+ and code-server \d+\.\d+\.\d+ in /);
    expect(r.ms).toBeLessThan(5_000);
  });

  it('stops with one line when CHROMIUM_PATH names no browser', () => {
    const r = setup({ CHROMIUM_PATH: path.join(scratch, 'no-chromium') });
    expectOneLine(r, /CHROMIUM_PATH is \S+no-chromium, which is not an executable/);
  });

  it.skipIf(!canIsolate)('stops with one line saying what to run when the user cannot install chromium', () => {
    const r = setupIsolated(['/usr/bin/chromium'], true);
    expectOneLine(r, /this user cannot install.*run 'sudo apt-get update && sudo apt-get install -y chromium( libkrb5-dev)?', then npm test again$/);
  });

  it.skipIf(!canIsolate)('stops with one line saying what to install when there is no apt-get', () => {
    const r = setupIsolated(['/usr/bin/chromium', '/usr/bin/apt-get'], false);
    expectOneLine(r, /needs chromium( libkrb5-dev)? and there is no apt-get here: install Chromium .*then run npm test again$/);
  });
});
