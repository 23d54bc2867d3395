// Head importance: each head's score is the change of the output when that head is zeroed, so it must equal what the
// runtime's own comparison measures between the model and the model with that head pruned (an independent rewrite),
// on the same inputs. Map scores come with it; the CLI prints one JSON object.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli';
import { headImportance } from '../../src/orchestrate/importance';
import type { RuntimeClient } from '../../src/runtime/client';
import { buildWorker, startClient } from '../runtime/helpers';
import { fixture, rewriteFixture, scratch } from './shared-prune-helpers';

let client: RuntimeClient;
let close: () => Promise<void>;
let tmp: { dir: string; cleanup: () => void };
beforeAll(async () => {
  ({ client, close } = await startClient());
  tmp = scratch('prune-importance');
});
afterAll(async () => {
  await close();
  tmp.cleanup();
});

describe('headImportance', () => {
  it.each([
    ['llama-eager-ts-op17', 1, 2, 'kl'],
    ['bert-sdpa-ts-op17-ortfused', 0, 3, 'mean-abs'],
    ['fused-gqa', 1, 0, 'mean-abs'],
  ] as const)('%s: site %i head %i scores what pruning that head changes (%s)', async (name, site, head, metric) => {
    const f = fixture(name);
    const r = await headImportance(client, f.model, { inputs: `${f.dir}/manifest.json` });
    expect(r.metric).toBe(metric);
    expect(r.samples).toBe(1);
    expect(r.sites.map((s) => s.heads.length)).toEqual(r.sites.map(() => f.manifest.truth.heads));
    for (const s of r.sites) for (const h of s.heads) expect(h.outputChange).toBeGreaterThan(0);
    const { file } = rewriteFixture(name, [{ rule: 'prune-heads', params: { heads: { [site]: [head] } } }], tmp.dir, 'imp');
    const c = await client.compare({ a: f.model, b: file, inputs: { file: `${f.dir}/manifest.json` } });
    const out = c.outputs.find((o) => o.name === r.output)!;
    const want = metric === 'kl' ? out.logits!.klDivergence : out.meanAbsDiff;
    expect(r.sites[site].heads[head].outputChange).toBeCloseTo(want, 6);
    // Heads differ: the scores are not one number repeated.
    expect(new Set(r.sites[site].heads.map((h) => h.outputChange.toFixed(9))).size).toBeGreaterThan(1);
    // Map scores: entropy within [0, ln keys], masses within [0, 1].
    for (const h of r.sites[site].heads) {
      expect(h.entropy).toBeGreaterThan(0);
      expect(h.entropy!).toBeLessThanOrEqual(Math.log(64) + 1e-9);
      expect(h.firstTokenMass).toBeGreaterThan(0);
      expect(h.diagonalMass!).toBeLessThanOrEqual(1);
    }
  });

  it('averages over synthesized calibration sets; a fused operator without probabilities is scored from its written-out copy', async () => {
    const f = fixture('fused-contrib_attention');
    const one = await headImportance(client, f.model, { samples: 1 });
    const three = await headImportance(client, f.model, { samples: 3 });
    expect(three.samples).toBe(3);
    expect(three.sites[0].heads[0].outputChange).not.toBeCloseTo(one.sites[0].heads[0].outputChange, 9);
    for (const h of three.sites[0].heads) {
      expect(h.entropy).toBeGreaterThan(0);
      expect(h.firstTokenMass).toBeGreaterThan(0);
    }
    expect(three.warnings.join('\n')).not.toMatch(/no attention-map scores/);
  });

  it('refuses unknown sites', async () => {
    await expect(headImportance(client, fixture('gpt2-eager-ts-op17').model, { sites: [5] })).rejects.toThrow(/site 5 does not exist/);
  });
});

describe('importance CLI', () => {
  it('--json prints one object with per-site, per-head scores', async () => {
    const worker = await buildWorker();
    process.env.ATTENTION_LENS_WORKER = worker;
    let stdout = '';
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((c: string | Uint8Array) => ((stdout += String(c)), true)) as typeof process.stdout.write;
    try {
      const code = await main(['importance', fixture('gpt2-eager-ts-op17').model, '--samples', '2', '--sites', '1', '--json']);
      expect(code).toBe(0);
    } finally {
      process.stdout.write = write;
      delete process.env.ATTENTION_LENS_WORKER;
      rmSync(worker, { force: true });
    }
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]);
    expect(r).toMatchObject({ metric: 'kl', output: 'logits', samples: 2 });
    expect(r.sites).toHaveLength(1);
    expect(r.sites[0].site).toBe(1);
    expect(r.sites[0].heads.map((h: { head: number }) => h.head)).toEqual([0, 1, 2, 3]);
    for (const h of r.sites[0].heads) for (const k of ['outputChange', 'entropy', 'firstTokenMass', 'diagonalMass']) expect(typeof h[k]).toBe('number');
  });
});
