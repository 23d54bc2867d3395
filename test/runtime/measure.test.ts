// Pure measurement code, without a worker: statistics, comparison metrics, task-score windows, trace attribution,
// sparse patterns, attention statistics, .npy files and input synthesis.
import { describe, expect, it } from 'vitest';
import type { InputInfo } from '../../src/analysis/report/types';
import { parseNpy, writeNpy } from '../../src/runtime/inputs/npy';
import { guessRole } from '../../src/runtime/inputs/roles';
import { synthesizeInputs } from '../../src/runtime/inputs/synthesize';
import { attentionStats } from '../../src/runtime/measure/attention-stats';
import { compareTensors, topK } from '../../src/runtime/measure/compare-outputs';
import { type TraceEvent, SiteIndex, analyzeTrace } from '../../src/runtime/measure/profile-trace';
import { isVisible, parsePattern } from '../../src/runtime/measure/sparse-pattern';
import { percentile, summarize } from '../../src/runtime/measure/stats';
import { crossEntropySumNats, windowStarts } from '../../src/runtime/measure/task-score';
import { floatToHalf, halfToFloat } from '../../src/analysis/numeric/float16';
import { type HostTensor, toFloat64 } from '../../src/runtime/tensor';

const f32 = (dims: number[], values: number[]): HostTensor => ({ dtype: 'float32', dims, data: Float32Array.from(values) });

describe('latency statistics', () => {
  it('interpolates percentiles like numpy and uses the sample standard deviation', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90)).toBeCloseTo(9.1, 12);
    const s = summarize([4, 2, 6, 8]);
    expect(s.p50).toBe(5);
    expect(s.mean).toBe(5);
    expect(s.std).toBeCloseTo(Math.sqrt(20 / 3), 12);
    expect(s.n).toBe(4);
    expect(summarize([3]).std).toBe(0);
  });
});

describe('output comparison', () => {
  it('computes absolute, relative and cosine differences', () => {
    const c = compareTensors('y', f32([4], [1, 0, 0, 0]), f32([4], [0, 1, 0, 0]));
    if ('reason' in c) throw new Error(c.reason);
    expect(c.maxAbsDiff).toBe(1);
    expect(c.meanAbsDiff).toBe(0.5);
    expect(c.relativeDiff).toBeCloseTo(Math.SQRT2, 12);
    expect(c.cosine).toBe(0);
    expect(c.logits).toBeUndefined();
  });

  it('computes KL, top-1 and top-5 for logits', () => {
    const a = f32([2, 6], [5, 4, 3, 2, 1, 0, 0, 1, 2, 3, 4, 5]);
    const b = f32([2, 6], [5, 4, 3, 2, 0, 1, 0, 1, 2, 3, 5, 4]);
    const c = compareTensors('logits', a, b);
    if ('reason' in c) throw new Error(c.reason);
    expect(c.logits?.positions).toBe(2);
    expect(c.logits?.top1Agreement).toBe(0.5); // row 0 agrees (0), row 1 does not (5 vs 4)
    expect(c.logits?.top5Overlap).toBeCloseTo((4 / 5 + 5 / 5) / 2, 12); // row 0: {0..4} vs {0,1,2,3,5}
    // KL of row 0: swapping the two smallest logits.
    const p = [5, 4, 3, 2, 1, 0].map(Math.exp);
    const q = [5, 4, 3, 2, 0, 1].map(Math.exp);
    const zp = p.reduce((x, y) => x + y);
    const zq = q.reduce((x, y) => x + y);
    const kl0 = p.reduce((acc, pi, i) => acc + (pi / zp) * Math.log(pi / zp / (q[i] / zq)), 0);
    const p1 = [0, 1, 2, 3, 4, 5].map(Math.exp);
    const q1 = [0, 1, 2, 3, 5, 4].map(Math.exp);
    const zp1 = p1.reduce((x, y) => x + y);
    const zq1 = q1.reduce((x, y) => x + y);
    const kl1 = p1.reduce((acc, pi, i) => acc + (pi / zp1) * Math.log(pi / zp1 / (q1[i] / zq1)), 0);
    expect(c.logits?.klDivergence).toBeCloseTo((kl0 + kl1) / 2, 12);
  });

  it('counts NaN elements apart, and calls two all-NaN outputs unknown, not equal', () => {
    const some = compareTensors('y', f32([3], [1, NaN, 2]), f32([3], [1, NaN, 3]));
    if ('reason' in some) throw new Error(some.reason);
    expect([some.maxAbsDiff, some.nonFinite, some.nonFiniteMismatches]).toEqual([1, 1, 0]);
    const all = compareTensors('y', f32([2], [NaN, NaN]), f32([2], [NaN, NaN]));
    if ('reason' in all) throw new Error(all.reason);
    expect(all.nonFinite).toBe(2);
    for (const v of [all.maxAbsDiff, all.meanAbsDiff, all.relativeDiff, all.cosine]) expect(v).toBeNaN();
  });

  it('refuses to compare different shapes', () => {
    const c = compareTensors('y', f32([2], [1, 2]), f32([1, 2], [1, 2]));
    expect('reason' in c && c.reason).toMatch(/shapes differ/);
  });

  it('picks the top k with ties broken by index', () => {
    expect(topK(Float64Array.from([1, 3, 3, 0, 2]), 3)).toEqual([1, 2, 4]);
  });
});

