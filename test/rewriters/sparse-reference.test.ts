// Every sparse pattern, in every implementation, against attention computed directly in float64 from methods.md's
// definitions (sparse-helpers.ts), on a minimal attention model whose Q, K and V the test sets: causal and
// bidirectional, with and without cached positions (queries at the end of the keys), sequence lengths that are not
// multiples of any block, and the model's own mask read both ways (its last row, or every row).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import type { RuleRequest } from '../../src/rewriters/pipeline';
import { visible, type Pattern } from '../../src/rewriters/sparse/pattern';
import {
  floatOutputs, maxAbsDiff, qkvFeeds, randomQkv, referenceAttention, referenceBlockTopk, rewriteTo, tempDir, tinyAttention, type TinyShape,
} from './sparse-helpers';

let tmp: { dir: string; cleanup: () => void };
const causal: TinyShape = { heads: 3, dim: 8, causal: true };
const bidirectional: TinyShape = { heads: 3, dim: 8, causal: false };
const models: Record<string, string> = {};
beforeAll(() => {
  tmp = tempDir('sparse-reference');
  models.causal = tinyAttention(tmp.dir, causal, 'causal');
  models.bidirectional = tinyAttention(tmp.dir, bidirectional, 'bidirectional');
});
afterAll(() => tmp.cleanup());

/** Lengths (Sq, Sk): a full sequence of 21, and 5 new queries after 16 cached positions. */
const CAUSAL_CASES = [[21, 21], [5, 21], [1, 21]] as const;

async function check(shape: TinyShape, model: string, requests: RuleRequest[], sq: number, sk: number, vis: (i: number, j: number, h: number) => boolean, seed = 7) {
  const x = randomQkv(shape, sq, sk, seed);
  const { file, report } = rewriteTo(model, requests, tmp.dir, `${requests[0].rule}-${sq}-${sk}-${seed}`);
  const got = (await floatOutputs(file, qkvFeeds(shape, x))).out;
  expect(maxAbsDiff(got, referenceAttention(shape, x, vis))).toBeLessThan(1e-4);
  return report;
}

