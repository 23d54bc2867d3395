// dictionary: the SVD it is built on (checked against matrices of known decomposition), full rank as an identity,
// and a low-rank fit whose error is the smallest possible (Eckart–Young), computed here in closed form for two layers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/analysis/ir/load';
import { rewriteModel } from '../../src/rewriters/pipeline';
import { RuleError } from '../../src/rewriters/rule';
import { svdWide, symmetricEigen } from '../../src/rewriters/shared/svd';
import { feedsOf, fileSize, fixture, maxAbsDiff, outputsOf, rewriteFixture, scratch, sitesOf } from './shared-prune-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('shared-dictionary'); });
afterAll(() => tmp.cleanup());

/** Deterministic pseudo-random numbers in [-1, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

/** Gram–Schmidt orthonormal rows (count × n). */
function orthonormalRows(count: number, n: number, rand: () => number): Float64Array {
  const q = new Float64Array(count * n);
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < n; k++) q[i * n + k] = rand();
    for (let j = 0; j < i; j++) {
      let dot = 0;
      for (let k = 0; k < n; k++) dot += q[i * n + k] * q[j * n + k];
      for (let k = 0; k < n; k++) q[i * n + k] -= dot * q[j * n + k];
    }
    let norm = 0;
    for (let k = 0; k < n; k++) norm += q[i * n + k] ** 2;
    for (let k = 0; k < n; k++) q[i * n + k] /= Math.sqrt(norm);
  }
  return q;
}

describe('svd', () => {
  it('diagonalises a symmetric matrix', () => {
    // [[2, 1], [1, 2]] has eigenvalues 3 and 1 with eigenvectors (1, 1)/√2 and (1, -1)/√2.
    const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
    expect(values[0]).toBeCloseTo(3, 14);
    expect(values[1]).toBeCloseTo(1, 14);
    expect(Math.abs(vectors[0])).toBeCloseTo(Math.SQRT1_2, 14);
    expect(vectors[0] * vectors[2]).toBeCloseTo(0.5, 14); // both entries of the first eigenvector have one sign
  });

  it('recovers a matrix built from known singular vectors and values', () => {
    const rand = rng(7);
    const L = 5;
    const N = 300;
    const u = orthonormalRows(L, L, rand); // rows of an orthogonal matrix
    const v = orthonormalRows(L, N, rand);
    const sigma = [9, 4, 2.5, 1, 0.01];
    const m = new Float64Array(L * N);
    for (let i = 0; i < L; i++) for (let a = 0; a < L; a++) for (let k = 0; k < N; k++) m[i * N + k] += u[i * L + a] * sigma[a] * v[a * N + k];
    const r = svdWide(m, L, N);
    sigma.forEach((s, a) => expect(r.sigma[a]).toBeCloseTo(s, 9));
    // Reconstruction and orthonormality.
    let err = 0;
    for (let i = 0; i < L; i++) {
      for (let k = 0; k < N; k++) {
        let x = 0;
        for (let a = 0; a < L; a++) x += r.u[i * L + a] * r.sigma[a] * r.vt[a * N + k];
        err = Math.max(err, Math.abs(x - m[i * N + k]));
      }
    }
    expect(err).toBeLessThan(1e-12);
    for (let a = 0; a < L; a++) {
      for (let b = 0; b < L; b++) {
        let dot = 0;
        for (let k = 0; k < N; k++) dot += r.vt[a * N + k] * r.vt[b * N + k];
        expect(dot).toBeCloseTo(a === b ? 1 : 0, 9);
      }
    }
  });

  it('handles repeated rows (rank below the row count) without dividing by zero', () => {
    const row = Array.from({ length: 50 }, (_, k) => Math.cos(k));
    const r = svdWide(Float64Array.from([...row, ...row, ...row]), 3, 50);
    expect(r.sigma[1]).toBeLessThan(1e-6);
    expect([...r.vt].every(Number.isFinite)).toBe(true);
  });
});

