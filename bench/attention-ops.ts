// One causal attention layer at S tokens (H heads of D, batch 1), written out and as each fused operator onnxruntime
// offers for it, on the same inputs: what `fuse` can gain at most on this machine and provider. Models are timed
// interleaved run by run; besides wall time the process CPU time of each run is reported, which other load on a
// shared machine disturbs much less (the runtime uses every core, so wall ≈ CPU / cores when the machine is quiet).
//
// Since the per-block window (issue 9) it also times the window W forms at block size R against the same layer: the
// written-out blocked window, GroupQueryAttention's local_window_size, and the query blocks folded into one
// MultiHeadAttention (what `window --impl blocked --rows R` writes on a GroupQueryAttention site, the operator's
// attention_bias read per block), each checked against the written-out layer with the window as a mask (max |Δ|);
// and the four projections of such a layer (Q, K, V, O: [S, H·D] × [H·D, H·D]), the part of attention time that no
// attention rewrite changes, so that attention-time cuts can be bounded from CPU times.
//
// Usage: npm run bench:attention-ops [-- --seq 4096 --heads 8 --dim 64 --iters 5 --window 256 --rows 128]
// Output: one JSON object on stdout.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { attr, GraphBuilder, type Attr } from '../src/analysis/ir/builder';
import type { Value } from '../src/analysis/ir/graph';
import { saveModel } from '../src/analysis/ir/save';
import { maxAbsDiff, median, timeRounds } from './cpu-rounds';

const option = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const S = option('seq', 4096);
const H = option('heads', 8);
const D = option('dim', 64);
const ITERS = option('iters', 5);
const W = option('window', 256);
const R = option('rows', 128);
const LOWEST = -3.4028234663852886e38;

type Build = (b: GraphBuilder, q: Value, k: Value, v: Value, mask: Value) => Value;

const i64 = (b: GraphBuilder, x: number[]) => b.initializer(b.uniqueName('shape'), [x.length], { dtype: 'int64', data: x });
const heads = (b: GraphBuilder, x: Value, perm: number[]) => b.op('Transpose', [b.op('Reshape', [x, i64(b, [1, S, H, D])])], { attrs: { perm: attr.ints(perm) } });

/** GroupQueryAttention in prompt mode: every row's keys are all S positions, causality is the operator's. */
const gqa = (extra: Record<string, Attr>, withMask: boolean, outputs = 3): Build => (b, q, k, v, mask) => {
  const seqlens = b.initializer('seqlens', [1], { dtype: 'int32', data: [S - 1] });
  const total = b.initializer('total', [], { dtype: 'int32', data: [S] });
  const attrs = { num_heads: attr.int(H), kv_num_heads: attr.int(H), scale: attr.float(1 / Math.sqrt(D)), ...extra };
  return b.node('GroupQueryAttention', [q, k, v, null, null, seqlens, total, null, null, null, withMask ? mask : null], { domain: 'com.microsoft', outputs, attrs }).outputs[0];
};
const mha = (withMask: boolean): Build => (b, q, k, v, mask) =>
  b.node('MultiHeadAttention', [q, k, v, null, null, withMask ? mask : null], { domain: 'com.microsoft', attrs: { num_heads: attr.int(H), scale: attr.float(1 / Math.sqrt(D)) } }).outputs[0];

