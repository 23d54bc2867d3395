// The worker as a process: a killed worker becomes an error for the request it held and the next request starts a
// fresh one; cancellation stops a request between runs, or kills a worker stuck inside one; a provider that cannot
// load falls back visibly.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type RuntimeClient, RuntimeError } from '../../src/runtime/client';
import { fixture, startClient } from './helpers';

let client: RuntimeClient;
let close: () => Promise<void>;
beforeAll(async () => {
  ({ client, close } = await startClient());
});
afterAll(async () => close());

const small = fixture('gpt2-eager-ts-op17');
const long = fixture('llama-long-eager-ts-op17');

async function expectCode(p: Promise<unknown>, code: RuntimeError['code']): Promise<RuntimeError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RuntimeError);
  expect((e as RuntimeError).code).toBe(code);
  return e as RuntimeError;
}

it('turns a worker killed mid-run into an error, and the next request runs on a fresh worker', async () => {
  let killedPid: number | undefined;
  const bench = client.bench(
    { models: [{ path: long.model }], points: [{ seq: 1024, past: 0 }], warmup: 0, iters: 1000, profileRuns: 0 },
    {
      // The first timed run has finished and the next one has started: kill the worker inside it.
      onProgress: (p) => {
        if (p.phase === 'timed' && killedPid === undefined) {
          killedPid = client.workerPid;
          process.kill(killedPid as number, 'SIGKILL');
        }
      },
    },
  );
  const err = await expectCode(bench, 'worker-exited');
  expect(err.message).toMatch(/SIGKILL/);
  const r = await client.run({ model: small.model, inputs: { file: small.manifest } });
  expect(r.outputs.logits.dims).toEqual([1, 16, 256]);
  expect(client.workerPid).toBeDefined();
  expect(client.workerPid).not.toBe(killedPid);
});

it('cancels a benchmark between runs without killing the worker', async () => {
  const pidBefore = (await client.inspect({ model: small.model }), client.workerPid);
  const abort = new AbortController();
  const bench = client.bench(
    { models: [{ path: long.model }], points: [{ seq: 512, past: 0 }], warmup: 0, iters: 10_000, profileRuns: 0 },
    { signal: abort.signal, onProgress: (p) => p.phase === 'timed' && abort.abort() },
  );
  await expectCode(bench, 'cancelled');
  expect(client.workerPid).toBe(pidBefore);
  const r = await client.run({ model: small.model, inputs: { file: small.manifest } });
  expect(r.outputs.logits.dims).toEqual([1, 16, 256]);
});

it('kills a worker that cannot stop inside a long run, after the grace period', async () => {
  const { client: impatient, close: closeImpatient } = await startClientWithGrace(100);
  try {
    await impatient.inspect({ model: long.model }); // the session is ready, so the run below starts at once
    const abort = new AbortController();
    const run = impatient.run({ model: long.model, inputs: { synthesis: { seq: 8192 } } }, { signal: abort.signal });
    setTimeout(() => abort.abort(), 300);
    const err = await expectCode(run, 'cancelled');
    expect(err.message).toMatch(/stopped mid-run/);
    const r = await impatient.run({ model: small.model, inputs: { file: small.manifest } });
    expect(r.outputs.logits.dims).toEqual([1, 16, 256]);
  } finally {
    await closeImpatient();
  }
});

it('reports a provider that fails to load and the one that ran instead', async () => {
  const missing = process.platform === 'darwin' ? 'dml' : 'coreml';
  const r = await client.run({ model: small.model, inputs: { file: small.manifest }, settings: { ep: [missing, 'cpu'] } });
  expect(r.provider.requested).toEqual([missing, 'cpu']);
  expect(r.provider.used).toBe('cpu');
  expect(r.provider.warnings.some((w) => w.startsWith(`${missing} failed to load`))).toBe(true);
  expect(r.provider.warnings).toContain(`running on cpu instead of ${missing}`);
});

it('reports a model that does not exist as a failed request, not a dead worker', async () => {
  const err = await expectCode(client.run({ model: '/nonexistent/model.onnx' }), 'failed');
  expect(err.message).toMatch(/no such model file/);
});

async function startClientWithGrace(ms: number) {
  const { buildWorker } = await import('./helpers');
  const { RuntimeClient: Client } = await import('../../src/runtime/client');
  const { rmSync } = await import('node:fs');
  const workerPath = await buildWorker();
  const c = new Client({ workerPath, cancelGraceMs: ms });
  return { client: c, close: async () => { await c.dispose(); rmSync(workerPath, { force: true }); } };
}