describe('task score', () => {
  it('places windows at k·(N − L − 1)/n with integer division', () => {
    expect(windowStarts(100, 10, 4)).toEqual([0, 22, 44, 66]);
    expect(windowStarts(11, 10, 3)).toEqual([0, 0, 0]);
    expect(() => windowStarts(10, 10, 1)).toThrow(/at least 11/);
  });

  it('sums next-token cross-entropy in nats', () => {
    const logits = Float32Array.from([0, 0, Math.log(3), 0]); // row 0 uniform over 2, row 1 p(0) = 3/4
    expect(crossEntropySumNats(logits, 2, [1, 0], 2)).toBeCloseTo(Math.log(2) + Math.log(4 / 3), 6);
    expect(() => crossEntropySumNats(logits, 2, [2, 0], 2)).toThrow(/outside/);
  });
});

describe('profiler trace attribution', () => {
  const sites = [
    { id: 0, nodes: ['/l0/attn/MatMul', '/l0/attn/Softmax', '/l0/attn/MatMul_1'] },
    { id: 1, nodes: ['/l1/attn/q_proj/MatMul', '/l1/attn/MatMul', '/l1/attn/Softmax'], core: ['/l1/attn/MatMul', '/l1/attn/Softmax'] },
  ];

  it('maps original and fused kernel names to sites', () => {
    const idx = new SiteIndex(sites);
    expect(idx.siteOf('/l0/attn/Softmax')).toBe(0);
    expect(idx.siteOf('/l1/attn/MatMul/MatmulTransposeFusion//MatMulScaleFusion/')).toBe(1);
    expect(idx.siteOf('/l0/attn/MatMul_10')).toBeUndefined();
    expect(idx.siteOf('/l0/mlp/MatMul')).toBeUndefined();
  });

  it('attributes kernel time per site within the counted runs', () => {
    const node = (name: string, ts: number, dur: number, op = 'X'): TraceEvent => ({ cat: 'Node', name: `${name}_kernel_time`, ts, dur, args: { op_name: op, provider: 'CPUExecutionProvider' } });
    const run = (ts: number, dur: number): TraceEvent => ({ cat: 'Session', name: 'model_run', ts, dur });
    const events: TraceEvent[] = [
      run(0, 100), node('/l0/attn/Softmax', 10, 50), node('/l0/mlp/MatMul', 70, 20), // warm-up, skipped
      run(200, 100), node('/l0/attn/Softmax', 210, 10), node('/l1/attn/MatMul/MatmulTransposeFusion/', 230, 20), node('/l1/attn/q_proj/MatMul', 250, 10),
      node('/l0/mlp/MatMul', 270, 60),
      { cat: 'Node', name: '/l0/attn/Softmax_fence_before', ts: 205, dur: 1000 },
    ];
    const p = analyzeTrace(events, sites, { from: 1 });
    expect(p.runsProfiled).toBe(1);
    expect(p.totalKernelMs).toBeCloseTo(0.1, 12);
    expect(p.attentionShare).toBeCloseTo(0.4, 12);
    expect(p.perSite.map((s) => s.share)).toEqual([0.1, 0.3]);
    expect(p.perSite.map((s) => s.coreShare)).toEqual([0, 0.2]);
    expect(p.attentionCoreShare).toBeCloseTo(0.2, 12);
    expect(analyzeTrace(events, undefined, { from: 1 }).attentionShare).toBeNull();
    expect(p.maskBuildShare).toBeNull();
  });

  it('measures the mask building outside the sites apart, once for a mask the sites share', () => {
    const node = (name: string, ts: number, dur: number): TraceEvent => ({ cat: 'Node', name: `${name}_kernel_time`, ts, dur, args: { op_name: 'X', provider: 'CPUExecutionProvider' } });
    const masked = sites.map((s) => ({ ...s, mask: ['/model/Where_1', '/model/Expand'] }));
    const events: TraceEvent[] = [
      { cat: 'Session', name: 'model_run', ts: 0, dur: 100 },
      node('/l0/attn/Softmax', 10, 10), node('/model/Where_1', 20, 25), node('/model/Expand', 50, 5), node('/l0/mlp/MatMul', 60, 60),
    ];
    const p = analyzeTrace(events, masked, { from: 0 });
    expect(p.maskBuildShare).toBeCloseTo(0.3, 12);
    expect(p.attentionShare).toBeCloseTo(0.1, 12);
  });
});