// ---- the window forms: query blocks of R rows (S a multiple of R), keys [jR − F, jR − F + L) for block j ----
const A = Math.ceil((W - 1) / R);
const F = A * R;
const L = (A + 1) * R;
const NB = S / R;
const keyOf = (j: number, t: number) => j * R - F + t;
/** [NB, L] key rows of each block's window, clamped into [0, S) (the clamped ones are masked by windowBias). */
const windowKeys = (b: GraphBuilder) => b.initializer(b.uniqueName('window_keys'), [NB, L], { dtype: 'int64', data: Array.from({ length: NB * L }, (_, i) => Math.max(0, keyOf(Math.floor(i / L), i % L))) });
const gatherWindows = (b: GraphBuilder, x: Value) => b.op('Gather', [b.op('Reshape', [x, i64(b, [S, H * D])]), windowKeys(b)], { attrs: { axis: attr.int(0) } }); // [NB, L, H·D]
/** [NB, 1, R, L]: 0 where key t of block j is inside [0, S), causal and within the window of row r. */
function windowBias(b: GraphBuilder): Value {
  const data = new Float32Array(NB * R * L);
  for (let j = 0; j < NB; j++) {
    for (let r = 0; r < R; r++) {
      for (let t = 0; t < L; t++) {
        const d = j * R + r - keyOf(j, t);
        data[(j * R + r) * L + t] = keyOf(j, t) >= 0 && d >= 0 && d < W ? 0 : LOWEST;
      }
    }
  }
  return b.initializer(b.uniqueName('window_bias'), [NB, 1, R, L], { dtype: 'float32', data: Array.from(data) });
}
/** The [1, 1, S, S] mask read at each block's (query, key) positions: [NB, 1, R, L] (what the rewrite gathers). */
function maskBlocks(b: GraphBuilder, mask: Value): Value {
  const idx = Array.from({ length: NB * R * L }, (_, i) => {
    const j = Math.floor(i / (R * L));
    return (j * R + Math.floor(i / L) % R) * S + Math.max(0, keyOf(j, i % L));
  });
  const flat = b.op('Reshape', [mask, i64(b, [1, 1, S * S])]);
  const g = b.op('Gather', [flat, b.initializer('mask_index', [NB, R, L], { dtype: 'int64', data: idx })], { attrs: { axis: attr.int(2) } });
  return b.op('Reshape', [g, i64(b, [NB, 1, R, L])]);
}
const blocksOf = (b: GraphBuilder, x: Value, rows: number, perm: number[]) => b.op('Transpose', [b.op('Reshape', [x, i64(b, [NB, rows, H, D])])], { attrs: { perm: attr.ints(perm) } });

const WINDOW_VARIANTS: Record<string, Build> = {
  [`written out, window ${W} in ${R}-row blocks (window --impl blocked)`]: (b, q, k, v, mask) => {
    const scores = b.op('Mul', [b.op('MatMul', [blocksOf(b, q, R, [0, 2, 1, 3]), blocksOf(b, gatherWindows(b, k), L, [0, 2, 3, 1])]), b.initializer('scale', [], { dtype: 'float32', data: [1 / Math.sqrt(D)] })]);
    const biased = b.op('Add', [scores, b.op('Add', [maskBlocks(b, mask), windowBias(b)])]);
    const out = b.op('MatMul', [b.op('Softmax', [biased], { attrs: { axis: attr.int(-1) } }), blocksOf(b, gatherWindows(b, v), L, [0, 2, 1, 3])]);
    return b.op('Reshape', [b.op('Transpose', [out], { attrs: { perm: attr.ints([0, 2, 1, 3]) } }), i64(b, [1, S, H * D])]);
  },
  [`GroupQueryAttention + attention_bias, local_window_size ${W}`]: gqa({ local_window_size: attr.int(W) }, true),
  [`MultiHeadAttention per ${R}-row query block, window ${W} (window --impl blocked --rows ${R} after fuse)`]: (b, q, k, v, mask) => {
    const bias = b.op('Add', [maskBlocks(b, mask), windowBias(b)]);
    const qb = b.op('Reshape', [q, i64(b, [NB, R, H * D])]);
    const o = b.node('MultiHeadAttention', [qb, gatherWindows(b, k), gatherWindows(b, v), null, null, bias], { domain: 'com.microsoft', attrs: { num_heads: attr.int(H), scale: attr.float(1 / Math.sqrt(D)) } }).outputs[0];
    return b.op('Reshape', [o, i64(b, [1, S, H * D])]);
  },
};

/** The four projections of one layer (Q, K, V from q; O from k): the attention time every form keeps. */
const projections: Build = (b, q, k) => {
  const w = (n: string) => b.initializer(n, [H * D, H * D], { dtype: 'float32', data: Array.from({ length: H * D * H * D }, (_, i) => ((i * 7919) % 1000) / 1e5 - 0.005) });
  const [pq, pk, pv] = ['wq', 'wk', 'wv'].map((n) => b.op('MatMul', [q, w(n)]));
  return b.op('Add', [b.op('Add', [pq, pk]), b.op('Add', [pv, b.op('MatMul', [k, w('wo')])])]);
};