describe('static patterns against direct attention', () => {
  const causalPatterns: { name: string; req: RuleRequest; p: Pattern }[] = [
    { name: 'window 4 (mask)', req: { rule: 'window', params: { window: 4 } }, p: { kind: 'window', window: 4, causal: true } },
    { name: 'window 4 (blocked, 16 rows)', req: { rule: 'window', params: { window: 4, impl: 'blocked' } }, p: { kind: 'window', window: 4, causal: true } },
    { name: 'window 9 (blocked, 4 rows: 3 key blocks back)', req: { rule: 'window', params: { window: 9, impl: 'blocked', rows: 4 } }, p: { kind: 'window', window: 9, causal: true } },
    { name: 'window 6 (blocked, every mask row gathered)', req: { rule: 'window', params: { window: 6, impl: 'blocked', rows: 4, modelMask: 'rows' } }, p: { kind: 'window', window: 6, causal: true } },
    { name: 'window 1 (blocked)', req: { rule: 'window', params: { window: 1, impl: 'blocked' } }, p: { kind: 'window', window: 1, causal: true } },
    { name: 'sink 2 + window 3', req: { rule: 'sink', params: { window: 3, sink: 2 } }, p: { kind: 'sink', window: 3, sink: 2 } },
    { name: 'strided 2 + window 3', req: { rule: 'strided', params: { window: 3, stride: 2 } }, p: { kind: 'strided', window: 3, stride: 2, heads: 3 } },
    { name: 'power + window 2', req: { rule: 'power', params: { window: 2 } }, p: { kind: 'power', window: 2 } },
    // The blocked forms: the window's blocks plus the pattern's extra keys, in blocks of 4 rows (several per sequence).
    { name: 'sink 2 + window 3 (blocked)', req: { rule: 'sink', params: { window: 3, sink: 2, impl: 'blocked', rows: 4 } }, p: { kind: 'sink', window: 3, sink: 2 } },
    { name: 'sink 7 + window 5 (blocked, sinks inside the window)', req: { rule: 'sink', params: { window: 5, sink: 7, impl: 'blocked', rows: 4 } }, p: { kind: 'sink', window: 5, sink: 7 } },
    { name: 'sink 30 + window 3 (blocked, more sinks than keys)', req: { rule: 'sink', params: { window: 3, sink: 30, impl: 'blocked', rows: 4 } }, p: { kind: 'sink', window: 3, sink: 30 } },
    { name: 'strided 2 + window 3 (blocked)', req: { rule: 'strided', params: { window: 3, stride: 2, impl: 'blocked', rows: 4 } }, p: { kind: 'strided', window: 3, stride: 2, heads: 3 } },
    { name: 'strided 4 + window 6 (blocked, every mask row)', req: { rule: 'strided', params: { window: 6, stride: 4, impl: 'blocked', rows: 4, modelMask: 'rows' } }, p: { kind: 'strided', window: 6, stride: 4, heads: 3 } },
    { name: 'power + window 2 (blocked)', req: { rule: 'power', params: { window: 2, impl: 'blocked', rows: 4 } }, p: { kind: 'power', window: 2 } },
    { name: 'power + window 1 (blocked, 16 rows)', req: { rule: 'power', params: { window: 1, impl: 'blocked' } }, p: { kind: 'power', window: 1 } },
    { name: 'power + window 5 (blocked, 2 rows)', req: { rule: 'power', params: { window: 5, impl: 'blocked', rows: 2, modelMask: 'rows' } }, p: { kind: 'power', window: 5 } },
    { name: 'power + window 32 (blocked: no power within reach)', req: { rule: 'power', params: { window: 32, impl: 'blocked', rows: 4 } }, p: { kind: 'power', window: 32 } },
  ];
  for (const c of causalPatterns) {
    it.each(CAUSAL_CASES)(`causal ${c.name}, Sq %i of Sk %i`, async (sq, sk) => {
      const report = await check(causal, models.causal, [c.req], sq, sk, (i, j, h) => visible(c.p, i, j, h));
      // A blocked request must really be blocked (not the mask form behind a warning).
      const impl = (c.req.params as { impl?: string }).impl ?? 'mask';
      expect(report.applied[0].changes[0].after.impl).toBe(impl);
      expect(report.warnings).toEqual([]);
    });
  }

  it.each([['mask'], ['blocked']])('bidirectional window 4 (%s): |i − j| < 4', async (impl) => {
    const p: Pattern = { kind: 'window', window: 4, causal: false };
    await check(bidirectional, models.bidirectional, [{ rule: 'window', params: { window: 4, impl, rows: 4 } }], 19, 19, (i, j) => visible(p, i, j));
  });

  it('a window longer than the sequence changes nothing', async () => {
    for (const impl of ['mask', 'blocked']) {
      await check(causal, models.causal, [{ rule: 'window', params: { window: 64, impl } }], 21, 21, (i, j) => j <= i);
    }
  });

  it('sink, strided and power skip bidirectional sites: nothing to rewrite is an error naming the rule', () => {
    expect(() => rewriteTo(models.bidirectional, [{ rule: 'sink', params: { window: 3, sink: 1 } }], tmp.dir, 'skip')).toThrow(/^sink: applies to none of the sites \(site 0 skipped: sink is defined for causal sites/);
  });
});

describe('block-topk against its definition', () => {
  const cases: [TinyShape, string, number, number, number, number][] = [
    // shape, model, block, k, Sq, Sk
    [causal, 'causal', 4, 1, 21, 21],
    [causal, 'causal', 4, 2, 5, 21], // cached positions: the first query block starts mid-block
    [causal, 'causal', 3, 0, 21, 21], // only the diagonal block and block 0
    [causal, 'causal', 5, 10, 21, 21], // k beyond the blocks: every block, i.e. exact causal attention
    [causal, 'causal', 4, 1, 1, 21], // one decoding query
    [bidirectional, 'bidirectional', 4, 1, 19, 19],
  ];
  for (const impl of ['mask', 'gather']) {
    it.each(cases)(`%#: ${impl} form`, async (shape, model, block, k, sq, sk) => {
      for (const seed of [1, 2]) {
        const x = randomQkv(shape, sq, sk, seed);
        const report = await check(shape, models[model], [{ rule: 'block-topk', params: { block, k, impl } }], sq, sk, referenceBlockTopk(shape, x, block, k), seed);
        expect(report.warnings).toEqual([]);
      }
    });
  }

  it('gather form reading every row of the model mask', async () => {
    const x = randomQkv(causal, 21, 21, 3);
    await check(causal, models.causal, [{ rule: 'block-topk', params: { block: 4, k: 1, impl: 'gather', modelMask: 'rows' } }], 21, 21, referenceBlockTopk(causal, x, 4, 1), 3);
  });
});

describe('rewritten sites stay sites', () => {
  it.each([
    ['window', { window: 4, impl: 'blocked' }],
    ['block-topk', { block: 4, k: 1, impl: 'gather' }],
  ])('%s %j: same site, same heads, Softmax kept by name, new nodes named <softmax>::<rule>/…', (rule, params) => {
    const { file } = rewriteTo(models.causal, [{ rule, params }], tmp.dir, `still-${rule}`);
    const r = analyzeModel(file);
    expect(r.sites).toHaveLength(1);
    expect(r.sites[0]).toMatchObject({ heads: 3, headDim: 8, causal: true, anchors: { softmax: 'softmax' } });
    const added = r.sites[0].nodes.filter((n) => n.startsWith(`softmax::${rule}/`));
    expect(added.length).toBeGreaterThan(10);
    expect(r.sites[0].nodes).not.toContain('qk');
  });
});
