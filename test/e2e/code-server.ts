// Starting and stopping a real VS Code for the end-to-end test, as ../shared/e2e/README.md describes: code-server
// (VS Code's workbench and extension host from the npm registry) on Node 24, with the packaged .vsix installed into a
// fresh profile, reachable only on 127.0.0.1, and a HOME of its own so nothing is written to the user's folders.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import * as path from 'node:path';

export const NODE_VERSION = '24.21.0';
export const CODE_SERVER_VERSION = '4.139.1';

export interface Tools {
  node: string;
  codeServer: string;
}

/** The tools test/e2e/setup.sh installs; a missing one is an error that says how to get it. */
export function findTools(): Tools {
  const root = process.env.ATTENTION_LENS_E2E_TOOLS ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'attention-lens-e2e');
  const node = path.join(root, `node-${NODE_VERSION}`, 'bin', 'node');
  const codeServer = path.join(root, `code-server-${CODE_SERVER_VERSION}`, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  for (const f of [node, codeServer]) if (!existsSync(f)) throw new Error(`${f} is missing: run test/e2e/setup.sh first`);
  return { node, codeServer };
}

export function findVsix(root: string): string {
  const vsix = readdirSync(root).filter((f) => /^attention-lens-linux-x64-.*\.vsix$/.test(f));
  if (vsix.length !== 1) throw new Error(`expected one attention-lens-linux-x64-*.vsix in ${root} (run 'npm run package'), found ${vsix.length}`);
  return path.join(root, vsix[0]);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RunningCodeServer {
  url: string;
  home: string;
  log: () => string;
  stop: () => Promise<void>;
}

/** Settings that keep the workbench quiet: no trust prompt, no welcome page, no AI, no recommendations. */
const QUIET = {
  'security.workspace.trust.enabled': false,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'chat.disableAIFeatures': true,
  'chat.commandCenter.enabled': false,
  'extensions.ignoreRecommendations': true,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'update.mode': 'none',
  'telemetry.telemetryLevel': 'off',
  'window.commandCenter': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

export async function startCodeServer(tools: Tools, vsix: string, workspace: string, settings: Record<string, unknown>): Promise<RunningCodeServer> {
  const home = mkdtempSync(path.join(tmpdir(), 'attention-lens-e2e-home-'));
  const userData = path.join(home, 'user-data');
  const extensions = path.join(home, 'extensions');
  mkdirSync(path.join(userData, 'User'), { recursive: true });
  writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify({ ...QUIET, ...settings }, null, 2));
  const port = await freePort();
  const config = path.join(home, 'config.yaml');
  writeFileSync(config, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const env = {
    ...process.env,
    HOME: home,
    PATH: `${path.dirname(tools.node)}:${process.env.PATH}`,
    // The workbench must never look for extensions outside this machine.
    EXTENSIONS_GALLERY: '{"serviceUrl":"http://127.0.0.1:9/gallery"}',
  };
  const base = [tools.codeServer, '--config', config, '--user-data-dir', userData, '--extensions-dir', extensions];
  execFileSync(tools.node, [...base, '--install-extension', vsix], { env, stdio: 'pipe' });

  let output = '';
  const child: ChildProcess = spawn(
    tools.node,
    [...base, '--auth', 'none', '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--bind-addr', `127.0.0.1:${port}`, workspace],
    // A process group of its own: stopping it must also stop the file watcher and the extension host it starts.
    { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  const stop = async () => {
    if (child.pid && child.exitCode === null) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await new Promise((r) => setTimeout(r, 500));
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(home, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`code-server did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, home, log: () => output, stop };
}
