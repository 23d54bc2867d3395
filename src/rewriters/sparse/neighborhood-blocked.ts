// The compute-reducing form of `neighborhood2d r` on written-out sites. Patch tokens come in row bands: the gW patches
// of one grid row form a query block, and a patch's square lies in the 2r + 1 bands around its own, so block b
// multiplies only the prefix tokens' keys and those bands ((2r + 1)·gW + P keys instead of S). The grid is fixed in the
// graph, so every position is a constant, and the bias of each (query, column) pair is pattern.ts's `visible` itself.
// Prefix queries (class, register tokens) see every key: their P rows go through a copy of the site's own dense
// score chain and are put in front of the blocked rows.
import type { Node, Value } from '../../analysis/ir/graph';
import { attr } from '../../analysis/ir/builder';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { RawSite } from '../../analysis/attention/site';
import type { SiteInfo } from '../../analysis/report/types';
import type { RuleContext } from '../rule';
import { rewireBlocked } from './blocked-chain';
import { padRows } from './blocks';
import { NEG_FLOAT32, type SiteOps } from './ops';
import { visible, type Pattern } from './pattern';
import { blockableChain, type ScoreChain } from './score-chain';

type Grid = Extract<Pattern, { kind: 'neighborhood2d' }>;

/** Rewrites the site; returns the keys computed per patch query, or why the form does not apply. */
export function applyBlockedNeighborhood(ctx: RuleContext, raw: RawSite, info: SiteInfo, ops: SiteOps, shapes: ShapeInfo, p: Grid): { keys: number } | string {
  if (raw.anchors.fused) return `${info.form} computes its scores inside the operator`;
  const operands = blockableChain(ctx.builder.graph, shapes, raw);
  if (typeof operands === 'string') return operands;
  const { chain, q, kt, v } = operands;
  const { prefix: P, gridH: gH, gridW: gW } = p;
  const S = P + gH * gW;
  const a = Math.min(p.radius, gH - 1);
  const m = 2 * a + 1;
  const C = P + m * gW;

  const lead = (x: Value, tag: string) => ops.slice(ops.shape(x, `${tag}_shape`), 0, 0, 2, `${tag}_bh`);
  const last = (x: Value, tag: string) => ops.slice(ops.shape(x, `${tag}_shape`), 0, 3, 4, `${tag}_e`);
  const patches = (x: Value, tag: string) => ops.slice(x, 2, P, S, `${tag}_patches`);
  // Q patches [B, H, gH, gW, D].
  const qBlocks = ops.reshape(patches(q, 'q'), ops.shapeOf([lead(q, 'q'), gH, gW, last(q, 'q')], 'q_split'), 'q_blocks');
  // K and V per block: the prefix tokens, then the bands b − a … b + a (zero bands beyond the grid, masked).
  const slots = ops.const('band_slots', [gH, m], { dtype: 'int64', data: Array.from({ length: gH * m }, (_, i) => Math.floor(i / m) + (i % m)) });
  const columns = (x: Value, tag: string) => {
    const pad = ops.scalarI64(a * gW, 'band_pad');
    const padded = padRows(ops, patches(x, tag), a > 0 ? pad : null, a > 0 ? pad : ops.scalarI64(0, 'zero_i'), tag);
    const rows = ops.reshape(padded, ops.shapeOf([lead(x, tag), gH + 2 * a, gW, last(x, tag)], `${tag}_rows_shape`), `${tag}_grid_rows`);
    const bands = ops.reshape(ops.op('Gather', [rows, slots], `${tag}_bands`, { axis: attr.int(2) }), ops.shapeOf([lead(x, tag), gH, m * gW, last(x, tag)], `${tag}_bands_shape`), `${tag}_band_keys`);
    if (P === 0) return bands;
    const pre = ops.op('Expand', [ops.unsqueeze(ops.slice(x, 2, 0, P, `${tag}_prefix`), [2], `${tag}_prefix_block`), ops.shapeOf([1, 1, gH, 1, 1], 'blocks_shape')], `${tag}_prefix_blocks`);
    return ops.concat([pre, bands], 3, `${tag}_columns`);
  };
  const k = ops.transpose(kt, [0, 1, 3, 2], 'k');
  const scores = ops.op('MatMul', [qBlocks, ops.transpose(columns(k, 'k'), [0, 1, 2, 4, 3], 'kt_blocked')], 'qk');

  // Each column's position (clamped into the sequence for the model's mask) and the pattern's bias, both constant.
  const pos: number[] = [];
  const bias: number[] = [];
  for (let b = 0; b < gH; b++) {
    for (let c = 0; c < C; c++) pos.push(columnPosition(p, a, b, c) ?? 0);
  }
  for (let b = 0; b < gH; b++) {
    for (let r = 0; r < gW; r++) {
      for (let c = 0; c < C; c++) {
        const j = columnPosition(p, a, b, c);
        bias.push(j !== null && visible(p, P + b * gW + r, j) ? 0 : NEG_FLOAT32);
      }
    }
  }
  const index = {
    j: ops.const('band_pos', [1, 1, gH, C], { dtype: 'int64', data: pos }),
    perBatch: false, perHead: false, nb: ops.scalarI64(gH, 'grid_h'), rows: gW, front: ops.scalarI64(0, 'zero_i'), sq: ops.scalarI64(gH * gW, 'patch_count'), firstRow: P,
  };
  const table = ops.floats(bias, [1, 1, gH, gW, C], 'square');
  const leadRows = P > 0 ? prefixRows(ops, shapes, chain, ops.slice(q, 2, 0, P, 'q_prefix'), kt, v, P) : undefined;
  rewireBlocked(ctx, ops, shapes, chain, info, { scores, bias: table, values: columns(v, 'v'), index, front: null, sq: index.sq, ...(leadRows ? { leadRows } : {}) }, 'auto');
  return { keys: C };
}

