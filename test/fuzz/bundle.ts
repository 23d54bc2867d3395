// Bundles the fuzz worker and the CLI from the current sources into .tmp/ (inside the repository, so onnxruntime-node
// resolves from node_modules), so that the campaign in the suite never runs a stale dist/.
import { build, type BuildOptions } from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const REPO = path.resolve(__dirname, '..', '..');

export async function bundleFuzz(): Promise<{ workerFile: string; cliFile: string; cleanup: () => void }> {
  const dir = path.join(REPO, '.tmp', `fuzz-test-${process.pid}-${Date.now()}`);
  fs.mkdirSync(dir, { recursive: true });
  const common: BuildOptions = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: ['onnxruntime-node'], logLevel: 'warning' };
  const workerFile = path.join(dir, 'worker.js');
  const cliFile = path.join(dir, 'cli.js');
  await build({ ...common, entryPoints: [path.join(REPO, 'fuzz', 'worker.ts')], outfile: workerFile });
  await build({ ...common, entryPoints: [path.join(REPO, 'src', 'cli.ts')], outfile: cliFile });
  return { workerFile, cliFile, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
