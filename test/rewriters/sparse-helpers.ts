// Shared by the sparse rule tests: a minimal written-out attention model (Q, K, V as graph inputs, so a test controls
// them exactly), a direct float64 attention with any visibility predicate as the independent reference, the
// block-topk selection written straight from methods.md, and running models on synthesized inputs.
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { analyzeModel } from '../../src/analysis/analyze';
import { attr, GraphBuilder } from '../../src/analysis/ir/builder';
import { saveModel } from '../../src/analysis/ir/save';
import { rewriteInMemory, type RuleRequest } from '../../src/rewriters/pipeline';
import { toOrt } from '../../src/runtime/engine/ort-tensors';
import { synthesizeInputs } from '../../src/runtime/inputs/synthesize';
import { Rng } from '../../src/analysis/numeric/random';
import { runModel, type Feeds } from '../analysis/helpers/ort';

export { runModel, tempDir, type Feeds } from '../analysis/helpers/ort';

export interface TinyShape {
  heads: number;
  dim: number;
  causal: boolean;
}

/**
 * softmax(Q·Kᵀ/√d [masked]) · V with Q [1, H, Sq, D], K and V [1, H, Sk, D] as inputs. The causal mask is written the
 * way exporters write it (Range positions, a comparison, a Where), with queries at the last Sq of Sk positions.
 */
export function tinyAttention(dir: string, s: TinyShape, tag = 'tiny'): string {
  const b = GraphBuilder.create({ opsets: { '': 17 } });
  const q = b.input('q', 'float32', [1, s.heads, 'sq', s.dim]);
  const k = b.input('k', 'float32', [1, s.heads, 'sk', s.dim]);
  const v = b.input('v', 'float32', [1, s.heads, 'sk', s.dim]);
  const kt = b.op('Transpose', [k], { attrs: { perm: attr.ints([0, 1, 3, 2]) } });
  const scores = b.op('Mul', [b.op('MatMul', [q, kt], { name: 'qk' }), b.initializer('scale', [], { dtype: 'float32', data: [1 / Math.sqrt(s.dim)] })]);
  let masked = scores;
  if (s.causal) {
    const two = b.initializer('idx_sq', [], { dtype: 'int64', data: [2] });
    const sq = b.op('Gather', [b.op('Shape', [q]), two], { attrs: { axis: attr.int(0) } });
    const sk = b.op('Gather', [b.op('Shape', [k]), two], { attrs: { axis: attr.int(0) } });
    const one = b.initializer('one', [], { dtype: 'int64', data: [1] });
    const zero = b.initializer('zero', [], { dtype: 'int64', data: [0] });
    const qpos = b.op('Unsqueeze', [b.op('Range', [b.op('Sub', [sk, sq]), sk, one]), b.initializer('ax1', [1], { dtype: 'int64', data: [1] })]);
    const kpos = b.op('Range', [zero, sk, one]);
    const allowed = b.op('LessOrEqual', [kpos, qpos]);
    masked = b.op('Where', [allowed, scores, b.initializer('neg_inf', [], { dtype: 'float32', data: [-Infinity] })]);
  }
  const p = b.op('Softmax', [masked], { name: 'softmax', attrs: { axis: attr.int(-1) } });
  const out = b.op('MatMul', [p, v], { name: 'pv', output: 'out' });
  b.output(out, 'float32', [1, s.heads, 'sq', s.dim]);
  const file = path.join(dir, `${tag}.onnx`);
  saveModel(b.finish(), file);
  return file;
}

export interface Qkv {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  sq: number;
  sk: number;
}

export function randomQkv(s: TinyShape, sq: number, sk: number, seed: number): Qkv {
  const rng = new Rng(seed);
  const fill = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  return { q: fill(s.heads * sq * s.dim), k: fill(s.heads * sk * s.dim), v: fill(s.heads * sk * s.dim), sq, sk };
}

export function qkvFeeds(s: TinyShape, x: Qkv): Feeds {
  return {
    q: new ort.Tensor('float32', x.q, [1, s.heads, x.sq, s.dim]),
    k: new ort.Tensor('float32', x.k, [1, s.heads, x.sk, s.dim]),
    v: new ort.Tensor('float32', x.v, [1, s.heads, x.sk, s.dim]),
  };
}

