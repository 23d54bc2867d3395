// One causal attention layer at S tokens (H heads of D, batch 1), written out and as each fused operator onnxruntime
// offers for it, on the same inputs: what `fuse` can gain at most on this machine and provider. Models are timed
// interleaved run by run; besides wall time the process CPU time of each run is reported, which other load on a
// shared machine disturbs much less (the runtime uses every core, so wall ≈ CPU / cores when the machine is quiet).
//
// Usage: npm run bench:attention-ops [-- --seq 4096 --heads 8 --dim 64 --iters 5]
// Output: one JSON object on stdout.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { attr, GraphBuilder, type Attr } from '../src/analysis/ir/builder';
import type { Value } from '../src/analysis/ir/graph';
import { saveModel } from '../src/analysis/ir/save';

const option = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const S = option('seq', 4096);
const H = option('heads', 8);
const D = option('dim', 64);
const ITERS = option('iters', 5);

type Build = (b: GraphBuilder, q: Value, k: Value, v: Value, mask: Value) => Value;

const i64 = (b: GraphBuilder, x: number[]) => b.initializer(b.uniqueName('shape'), [x.length], { dtype: 'int64', data: x });
const heads = (b: GraphBuilder, x: Value, perm: number[]) => b.op('Transpose', [b.op('Reshape', [x, i64(b, [1, S, H, D])])], { attrs: { perm: attr.ints(perm) } });

/** GroupQueryAttention in prompt mode: every row's keys are all S positions, causality is the operator's. */
const gqa = (extra: Record<string, Attr>, withMask: boolean): Build => (b, q, k, v, mask) => {
  const seqlens = b.initializer('seqlens', [1], { dtype: 'int32', data: [S - 1] });
  const total = b.initializer('total', [], { dtype: 'int32', data: [S] });
  const attrs = { num_heads: attr.int(H), kv_num_heads: attr.int(H), scale: attr.float(1 / Math.sqrt(D)), ...extra };
  return b.node('GroupQueryAttention', [q, k, v, null, null, seqlens, total, null, null, null, withMask ? mask : null], { domain: 'com.microsoft', outputs: 3, attrs }).outputs[0];
};
const mha = (withMask: boolean): Build => (b, q, k, v, mask) =>
  b.node('MultiHeadAttention', [q, k, v, null, null, withMask ? mask : null], { domain: 'com.microsoft', attrs: { num_heads: attr.int(H), scale: attr.float(1 / Math.sqrt(D)) } }).outputs[0];

const VARIANTS: Record<string, Build> = {
  // As eager exports write it: split heads, Q·Kᵀ, scale, + mask, Softmax, ·V, merge heads.
  'written-out': (b, q, k, v, mask) => {
    const scores = b.op('Add', [b.op('Mul', [b.op('MatMul', [heads(b, q, [0, 2, 1, 3]), heads(b, k, [0, 2, 3, 1])]), b.initializer('scale', [], { dtype: 'float32', data: [1 / Math.sqrt(D)] })]), mask]);
    const out = b.op('MatMul', [b.op('Softmax', [scores], { attrs: { axis: attr.int(-1) } }), heads(b, v, [0, 2, 1, 3])]);
    return b.op('Reshape', [b.op('Transpose', [out], { attrs: { perm: attr.ints([0, 2, 1, 3]) } }), i64(b, [1, S, H * D])]);
  },
  'GroupQueryAttention + attention_bias (what fuse writes)': gqa({}, true),
  'GroupQueryAttention, no bias': gqa({}, false),
  'GroupQueryAttention, local_window_size 256': gqa({ local_window_size: attr.int(256) }, false),
  'MultiHeadAttention + attention_bias': mha(true),
  'MultiHeadAttention, no mask (not causal)': mha(false),
};

async function main(): Promise<void> {
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
    for (let i = 0; i < S; i++) causal.fill(-3.4028234663852886e38, i * S + i + 1, (i + 1) * S);
    const feeds = {
      q: new ort.Tensor('float32', random(), [1, S, H * D]), k: new ort.Tensor('float32', random(), [1, S, H * D]),
      v: new ort.Tensor('float32', random(), [1, S, H * D]), mask: new ort.Tensor('float32', causal, [1, 1, S, S]),
    };
    const wall = new Map<string, number[]>();
    const cpu = new Map<string, number[]>();
    // One untimed round first: the first run of each session allocates its buffers.
    for (let round = 0; round <= ITERS; round++) {
      for (const [name, s] of sessions) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await s.run(feeds);
        const t = performance.now() - t0;
        const c = process.cpuUsage(c0);
        if (round === 0) continue;
        (wall.get(name) ?? wall.set(name, []).get(name)!).push(t);
        (cpu.get(name) ?? cpu.set(name, []).get(name)!).push((c.user + c.system) / 1000);
      }
    }
    const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)];
    const base = median(cpu.get('written-out')!);
    process.stdout.write(`${JSON.stringify({
      benchmark: 'attention-ops', seq: S, heads: H, headDim: D, iters: ITERS, cores: cpus().length, loadAverage: loadavg(),
      results: sessions.map(([name]) => ({
        variant: name, wallMsMedian: Math.round(median(wall.get(name)!)), cpuMsMedian: Math.round(median(cpu.get(name)!)),
        cpuSpeedupOverWrittenOut: +(base / median(cpu.get(name)!)).toFixed(2),
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