describe('sparse patterns', () => {
  it('parses the methods.md notation', () => {
    expect(parsePattern('window 64')).toEqual({ kind: 'window', window: 64 });
    expect(parsePattern('sink 4 + window 16')).toEqual({ kind: 'sink', sink: 4, window: 16 });
    expect(parsePattern('strided 8 + window 16')).toEqual({ kind: 'strided', stride: 8, window: 16 });
    expect(parsePattern('power + window 2')).toEqual({ kind: 'power', window: 2 });
    expect(() => parsePattern('block-topk 64 4')).toThrow(/expected/);
  });

  it('follows the visibility rules exactly', () => {
    const w = parsePattern('window 3');
    expect([3, 4, 6, 7].map((j) => isVisible(w, 6, j, 0, true))).toEqual([false, true, true, false]);
    expect([3, 4, 8, 9].map((j) => isVisible(w, 6, j, 0, false))).toEqual([false, true, true, false]);
    const s = parsePattern('sink 2 + window 2');
    expect([0, 1, 2, 7, 8, 10].map((j) => isVisible(s, 9, j, 0, true))).toEqual([true, true, false, false, true, false]);
    const st = parsePattern('strided 4 + window 1');
    expect([1, 2, 5, 9, 10].map((j) => isVisible(st, 10, j, 1, true))).toEqual([true, false, true, true, true]);
    const pw = parsePattern('power + window 1');
    expect([9, 8, 6, 5, 2, 0].map((j) => isVisible(pw, 10, j, 0, true))).toEqual([true, true, true, false, true, false]);
  });
});

describe('attention statistics', () => {
  it('computes entropy, first-token mass, distance, recall and the invariants', () => {
    // One head, 2 queries over 3 keys (1 past key): rows sit at positions 1 and 2.
    const probs = Float32Array.from([0.5, 0.5, 0, 0.25, 0.25, 0.5]);
    const s = attentionStats(probs, [1, 1, 2, 3], true, parsePattern('window 1'));
    const h = s.heads[0];
    expect(h.firstTokenMass).toBeCloseTo(0.375, 6);
    expect(h.entropy).toBeCloseTo((Math.log(2) + (0.5 * Math.log(4) + 0.5 * Math.log(2))) / 2, 6);
    expect(h.meanDistance).toBeCloseTo((0.5 * 1 + (0.25 * 2 + 0.25 * 1)) / 2, 6);
    expect(h.diagonalMass).toBeCloseTo((0.5 + 0.5) / 2, 6);
    expect(h.recall).toBeCloseTo(0.5, 6);
    expect(s.maxRowSumError).toBeCloseTo(0, 6);
    expect(s.maxFutureMass).toBe(0);
    const bad = attentionStats(Float32Array.from([0.5, 0.5, 0.2, 0.8]), [2, 2], true);
    expect(bad.maxFutureMass).toBeCloseTo(0.5, 6);
  });
});

describe('tensors and files', () => {
  it('round-trips .npy files', () => {
    const t: HostTensor = { dtype: 'int64', dims: [2, 3], data: BigInt64Array.from([1n, 2n, 3n, 4n, 5n, -6n]) };
    const back = parseNpy(writeNpy(t), 'mem');
    expect(back.dtype).toBe('int64');
    expect(back.dims).toEqual([2, 3]);
    expect(Array.from(back.data as BigInt64Array)).toEqual([1n, 2n, 3n, 4n, 5n, -6n]);
    expect(() => parseNpy(new Uint8Array(20), 'junk')).toThrow(/bad magic/);
  });

  it('converts half floats both ways', () => {
    for (const v of [0, 1, -2.5, 65504, 0.000061035156, 1 / 3]) expect(halfToFloat(floatToHalf(v))).toBeCloseTo(v, 3);
    expect(toFloat64({ dtype: 'float16', dims: [1], data: Uint16Array.from([0x3c00]) })[0]).toBe(1);
  });
});