/** Absolute key position of column c of band block b, or null for a column beyond the grid. */
function columnPosition(p: Grid, a: number, b: number, c: number): number | null {
  if (c < p.prefix) return c;
  const t = c - p.prefix;
  const row = b - a + Math.floor(t / p.gridW);
  return row >= 0 && row < p.gridH ? p.prefix + row * p.gridW + (t % p.gridW) : null;
}

/**
 * The prefix queries' rows, dense: Q·Kᵀ for the first P queries, then copies of the site's own ops up to ·V, each
 * mask cut to its first P rows (a mask broadcast over rows keeps its single row). Built before the site's chain is
 * rewired, so the copies read the original masks.
 */
function prefixRows(ops: SiteOps, shapes: ShapeInfo, chain: ScoreChain, q: Value, kt: Value, v: Value, P: number): Value {
  let x = ops.op('MatMul', [q, kt], 'prefix_qk');
  for (const [n, step] of chain.pre.entries()) {
    const inputs = step.node.inputs.map((input, i) => {
      if (i === step.dataIndex) return x;
      if (!input || !step.maskIndexes.includes(i)) return input;
      return (shapes.shape(input)?.length ?? 2) >= 2 ? ops.slice(input, -2, 0, P, `prefix_mask_${n}_${i}`) : input;
    });
    x = copyNode(ops, step.node, inputs, `prefix_${n}`).outputs[0];
  }
  const probs = copyNode(ops, chain.softmax, [x], 'prefix_softmax').outputs[0];
  // The ops between the Softmax and ·V (casts, NaN guard) are element-wise with scalar side inputs: copy them as a
  // graph, following what reads the Softmax's output.
  const copies = new Map<Value, Value>([[chain.softmax.outputs[0], probs]]);
  const copyOf = (val: Value): Value => {
    const known = copies.get(val);
    if (known) return known;
    const n = val.producer;
    if (!n || !reaches(val, chain.softmax)) return val;
    const made = copyNode(ops, n, n.inputs.map((i) => (i ? copyOf(i) : null)), `prefix_${n.opType.toLowerCase()}`);
    n.outputs.forEach((o, i) => copies.set(o, made.outputs[i]));
    return copies.get(val)!;
  };
  return ops.op('MatMul', [copyOf(chain.pv.input(0)!), v], 'prefix_pv');
}

function copyNode(ops: SiteOps, n: Node, inputs: (Value | null)[], what: string): Node {
  const made = ops.b.node(n.opType, inputs, { name: ops.name(what), domain: n.domain, outputs: n.outputs.length });
  for (const [k, a] of n.attributes) made.attributes.set(k, a);
  return made;
}

/** Whether `v` is computed from the node's output (within a few element-wise steps). */
function reaches(v: Value, target: Node, depth = 8): boolean {
  if (depth === 0 || !v.producer) return false;
  if (v.producer === target) return true;
  return v.producer.inputs.some((i) => i !== null && reaches(i, target, depth - 1));
}