// ---- rotary embedding: what every form keeps when the export computes it (llama-long's RoPE at run time) ----
const HALF = D / 2;
const angles = (f: (x: number) => number) => Array.from({ length: S * HALF }, (_, i) => f(Math.floor(i / HALF) * 10000 ** (-(i % HALF) / HALF)));
/** rotate_half as transformers exports it, on x [1, S, H·D] seen as [1, S, H, D]: x·cos + cat(−x₂, x₁)·sin. */
function rotateHalf(b: GraphBuilder, x: Value, cos: Value, sin: Value): Value {
  const x4 = b.op('Transpose', [b.op('Reshape', [x, i64(b, [1, S, H, D])])], { attrs: { perm: attr.ints([0, 2, 1, 3]) } });
  const half = (from: number, to: number) => b.op('Slice', [x4, i64(b, [from]), i64(b, [to]), i64(b, [3])]);
  const rotated = b.op('Concat', [b.op('Neg', [half(HALF, D)]), half(0, HALF)], { attrs: { axis: attr.int(3) } });
  return b.op('Add', [b.op('Mul', [x4, cos]), b.op('Mul', [rotated, sin])]);
}
const rotaryAsExported: Build = (b, q, k) => {
  const full = (n: string, f: (x: number) => number) => {
    const t = angles(f);
    return b.initializer(n, [1, 1, S, D], { dtype: 'float32', data: Array.from({ length: S * D }, (_, i) => t[Math.floor(i / D) * HALF + (i % D) % HALF]) });
  };
  const [cos, sin] = [full('cos', Math.cos), full('sin', Math.sin)];
  const sum = b.op('Add', [rotateHalf(b, q, cos, sin), rotateHalf(b, k, cos, sin)]);
  return b.op('Reshape', [b.op('Transpose', [sum], { attrs: { perm: attr.ints([0, 2, 1, 3]) } }), i64(b, [1, S, H * D])]);
};
/** The same rotation by com.microsoft RotaryEmbedding (one kernel per tensor, [S, D/2] caches, positions 0 … S − 1). */
const rotaryFused: Build = (b, q, k) => {
  const cache = (n: string, f: (x: number) => number) => b.initializer(n, [S, HALF], { dtype: 'float32', data: angles(f) });
  const [cos, sin] = [cache('cos', Math.cos), cache('sin', Math.sin)];
  const pos = b.initializer('positions', [1, S], { dtype: 'int64', data: Array.from({ length: S }, (_, i) => i) });
  const rope = (x: Value) => b.node('RotaryEmbedding', [x, pos, cos, sin], { domain: 'com.microsoft', attrs: { num_heads: attr.int(H) } }).outputs[0];
  return b.op('Add', [rope(q), rope(k)]);
};

const VARIANTS: Record<string, Build> = {
  // As eager exports write it: split heads, Q·Kᵀ, scale, + mask, Softmax, ·V, merge heads.
  'written-out': (b, q, k, v, mask) => {
    const scores = b.op('Add', [b.op('Mul', [b.op('MatMul', [heads(b, q, [0, 2, 1, 3]), heads(b, k, [0, 2, 3, 1])]), b.initializer('scale', [], { dtype: 'float32', data: [1 / Math.sqrt(D)] })]), mask]);
    const out = b.op('MatMul', [b.op('Softmax', [scores], { attrs: { axis: attr.int(-1) } }), heads(b, v, [0, 2, 1, 3])]);
    return b.op('Reshape', [b.op('Transpose', [out], { attrs: { perm: attr.ints([0, 2, 1, 3]) } }), i64(b, [1, S, H * D])]);
  },
  'GroupQueryAttention + attention_bias (what fuse writes)': gqa({}, true),
  'GroupQueryAttention, no bias': gqa({}, false),
  'MultiHeadAttention + attention_bias': mha(true),
  'MultiHeadAttention, no mask (not causal)': mha(false),
  // onnxruntime 1.29 takes its flash kernel (which skips the causal upper triangle) only with present_key/value.
  'GroupQueryAttention + attention_bias, no present outputs (the kernel without flash attention)': gqa({}, true, 1),
  ...WINDOW_VARIANTS,
  'Q, K, V, O projections (4 MatMuls; not a form of the layer)': projections,
  'rotary embedding of Q and K as exported (rotate_half; not a form of the layer)': rotaryAsExported,
  'rotary embedding of Q and K by com.microsoft RotaryEmbedding (not a form of the layer)': rotaryFused,
};

