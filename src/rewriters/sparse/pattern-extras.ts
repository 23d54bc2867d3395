// The keys that `sink`, `strided` and `power` add beyond their window, as extra columns of the blocked window
// (blocked-extras.ts). Each builder gives every extra position once per query block and a bias that lets a row see it
// exactly where pattern.ts's `visible` does and the window does not.
//
// - sink N: the first N keys, the same for every block: C = N.
// - strided k: for head h the keys j ≡ h (mod k), gathered per head, the same for every block: C = ⌈Sk/k⌉ (h is the
//   head's index in the pattern: its own, or in a plan its index in the original site).
// - power: for each power of two 2^p ≥ W below Sk, the R keys 2^p before the block's rows; row r sees only column r of
//   that run (distance exactly 2^p): C = P·R with P = ⌊log₂(Sk − 1)⌋ − ⌈log₂ W⌉ + 1 runs.
import { attr } from '../../analysis/ir/builder';
import type { Value } from '../../analysis/ir/graph';
import type { WindowBlocks } from './blocked-window';
import { beyondWindow, type ExtraKeys } from './blocked-extras';
import { padRows } from './blocks';
import { NEG_FLOAT32, type SiteOps } from './ops';
import type { Pattern } from './pattern';

/** Extra key columns per query block at sequence length `s`, for the cost figures. */
export function extraColumns(p: Pattern, s: number, rows: number): number {
  switch (p.kind) {
    case 'sink': return Math.min(p.sink, s);
    case 'strided': return Math.ceil(s / p.stride);
    case 'power': return Math.max(1, powersFrom(p.window).filter((d) => d < s).length) * rows;
    default: return 0;
  }
}

/** 2^p for every p with W ≤ 2^p < 2^40: every distance a power can reach beyond the window. */
function powersFrom(window: number): number[] {
  const out: number[] = [];
  for (let d = 1; d < 2 ** 40; d *= 2) if (d >= window) out.push(d);
  return out;
}

export function sinkExtras(ops: SiteOps, w: WindowBlocks, p: Extract<Pattern, { kind: 'sink' }>): ExtraKeys {
  const n = p.sink;
  // The first min(N, Sk) keys, padded to N rows (positions ≥ Sk are masked): [B, H, 1, N, E].
  const first = (x: Value, tag: string) => {
    const head = ops.slice(x, 2, 0, n, `${tag}_sinks`);
    const have = ops.dim(ops.shape(head, `${tag}_sinks_shape`), 2, `${tag}_sinks_n`);
    return ops.unsqueeze(padRows(ops, head, null, ops.op('Sub', [ops.scalarI64(n, 'sink'), have], `${tag}_sinks_missing`), `${tag}_sinks`), [2], `${tag}_sinks_block`);
  };
  const pos = ops.const('sink_pos', [1, 1, n], { dtype: 'int64', data: Array.from({ length: n }, (_, j) => j) });
  const seen = beyondWindow(ops, w, p.window, pos); // [nb, R, N]
  return { k: first(w.k, 'k'), v: first(w.v, 'v'), perBlock: false, pos, perHead: false, rowBias: ops.unsqueeze(ops.additive(seen, 'sink_bias'), [0, 1], 'sink_row_bias') };
}

/** Why the shards cannot be gathered (K must have one head per query head: grouped sites repeat K and V first). */
export function stridedReason(keyHeads: number | string | null | undefined, heads: number): string | null {
  return typeof keyHeads === 'number' && keyHeads !== heads ? `K has ${keyHeads} heads where the site has ${heads} query heads` : null;
}

