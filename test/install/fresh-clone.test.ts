// The README's first command on a fresh clone: `npm ci` alone must leave a working tool (the `prepare` script builds
// dist/), so that `npx attention-lens analyze` then analyses the bundled demo model, and `npm start` does the same.
// The repository's HEAD (what is committed, nothing else) is cloned into a temporary folder and installed there once,
// with npm's cache preferred over the network (about a minute on 2 cores), in an environment cleared of what the
// running `npm test` put in it. Nothing of the clone's own test suite runs, and nothing is left behind: the folder
// goes, and so does the entry `npx` makes for the clone in npm's cache. The test can be left out of a local run with
// ATTENTION_LENS_SKIP_FRESH_CLONE=1; CI never sets it.
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..', '..');
const SKIP = process.env.ATTENTION_LENS_SKIP_FRESH_CLONE === '1';
/** npm configuration that describes the machine (where the cache and the registry are), kept for the clone's npm. */
const MACHINE_NPM_CONFIG = /^npm_config_(cache|registry|userconfig|globalconfig|cafile|proxy|https_proxy|noproxy)$/i;

/**
 * A newcomer's shell: none of the variables npm sets for the running script (user agent, prefixes, package fields),
 * nor vitest's, nor an ONNXRUNTIME_NODE_INSTALL that would hide whether .npmrc alone keeps the install offline, and no
 * node_modules/.bin of this checkout on PATH. npm writes no log files for these runs.
 */
function newcomerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|INIT_CWD$|VITEST|NODE_ENV$|ONNXRUNTIME_NODE_INSTALL)/i.test(key) && !MACHINE_NPM_CONFIG.test(key)) continue;
    env[key] = value;
  }
  env.PATH = (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((dir) => !dir.includes(`node_modules${path.sep}.bin`) && !dir.includes('node-gyp-bin'))
    .join(path.delimiter);
  env.npm_config_logs_max = '0';
  // Should npx not find the project's own bin, it must fail rather than fetch a registry package of the same name.
  env.npm_config_yes = 'false';
  return env;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 120_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  return r;
}

const tail = (r: SpawnSyncReturns<string>) => `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-30).join('\n');

/** The entries `npx` made in npm's cache for a package inside `dir`, a uniquely named folder (each links back to it). */
function npxEntriesFor(cache: string, dir: string): string[] {
  const npx = path.join(cache, '_npx');
  if (!fs.existsSync(npx)) return [];
  return fs.readdirSync(npx)
    .map((name) => path.join(npx, name))
    .filter((entry) => {
      try {
        return fs.readFileSync(path.join(entry, 'package.json'), 'utf8').includes(path.basename(dir));
      } catch {
        return false;
      }
    });
}

/** What the demo model's analysis prints: the file, its two sites, and the first site's row. */
function expectDemoAnalysis(r: SpawnSyncReturns<string>, clone: string): void {
  expect(r.status, tail(r)).toBe(0);
  expect(r.stdout).toContain(path.join(clone, 'examples', 'demo-llama.onnx'));
  expect(r.stdout).toMatch(/2 attention site\(s\)/);
  expect(r.stdout).toMatch(/\n\s+0\s+self\s+yes\s+4\s+2\s+32/);
}

describe('a fresh clone', () => {
  it.skipIf(SKIP)('is built by `npm ci`, after which `npx attention-lens analyze` and `npm start` analyse the demo model', () => {
    const env = newcomerEnv();
    const head = run('git', ['rev-parse', 'HEAD'], ROOT, env).stdout.trim();
    expect(head).toMatch(/^[0-9a-f]{40}$/);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-fresh-'));
    const clone = path.join(tmp, 'attention-lens');
    const cache = env.npm_config_cache ?? run('npm', ['config', 'get', 'cache'], tmp, env).stdout.trim();
    try {
      for (const args of [['clone', '--quiet', '--no-checkout', ROOT, clone], ['-C', clone, 'checkout', '--quiet', '--detach', head]]) {
        const git = run('git', args, tmp, env);
        expect(git.status, tail(git)).toBe(0);
      }
      expect(fs.existsSync(path.join(clone, 'dist'))).toBe(false);

      const install = run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], clone, env, 600_000);
      expect(install.status, tail(install)).toBe(0);
      expect(fs.existsSync(path.join(clone, 'dist', 'cli.js')), 'npm ci left no dist/cli.js: the prepare script did not build').toBe(true);
      // The install writes only what git ignores (node_modules/, dist/): no tracked file changes, no stray file appears.
      expect(run('git', ['status', '--porcelain'], clone, env).stdout).toBe('');

      expectDemoAnalysis(run('npx', ['attention-lens', 'analyze'], clone, env), clone);
      expectDemoAnalysis(run('npm', ['start'], clone, env), clone);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
      for (const entry of npxEntriesFor(cache, tmp)) fs.rmSync(entry, { recursive: true, force: true });
    }
    expect(fs.existsSync(tmp)).toBe(false);
    expect(npxEntriesFor(cache, tmp)).toEqual([]);
  }, 900_000);
});
