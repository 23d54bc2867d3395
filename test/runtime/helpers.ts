// Shared by the runtime tests: a worker bundle built from the current sources (so a stale dist/ can never be what
// is tested), the shared fixtures (read in place, never copied) and a client per test file.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { RuntimeClient } from '../../src/runtime/client';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));

export function fixture(name: string): { dir: string; model: string; manifest: string } {
  const dir = join(FIXTURES, name);
  return { dir, model: join(dir, 'model.onnx'), manifest: join(dir, 'manifest.json') };
}

/** Every fixture folder that has a model and a manifest. */
export function fixtureNames(): string[] {
  return readdirSync(FIXTURES)
    .filter((d) => existsSync(join(FIXTURES, d, 'model.onnx')) && existsSync(join(FIXTURES, d, 'manifest.json')))
    .sort();
}

export function readManifest(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(fixture(name).manifest, 'utf8')) as Record<string, unknown>;
}

/** Bundles src/runtime/worker.ts into .tmp/ (inside the repo, so `onnxruntime-node` resolves from node_modules). */
export async function buildWorker(): Promise<string> {
  const dir = join(REPO, '.tmp', 'runtime-test');
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, `worker-${process.pid}-${Date.now()}.js`);
  await build({
    entryPoints: [join(REPO, 'src/runtime/worker.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['onnxruntime-node'],
    logLevel: 'warning',
  });
  return outfile;
}

/** One client (one worker) per test file; `close` stops the worker and removes its bundle. */
export async function startClient(): Promise<{ client: RuntimeClient; close: () => Promise<void> }> {
  const workerPath = await buildWorker();
  const client = new RuntimeClient({ workerPath });
  return {
    client,
    close: async () => {
      await client.dispose();
      rmSync(workerPath, { force: true });
    },
  };
}

/**
 * For tests that run the CLI in process: builds the worker once for the file and points the CLI at it
 * (ATTENTION_LENS_WORKER), then removes it. Call at the top level of the test file.
 */
export function useBuiltWorker(): void {
  let workerPath = '';
  beforeAll(async () => {
    workerPath = await buildWorker();
    process.env.ATTENTION_LENS_WORKER = workerPath;
  });
  afterAll(() => {
    delete process.env.ATTENTION_LENS_WORKER;
    rmSync(workerPath, { force: true });
  });
}
