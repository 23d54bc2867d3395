// The runtime across threads (runtime/relay.ts): a client connected to a port that the host's client serves behaves as
// the host's client does (results, progress, error codes, cancellation), uses the host's one worker process, and fails
// its requests, as a dead worker would, once the host closes the relay, whose runs are then cancelled.
import { MessageChannel } from 'node:worker_threads';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RuntimeClient, RuntimeError } from '../../src/runtime/client';
import { portLink, serveRuntime } from '../../src/runtime/relay';
import { fixture, startClient } from './helpers';

let host: RuntimeClient;
let close: () => Promise<void>;
beforeAll(async () => {
  ({ client: host, close } = await startClient());
});
afterAll(async () => close());

const small = fixture('gpt2-eager-ts-op17');
const long = fixture('llama-long-eager-ts-op17');

function relayed(): { thread: RuntimeClient; relay: { close: () => void } } {
  const channel = new MessageChannel();
  const relay = serveRuntime(channel.port1, host);
  return { thread: new RuntimeClient({ connect: portLink(channel.port2) }), relay };
}

async function failure(p: Promise<unknown>): Promise<RuntimeError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(RuntimeError);
  return e as RuntimeError;
}

it('answers as the host\'s client does, on the host\'s worker process, with its progress', async () => {
  const { thread, relay } = relayed();
  try {
    const direct = await host.run({ model: small.model, inputs: { file: small.manifest } });
    const pid = host.workerPid;
    const events: string[] = [];
    const r = await thread.evaluate(
      { model: small.model, tokens: Int32Array.from({ length: 200 }, (_, i) => (i * 7) % 256), seq: 16, windows: 3 },
      { onProgress: (p) => events.push(p.phase) },
    );
    expect(r.tokensScored).toBe(48);
    expect(events.length).toBeGreaterThan(0);
    const again = await thread.run({ model: small.model, inputs: { file: small.manifest } });
    expect(again.outputs.logits.data).toEqual(direct.outputs.logits.data);
    expect(host.workerPid).toBe(pid);
    expect(thread.workerPid).toBeUndefined();
  } finally {
    await thread.dispose();
    relay.close();
  }
});

it('keeps the error codes: a failed request, and a cancelled one', async () => {
  const { thread, relay } = relayed();
  try {
    const failed = await failure(thread.inspect({ model: `${small.dir}/missing.onnx` }));
    expect(failed.code).toBe('failed');
    const abort = new AbortController();
    const bench = thread.bench(
      { models: [{ path: long.model }], points: [{ seq: 512, past: 0 }], warmup: 0, iters: 10_000, profileRuns: 0 },
      { signal: abort.signal, onProgress: (p) => p.phase === 'timed' && abort.abort() },
    );
    expect((await failure(bench)).code).toBe('cancelled');
  } finally {
    await thread.dispose();
    relay.close();
  }
});

it('fails the thread\'s requests once the host closes the relay, and cancels their runs; the host\'s client goes on', async () => {
  const { thread, relay } = relayed();
  const bench = thread.bench(
    { models: [{ path: long.model }], points: [{ seq: 512, past: 0 }], warmup: 0, iters: 10_000, profileRuns: 0 },
    { onProgress: (p) => p.phase === 'timed' && relay.close() },
  );
  const e = await failure(bench);
  expect(e.code).toBe('worker-exited');
  expect(e.message).toMatch(/relay to the host was closed/);
  // The relayed benchmark was cancelled in the worker: the next request is answered at once, not after 10,000 runs.
  const started = performance.now();
  const r = await host.run({ model: small.model, inputs: { file: small.manifest } });
  expect(r.outputs.logits.dims).toEqual([1, 16, 256]);
  expect(performance.now() - started).toBeLessThan(20_000);
  await expect(thread.inspect({ model: small.model })).rejects.toThrow(/relay to the host's runtime worker was closed/);
  await thread.dispose();
});