describe('dictionary at full rank is an identity', () => {
  it.each(['bart-eager-ts-op17', 'gpt2-eager-ts-op17', 'gpt2-sdpa-dynamo-op23', 'llama-sdpa-ts-op17', 'fused-contrib_attention', 'fused-gqa', 'vit-eager-ts-op17-ortfused', 'bytelm-llama-trained'])(
    '%s (1e-4)',
    async (name) => {
      const layers = sitesOf(fixture(name).model).length;
      const { file, report } = rewriteFixture(name, [{ rule: 'dictionary', params: { atoms: layers } }], tmp.dir, 'full');
      const feeds = feedsOf(name);
      const [a, b] = [await outputsOf(fixture(name).model, feeds), await outputsOf(file, feeds)];
      for (const out of Object.keys(a)) expect(maxAbsDiff(a[out], b[out]), out).toBeLessThanOrEqual(1e-4);
      // The weights are rebuilt at run time from atoms and coefficients, not stored.
      const names = loadModel(file).graph.nodes.map((n) => n.name);
      expect(names.filter((n) => n.endsWith('::dictionary/q_weight')).length).toBe(layers);
      expect(report.warnings.join('\n')).toMatch(/full rank/);
    },
  );
});

describe('dictionary below full rank', () => {
  it('stores s atoms per kind, shrinks the file and fits each kind with the least possible error', async () => {
    const name = 'gpt2-eager-ts-op17'; // two layers: a rank-1 fit of two matrices has a closed form
    const { file, report } = rewriteFixture(name, [{ rule: 'dictionary', params: { atoms: 1 } }], tmp.dir, 'rank1');
    expect(fileSize(file)).toBeLessThan(fileSize(fixture(name).model) - 4 * 4 * 128 * 128 * 0.9);
    const after = loadModel(file).graph;
    const before = loadModel(fixture(name).model).graph;
    for (const kind of ['q', 'k', 'v', 'o']) {
      const atoms = [...after.initializers.values()].find((t) => t.name.startsWith(`dictionary.${kind}.`) && t.name.endsWith('.atoms'))!;
      expect(atoms.dims).toEqual([1, 128 * 128]);
    }
    // O: the two layers' c_proj weights W0, W1. The best rank-1 fit leaves squared error λmin of their 2×2 Gram matrix.
    const w = (g: typeof before, l: number) => g.initializers.get(`m.transformer.h.${l}.attn.c_proj.weight`)!.toNumbers();
    const [w0, w1] = [w(before, 0), w(before, 1)];
    const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);
    const [g00, g01, g11] = [dot(w0, w0), dot(w0, w1), dot(w1, w1)];
    const tr = g00 + g11;
    const lambdaMin = (tr - Math.sqrt(tr * tr - 4 * (g00 * g11 - g01 * g01))) / 2;
    const atoms = [...after.initializers.values()].find((t) => t.name.startsWith('dictionary.o.'))!.toNumbers();
    let err = 0;
    for (const [l, orig] of [[0, w0], [1, w1]] as const) {
      const coef = [...after.initializers.values()].find((t) => t.name.includes(`h.${l}/attn/Softmax::dictionary/o_coefficients`))!.toNumbers();
      for (let k = 0; k < orig.length; k++) err += (coef[0] * atoms[k] - orig[k]) ** 2;
    }
    expect(err / lambdaMin).toBeCloseTo(1, 4);
    // The approximation shows in the outputs, and the report counts stored parameters.
    const feeds = feedsOf(name);
    const [a, b] = [await outputsOf(fixture(name).model, feeds), await outputsOf(file, feeds)];
    expect(maxAbsDiff(a.logits, b.logits)).toBeGreaterThan(1e-3);
    for (const c of report.applied[0].changes) expect(c.after.weightParams as number).toBeLessThan(c.before.weightParams as number);
  });

  it('refuses fewer than one atom', () => {
    const attempt = () => rewriteModel(fixture('gpt2-eager-ts-op17').model, [{ rule: 'dictionary', params: { atoms: 0 } }], `${tmp.dir}/never.onnx`);
    expect(attempt).toThrow(RuleError);
    expect(attempt).toThrow(/dictionary: the number of atoms must be a positive integer/);
  });
});
