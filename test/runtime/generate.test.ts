// Greedy generation through the KV cache (engine/generate.ts): the cached continuation must be what the same model
// predicts when it reads the whole sequence at once, a model against itself agrees everywhere, and a sliding-window
// variant over a longer prompt differs measurably.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agreedPrefix, argmax, klDivergence, pairCache } from '../../src/runtime/measure/greedy';
import { RuntimeClient } from '../../src/runtime/client';
import { toFloat64 } from '../../src/runtime/tensor';
import { REPO, buildWorker, fixture } from './helpers';

let client: RuntimeClient;
let workerPath: string;
let scratch: string;

beforeAll(async () => {
  workerPath = await buildWorker();
  client = new RuntimeClient({ workerPath });
  scratch = mkdtempSync(join(tmpdir(), 'attention-lens-generate-'));
});
afterAll(async () => {
  await client?.dispose();
  rmSync(workerPath, { force: true });
  rmSync(scratch, { recursive: true, force: true });
});

describe('greedy helpers', () => {
  it('pairs cache inputs with the outputs that carry them, by name or else by order, and says when it cannot', () => {
    const pasts = ['past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key'];
    const outputs = ['logits', 'present.1.key', 'present.0.value', 'present.0.key'];
    expect(pairCache(pasts, outputs)).toEqual(new Map([['past_key_values.0.key', 'present.0.key'], ['past_key_values.0.value', 'present.0.value'], ['past_key_values.1.key', 'present.1.key']]));
    expect(pairCache(['k_cache', 'v_cache'], ['logits', 'present_k', 'present_v'])).toEqual(new Map([['k_cache', 'present_k'], ['v_cache', 'present_v']]));
    expect(pairCache(['a', 'b'], ['logits', 'present.x'])).toEqual({ unknown: expect.stringContaining('cannot tell which outputs carry the KV cache') });
  });

  it('argmax, KL and the agreed prefix', () => {
    expect(argmax([0, 3, 3, 1])).toBe(1);
    expect(klDivergence([1, 2, 3], [1, 2, 3])).toBe(0);
    // KL(p||q) of softmax([0, 0]) = (½, ½) against softmax([0, ln 3]) = (¼, ¾): ½ ln 2 + ½ ln(2/3).
    expect(klDivergence([0, 0], [0, Math.log(3)])).toBeCloseTo(0.5 * Math.log(2) + 0.5 * Math.log(2 / 3), 12);
    expect(agreedPrefix([1, 2, 3], [1, 2, 4])).toBe(2);
    expect(agreedPrefix([1, 2], [1, 2])).toBe(2);
  });
});

describe.each(['gpt2-past-eager-ts-op17', 'llama-past-eager-ts-op17'])('generate on %s', (name) => {
  const model = fixture(name).model;

  it('decodes through the cache exactly what the model predicts reading the whole sequence, and agrees with itself', async () => {
    const prompt = [5, 17, 200, 3, 99, 41, 7, 250];
    const steps = 6;
    const r = await client.generate({ a: model, b: model, prompt, steps });
    expect(r.cachedA).toBe(true);
    expect(r.tokensA).toHaveLength(steps);
    expect(r.tokensB).toEqual(r.tokensA);
    expect(r.agreedSteps).toBe(steps);
    expect(r.top1Agreement).toBe(1);
    expect(r.meanKl).toBeLessThan(1e-9);
    // The oracle: one prefill of prompt + continuation with an empty cache; position t predicts token t+1.
    const whole = [...prompt, ...r.tokensA.slice(0, -1)];
    const run = await client.run({ model, inputs: { tensors: { input_ids: { dtype: 'int64', dims: [1, whole.length], data: BigInt64Array.from(whole, BigInt) } }, synthesis: { past: 0 } } });
    const logits = run.outputs.logits;
    const vocab = logits.dims[2];
    const values = toFloat64(logits);
    const predicted = r.tokensA.map((_, i) => argmax(values.subarray((prompt.length - 1 + i) * vocab, (prompt.length + i) * vocab)));
    expect(predicted).toEqual(r.tokensA);
  });
});

it('a window-8 variant of gpt2-past over a 40-token prompt: measurably different next-token distributions', async () => {
  const model = fixture('gpt2-past-eager-ts-op17').model;
  const variant = join(scratch, 'w8.onnx');
  execFileSync(process.execPath, [join(REPO, 'dist', 'cli.js'), 'rewrite', model, '--window', '8', '-o', variant], { stdio: 'pipe' });
  const r = await client.generate({ a: model, b: variant, promptLength: 40, steps: 8 });
  expect(r.prompt).toHaveLength(40);
  expect(r.cachedB).toBe(true);
  expect(r.perStep).toHaveLength(8);
  expect(r.meanKl).toBeGreaterThan(1e-4);
  for (const s of r.perStep) expect(Number.isFinite(s.kl)).toBe(true);
});