/** `shardHeads`: the pattern's head index of each head the site has (a plan's head group is a subset of them). */
export function stridedExtras(ops: SiteOps, w: WindowBlocks, p: Extract<Pattern, { kind: 'strided' }>, shardHeads: readonly number[]): ExtraKeys {
  const k = p.stride;
  const heads = shardHeads.length;
  const t = ops.ceilDiv(w.sk, k, 'shard_len');
  const hMod = ops.const('head_mod', [heads, 1], { dtype: 'int64', data: shardHeads.map((h) => h % k) });
  const pos = ops.op('Add', [hMod, ops.op('Mul', [ops.unsqueeze(ops.range(t, 'shard'), [0], 'shard_row'), ops.scalarI64(k, 'stride')], 'shard_offsets')], 'shard_pos'); // [H, T]
  const clamped = ops.op('Min', [pos, ops.op('Sub', [w.sk, ops.scalarI64(1, 'one_i')], 'last_key')], 'shard_clamped');
  // Per head its own shard: GatherElements along the positions, index [B, H, T, E].
  const gather = (x: Value, tag: string) => {
    const s = ops.shape(x, `${tag}_shape`);
    const target = ops.shapeOf([ops.slice(s, 0, 0, 1, `${tag}_b`), heads, ops.vec(t), ops.slice(s, 0, 3, 4, `${tag}_e`)], `${tag}_index_shape`);
    const index = ops.op('Expand', [ops.unsqueeze(clamped, [0, 3], `${tag}_index4`), target], `${tag}_index`);
    return ops.unsqueeze(ops.op('GatherElements', [x, index], `${tag}_shard`, { axis: attr.int(2) }), [2], `${tag}_shard_block`);
  };
  const pos3 = ops.unsqueeze(pos, [1], 'shard_pos3'); // [H, 1, T]
  const seen = beyondWindow(ops, w, p.window, ops.unsqueeze(pos, [1, 2], 'shard_pos4')); // [H, nb, R, T]
  return { k: gather(w.k, 'k'), v: gather(w.v, 'v'), perBlock: false, pos: pos3, perHead: true, rowBias: ops.unsqueeze(ops.additive(seen, 'shard_bias'), [0], 'shard_row_bias') };
}

export function powerExtras(ops: SiteOps, w: WindowBlocks, p: Extract<Pattern, { kind: 'power' }>): ExtraKeys {
  const R = w.R;
  const all = powersFrom(p.window);
  const pows = ops.const('powers', [all.length], { dtype: 'int64', data: all });
  // Runs for the powers below Sk (at least one, which is then wholly before position 0 and masked).
  const below = ops.reduceSum(ops.cast(ops.op('Less', [pows, w.sk], 'power_reached'), 'int64', 'power_reached_i'), [0], false, 'powers_reached');
  const runs = ops.slice(pows, 0, 0, ops.op('Max', [below, ops.scalarI64(1, 'one_i')], 'runs'), 'run_offsets');
  // Run p of block b: keys blockFirst − 2^p + c, c < R; [nb, P·R].
  const first = ops.unsqueeze(ops.slice(w.queryPos, 1, 0, 1, 'block_first'), [2], 'block_first3'); // [nb, 1, 1]
  const cols = ops.const('run_cols', [1, 1, R], { dtype: 'int64', data: Array.from({ length: R }, (_, c) => c) });
  const runPos = ops.op('Add', [ops.op('Sub', [first, ops.unsqueeze(runs, [0, 2], 'run_offsets3')], 'run_start'), cols], 'run_pos3');
  const pos = ops.reshape(runPos, ops.shapeOf([ops.vec(w.nb), -1], 'run_pos_shape'), 'run_pos');
  const index = ops.op('Min', [ops.op('Max', [pos, ops.scalarI64(0, 'zero_i')], 'run_lo'), ops.op('Sub', [w.sk, ops.scalarI64(1, 'one_i')], 'last_key')], 'run_index');
  const gather = (x: Value, tag: string) => ops.op('Gather', [x, index], `${tag}_runs`, { axis: attr.int(2) }); // [B, H, nb, P·R, E]
  // Row r sees column r of every run: a diagonal R × R table repeated P times.
  const diag = ops.floats(Array.from({ length: R * R }, (_, i) => (Math.floor(i / R) === i % R ? 0 : NEG_FLOAT32)), [R, 1, R], 'run_diagonal');
  const tiled = ops.op('Expand', [diag, ops.shapeOf([R, ops.vec(ops.dim(ops.shape(runs, 'runs_shape'), 0, 'run_count')), R], 'run_tile')], 'run_tiled');
  const rowBias = ops.reshape(tiled, ops.shapeOf([1, 1, 1, R, -1], 'run_bias_shape'), 'run_row_bias');
  return { k: gather(w.k, 'k'), v: gather(w.v, 'v'), perBlock: true, pos: ops.unsqueeze(pos, [0], 'run_pos3d'), perHead: false, rowBias };
}