/** Attention in float64 where query i (absolute position past + i) sees key j iff `visible(iAbs, j, h)`. */
export function referenceAttention(s: TinyShape, x: Qkv, visible: (i: number, j: number, h: number) => boolean): Float64Array {
  const { heads: H, dim: D } = s;
  const past = x.sk - x.sq;
  const out = new Float64Array(H * x.sq * D);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < x.sq; i++) {
      const w: number[] = [];
      let max = -Infinity;
      for (let j = 0; j < x.sk; j++) {
        if (!visible(past + i, j, h)) { w.push(-Infinity); continue; }
        let dot = 0;
        for (let d = 0; d < D; d++) dot += x.q[(h * x.sq + i) * D + d] * x.k[(h * x.sk + j) * D + d];
        const sc = dot / Math.sqrt(D);
        w.push(sc);
        max = Math.max(max, sc);
      }
      const e = w.map((z) => (z === -Infinity ? 0 : Math.exp(z - max)));
      const sum = e.reduce((a, c) => a + c, 0);
      for (let d = 0; d < D; d++) {
        let o = 0;
        for (let j = 0; j < x.sk; j++) o += (e[j] / sum) * x.v[(h * x.sk + j) * D + d];
        out[(h * x.sq + i) * D + d] = o;
      }
    }
  }
  return out;
}

/** block-topk's kept key blocks per head and absolute query block, straight from methods.md. */
export function referenceBlockTopk(s: TinyShape, x: Qkv, block: number, k: number): (i: number, j: number, h: number) => boolean {
  const { heads: H, dim: D } = s;
  const past = x.sk - x.sq;
  const nbk = Math.ceil(x.sk / block);
  const qb0 = Math.floor(past / block);
  const nbq = Math.floor((past + x.sq - 1) / block) - qb0 + 1;
  const keep: boolean[][][] = []; // [h][query block (relative)][key block]
  for (let h = 0; h < H; h++) {
    const mean = (src: Float32Array, rows: number, from: number, to: number) => {
      const m = new Float64Array(D);
      for (let r = from; r < to; r++) for (let d = 0; d < D; d++) m[d] += src[(h * rows + r) * D + d];
      return m.map((v) => v / (to - from));
    };
    const kMeans = Array.from({ length: nbk }, (_, kb) => mean(x.k, x.sk, kb * block, Math.min(x.sk, (kb + 1) * block)));
    keep.push(Array.from({ length: nbq }, (_, r) => {
      const qb = qb0 + r;
      const from = Math.max(qb * block, past) - past;
      const to = Math.min((qb + 1) * block, past + x.sq) - past;
      const qm = mean(x.q, x.sq, from, to);
      const cands = kMeans
        .map((km, kb) => ({ kb, score: km.reduce((a, v, d) => a + v * qm[d], 0) / Math.sqrt(D) }))
        .filter((c) => !s.causal || c.kb <= qb)
        .sort((a, b) => b.score - a.score || a.kb - b.kb);
      const kept = new Set([...cands.slice(0, k).map((c) => c.kb), qb, 0]);
      return Array.from({ length: nbk }, (_, kb) => kept.has(kb) && (!s.causal || kb <= qb));
    }));
  }
  return (i, j, h) => keep[h][Math.floor(i / block) - qb0][Math.floor(j / block)] && (!s.causal || j <= i);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    m = Number.isNaN(d) ? Infinity : Math.max(m, d);
  }
  return m;
}

/** Rewrites `input` in memory and saves it to `dir/tag.onnx`. */
export function rewriteTo(input: string, requests: RuleRequest[], dir: string, tag: string) {
  const { model, report } = rewriteInMemory(input, requests);
  const file = path.join(dir, `${tag}.onnx`);
  saveModel(model, file);
  return { file, report, model };
}

/** Inputs for `model` from the runtime's synthesis (seq new tokens, `past` cached ones where the model has a cache). */
export function synthesizedFeeds(model: string, seq: number, past: number): Feeds {
  const report = analyzeModel(model);
  const hasCache = report.model.inputs.some((i) => i.role === 'past_key' || i.role === 'past_value');
  const syn = synthesizeInputs(report.model.inputs, { seq, past: hasCache ? past : 0 });
  return Object.fromEntries(Object.entries(syn.tensors).map(([k, v]) => [k, toOrt(v)]));
}

export async function floatOutputs(file: string, feeds: Feeds): Promise<Record<string, Float32Array>> {
  const r = await runModel(file, feeds);
  const out: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(r)) if (t.type === 'float32') out[k] = t.data as Float32Array;
  return out;
}