async function main(): Promise<void> {
  if (S % R !== 0) throw new Error(`--rows ${R} must divide --seq ${S}`);
  const dir = mkdtempSync(join(tmpdir(), 'al-bench-ops-'));
  try {
    const sessions: [string, ort.InferenceSession][] = [];
    for (const [i, [name, build]] of Object.entries(VARIANTS).entries()) {
      const b = GraphBuilder.create({ opsets: { '': 17, 'com.microsoft': 1 } });
      const [q, k, v] = ['q', 'k', 'v'].map((n) => b.input(n, 'float32', [1, S, H * D]));
      const mask = b.input('mask', 'float32', [1, 1, S, S]);
      b.output(build(b, q, k, v, mask), 'float32', [1, S, H * D]);
      const file = join(dir, `${i}.onnx`);
      saveModel(b.finish(), file);
      sessions.push([name, await ort.InferenceSession.create(file, { logSeverityLevel: 3 })]);
    }
    const random = () => Float32Array.from({ length: S * H * D }, () => Math.random() - 0.5);
    const causal = new Float32Array(S * S);
    for (let i = 0; i < S; i++) causal.fill(LOWEST, i * S + i + 1, (i + 1) * S);
    const feeds = {
      q: new ort.Tensor('float32', random(), [1, S, H * D]), k: new ort.Tensor('float32', random(), [1, S, H * D]),
      v: new ort.Tensor('float32', random(), [1, S, H * D]), mask: new ort.Tensor('float32', causal, [1, 1, S, S]),
    };
    // The reference for the window forms: the written-out layer with the window as its mask.
    const windowed = Float32Array.from(causal);
    for (let i = 0; i < S; i++) windowed.fill(LOWEST, i * S, i * S + Math.max(0, i - W + 1));
    const written = sessions.find(([name]) => name === 'written-out')![1];
    const reference = (await written.run({ ...feeds, mask: new ort.Tensor('float32', windowed, [1, 1, S, S]) }))[written.outputNames[0]].data as Float32Array;
    const windowDiff = new Map<string, number>();
    const rotary: Float32Array[] = [];
    const { cpu, wall } = await timeRounds(sessions, feeds, ITERS, (name, out) => {
      if (name in WINDOW_VARIANTS) windowDiff.set(name, maxAbsDiff(out, reference));
      if (name.startsWith('rotary')) rotary.push(out);
    });
    const base = median(cpu.get('written-out')!);
    process.stdout.write(`${JSON.stringify({
      benchmark: 'attention-ops', seq: S, heads: H, headDim: D, window: W, rows: R, iters: ITERS, cores: cpus().length, loadAverage: loadavg(),
      // The two rotary forms compute the same rotation (as the exported model's float32 Sin/Cos tables would differ
      // from these float64-rounded ones only in the last bit).
      rotaryFormsMaxAbsDiff: rotary.length === 2 ? maxAbsDiff(rotary[0], rotary[1]) : null,
      results: sessions.map(([name]) => ({
        variant: name, wallMsMedian: Math.round(median(wall.get(name)!)), cpuMsMedian: Math.round(median(cpu.get(name)!)),
        cpuSpeedupOverWrittenOut: +(base / median(cpu.get(name)!)).toFixed(2),
        ...(windowDiff.has(name) ? { maxAbsDiffVsWindowMask: windowDiff.get(name) } : {}),
      })),
    })}\n`);
    for (const [, s] of sessions) await s.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:attention-ops: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