describe('input synthesis', () => {
  const decoder: InputInfo[] = [
    { name: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'], role: 'input_ids', vocabSize: 50 },
    { name: 'attention_mask', dtype: 'int64', shape: ['batch', 'total_sequence'], role: 'attention_mask', maskMeaning: 'keep' },
    { name: 'position_ids', dtype: 'int64', shape: ['batch', 'sequence'], role: 'position_ids' },
    { name: 'past_key_values.0.key', dtype: 'float32', shape: ['batch', 2, 'past_sequence', 8], role: 'past_key' },
  ];

  it('resolves batch, new tokens and past by role and fills valid values', () => {
    const s = synthesizeInputs(decoder, { batch: 2, seq: 3, past: 5 });
    expect(s.tensors.input_ids.dims).toEqual([2, 3]);
    expect(Array.from(s.tensors.input_ids.data as BigInt64Array).every((v) => v >= 0n && v < 50n)).toBe(true);
    expect(s.tensors.attention_mask.dims).toEqual([2, 8]);
    expect(Array.from(s.tensors.attention_mask.data as BigInt64Array).every((v) => v === 1n)).toBe(true);
    expect(Array.from(s.tensors.position_ids.data as BigInt64Array).map(Number)).toEqual([5, 6, 7, 5, 6, 7]);
    expect(s.tensors['past_key_values.0.key'].dims).toEqual([2, 2, 5, 8]);
    expect(s.warnings).toEqual([]);
  });

  it('is deterministic for a seed, and follows tensors it is given', () => {
    const a = synthesizeInputs(decoder, { seed: 3 });
    const b = synthesizeInputs(decoder, { seed: 3 });
    expect(a.tensors.input_ids.data).toEqual(b.tensors.input_ids.data);
    const ids: HostTensor = { dtype: 'int64', dims: [1, 7], data: new BigInt64Array(7) };
    const mask: HostTensor = { dtype: 'int64', dims: [1, 10], data: new BigInt64Array(10).fill(1n) };
    const c = synthesizeInputs(decoder, {}, { input_ids: ids, attention_mask: mask });
    expect(c.shape).toEqual({ batch: 1, seq: 7, past: 3, hasSequence: true });
    expect(c.tensors['past_key_values.0.key'].dims).toEqual([1, 2, 3, 8]);
    expect(c.tensors.input_ids).toBe(ids);
  });

  it("gives an encoder-decoder's cached encoder keys and values, and its encoder mask, the encoder's one length", () => {
    // optimum's decoder_with_past: the decoder's own cache is `past` long, the encoder's as long as the tokens asked for.
    const names = ['decoder.key', 'decoder.value', 'encoder.key', 'encoder.value'];
    const infos: InputInfo[] = [
      { name: 'input_ids', dtype: 'int64', shape: ['batch', 'seq'], role: 'input_ids', vocabSize: 50 },
      ...names.map((n): InputInfo => ({ name: `past_key_values.0.${n}`, dtype: 'float32', shape: ['batch', 4, n.startsWith('decoder') ? 'past' : 'encoder_sequence_length_out', 8], role: n.endsWith('key') ? 'past_key' : 'past_value' })),
      { name: 'encoder_attention_mask', dtype: 'int64', shape: ['batch', 'encoder_sequence_length'], role: 'attention_mask', axes: { batch: 0, sequence: 1 } },
    ];
    const s = synthesizeInputs(infos, { batch: 2, seq: 6, past: 3 });
    expect(s.tensors['past_key_values.0.decoder.key'].dims).toEqual([2, 4, 3, 8]);
    expect(s.tensors['past_key_values.0.encoder.value'].dims).toEqual([2, 4, 6, 8]);
    expect(s.tensors.encoder_attention_mask.dims).toEqual([2, 6]);
  });

  it('warns when it has to guess a vocabulary', () => {
    const s = synthesizeInputs([{ name: 'ids', dtype: 'int64', shape: [1, 'n'], role: 'input_ids' }]);
    expect(s.warnings[0]).toMatch(/vocabulary size unknown/);
    expect(Array.from(s.tensors.ids.data as BigInt64Array).every((v) => v === 0n || v === 1n)).toBe(true);
  });

  it('guesses roles from names when no analysis is given', () => {
    expect(guessRole({ name: 'past_key_values.3.value', dtype: 'float32', shape: [] })).toBe('past_value');
    // The container's name holds both words: the key was called a value.
    expect(guessRole({ name: 'past_key_values.3.key', dtype: 'float32', shape: [] })).toBe('past_key');
    expect(guessRole({ name: 'past_key_values.0.encoder.key', dtype: 'float32', shape: [] })).toBe('past_key');
    expect(guessRole({ name: 'cache_v', dtype: 'float32', shape: [] })).toBe('past_value');
    expect(guessRole({ name: 'layer_past.1.k', dtype: 'float32', shape: [] })).toBe('past_key');
    expect(guessRole({ name: 'cache_position', dtype: 'int64', shape: ['s'] })).toBe('cache_position');
    expect(guessRole({ name: 'decoder_input_ids', dtype: 'int64', shape: ['b', 's'] })).toBe('input_ids');
    expect(guessRole({ name: 'pixel_values', dtype: 'float32', shape: [1, 3, 224, 224] })).toBe('pixel_values');
    expect(guessRole({ name: 'input_features', dtype: 'float32', shape: [1, 80, 3000] })).toBe('audio_features');
    expect(guessRole({ name: 'x', dtype: 'float32', shape: ['b', 's', 128] })).toBe('hidden_states');
  });
});
