// The pattern predicates on hand-checked cases, the ONNX masks built from them against the predicates over run-time
// positions (any Sq, Sk, cached prefix), the keys-per-query figures against brute-force counts, and the patch grid.
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/analysis/ir/builder';
import { ShapeInfo } from '../../src/analysis/ir/shapes';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { findGrid } from '../../src/rewriters/sparse/grid';
import { SiteOps } from '../../src/rewriters/sparse/ops';
import { buildVisible, keysPerQuery, visible, type Pattern } from '../../src/rewriters/sparse/pattern';
import { positionsFromScores } from '../../src/rewriters/sparse/positions';
import { fixture } from '../helpers/fixtures';
import { runModel, tempDir } from './sparse-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('sparse-patterns'); });
afterAll(() => tmp.cleanup());

const seen = (p: Pattern, i: number, s: number, h = 0) => Array.from({ length: s }, (_, j) => j).filter((j) => visible(p, i, j, h));

describe('pattern predicates', () => {
  it('causal window W: i − W < j ≤ i (W keys including the query)', () => {
    expect(seen({ kind: 'window', window: 3, causal: true }, 5, 10)).toEqual([3, 4, 5]);
    expect(seen({ kind: 'window', window: 3, causal: true }, 1, 10)).toEqual([0, 1]);
  });
  it('bidirectional window W: |i − j| < W', () => {
    expect(seen({ kind: 'window', window: 2, causal: false }, 5, 10)).toEqual([4, 5, 6]);
  });
  it('sink N + window W: the first N keys and the window, causal', () => {
    expect(seen({ kind: 'sink', window: 2, sink: 2 }, 7, 10)).toEqual([0, 1, 6, 7]);
  });
  it('strided k + window W: head h sees j ≡ h (mod k) and the window, causal', () => {
    expect(seen({ kind: 'strided', window: 2, stride: 3, heads: 4 }, 9, 12, 1)).toEqual([1, 4, 7, 8, 9]);
    expect(seen({ kind: 'strided', window: 2, stride: 3, heads: 4 }, 9, 12, 3)).toEqual([0, 3, 6, 8, 9]);
  });
  it('power + window W: distances 0, powers of two, and the window, causal', () => {
    expect(seen({ kind: 'power', window: 2 }, 20, 30)).toEqual([4, 12, 16, 18, 19, 20]);
  });
  it('neighborhood2d r: a square on the patch grid; prefix tokens see and are seen by all', () => {
    const p: Pattern = { kind: 'neighborhood2d', radius: 1, prefix: 1, gridH: 3, gridW: 3 };
    // Patches 1..9 on a 3×3 grid; patch 1 is the top-left corner.
    expect(seen(p, 1, 10)).toEqual([0, 1, 2, 4, 5]);
    expect(seen(p, 5, 10)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(seen(p, 0, 10)).toHaveLength(10);
  });
});

describe('keys per query', () => {
  const patterns: Pattern[] = [
    { kind: 'window', window: 5, causal: true },
    { kind: 'window', window: 5, causal: false },
    { kind: 'sink', window: 4, sink: 3 },
    { kind: 'strided', window: 3, stride: 4, heads: 6 },
    { kind: 'power', window: 3 },
    { kind: 'neighborhood2d', radius: 2, prefix: 2, gridH: 5, gridW: 7 },
  ];
  it.each(patterns)('%j matches a brute-force count', (p) => {
    const s = p.kind === 'neighborhood2d' ? p.prefix + p.gridH * p.gridW : 50;
    const heads = p.kind === 'strided' ? p.heads : 1;
    let total = 0;
    for (let h = 0; h < heads; h++) for (let i = 0; i < s; i++) total += seen(p, i, s, h).length;
    expect(keysPerQuery(p, s)).toBeCloseTo(total / (s * heads), 10);
  });
});

describe('ONNX masks equal the predicates', () => {
  /** A model from scores [1, H, Sq, Sk] to the pattern's visibility as int32, built with the rewriters' own ops. */
  function maskModel(p: Pattern, heads: number, tag: string): string {
    const b = GraphBuilder.create({ opsets: { '': 17 } });
    const x = b.input('scores', 'float32', [1, heads, 'sq', 'sk']);
    const ops = new SiteOps(b, 'probe::test', 'float32');
    const vis = buildVisible(ops, p, positionsFromScores(ops, x));
    b.output(ops.cast(vis, 'float32', 'as_float'), 'float32');
    const file = path.join(tmp.dir, `${tag}.onnx`);
    saveModel(b.finish(), file);
    return file;
  }
  const cases: [string, Pattern, number][] = [
    ['window causal', { kind: 'window', window: 4, causal: true }, 1],
    ['window bidirectional', { kind: 'window', window: 3, causal: false }, 1],
    ['sink', { kind: 'sink', window: 3, sink: 2 }, 1],
    ['strided', { kind: 'strided', window: 2, stride: 3, heads: 4 }, 4],
    ['power', { kind: 'power', window: 2 }, 1],
    ['neighborhood2d', { kind: 'neighborhood2d', radius: 1, prefix: 1, gridH: 4, gridW: 5 }, 1],
  ];
  it.each(cases)('%s', async (tag, p, heads) => {
    const file = maskModel(p, heads, tag);
    const sizes = p.kind === 'neighborhood2d' ? [[21, 21]] : [[37, 37], [4, 37], [1, 1100]];
    for (const [sq, sk] of sizes) {
      const out = await runModel(file, { scores: new ort.Tensor('float32', new Float32Array(heads * sq * sk), [1, heads, sq, sk]) });
      const got = out[Object.keys(out)[0]];
      const perHead = got.dims.length === 3;
      const data = got.data as Float32Array;
      let wrong = 0;
      for (let h = 0; h < (perHead ? heads : 1); h++) {
        for (let i = 0; i < sq; i++) {
          for (let j = 0; j < sk; j++) {
            const want = visible(p, sk - sq + i, j, h) ? 1 : 0;
            if (data[(h * sq + i) * sk + j] !== want) wrong++;
          }
        }
      }
      expect(wrong, `${tag} at Sq ${sq}, Sk ${sk}`).toBe(0);
    }
  });
});

describe('patch grid', () => {
  it('is read from the ViT fixtures\' patch Conv: 8×8 patches after one class token', () => {
    const m = loadModel(fixture('vit-eager-ts-op17').model);
    const grid = findGrid(m.graph, new ShapeInfo(m.graph), 65);
    expect(grid).toMatchObject({ prefix: 1, gridH: 8, gridW: 8 });
  });
  it('falls back to the largest square when no Conv embeds the patches', () => {
    const b = GraphBuilder.create();
    expect(findGrid(b.graph, new ShapeInfo(b.graph), 197)).toMatchObject({ prefix: 1, gridH: 14, gridW: 14 });
    expect(findGrid(b.graph, new ShapeInfo(b.graph), 201)).toMatchObject({ prefix: 5, gridH: 14, gridW: 14 });
    expect(typeof findGrid(b.graph, new ShapeInfo(b.graph), 3)).toBe('string');
  });
});
