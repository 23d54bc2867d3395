// The last row of the model's mask, computed without the mask. The compute-reducing forms read only the last query
// row of a padding/causal mask (mask-gather.ts `keys`, padding.ts), but a Slice of the mask still makes onnxruntime
// build all of it: on an exported causal Llama at 4096 tokens that S×S Where/And/Expand chain took 50–100 ms per run
// on the 2-core CPU, about an eighth of the blocked window's whole model. So the Slice is pushed up the chain instead:
// through element-wise operators (numpy broadcasting), row −1 of the output is the operator applied to row −1 of each
// input that has the row axis, and inputs that broadcast over it (size 1, or lower rank) stay as they are; through
// Expand, the target shape gets 1 on that axis. Where the chain stops (any other operator, an input, a constant) the
// Slice is taken there, on a tensor that is usually one row already. Exact by construction: the same values, in the
// same order of operations, for the one row.
//
// The chain is shared by every site reading the same mask (memoised per builder), and once no site reads the full
// mask, its now unused producers are removed (dropDeadMasks, after a rule's sites).
import type { GraphBuilder } from '../../analysis/ir/builder';
import type { Node, Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import { SiteOps } from './ops';

/** Default-domain operators whose output element i depends only on element i of each (broadcast) input. */
const ELEMENTWISE = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Where', 'And', 'Or', 'Xor', 'Not', 'Neg', 'Cast', 'Max', 'Min',
  'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual',
]);
/** Deeper chains are sliced where the walk stops (exact either way; this only bounds the work). */
const MAX_DEPTH = 24;

interface Memo {
  rows: Map<string, Value>;
  /** The full tensors whose row was taken: their producers may be unused once every site reads the row. */
  sources: Set<Value>;
}
const memos = new WeakMap<GraphBuilder, Memo>();

function memoOf(b: GraphBuilder): Memo {
  let m = memos.get(b);
  if (!m) memos.set(b, (m = { rows: new Map(), sources: new Set() }));
  return m;
}

/** v[..., −1:, ...] on `axis` (a size-1 axis kept), without computing the rest of v where its producers allow. */
export function lastRow(b: GraphBuilder, shapes: ShapeInfo, v: Value, axis: number): Value {
  const memo = memoOf(b);
  memo.sources.add(v);
  return rowOf(b, shapes, memo, v, axis, 0);
}

function rowOf(b: GraphBuilder, shapes: ShapeInfo, memo: Memo, v: Value, axis: number, depth: number): Value {
  const key = `${v.name}@${axis}`;
  const known = memo.rows.get(key);
  // A row some later edit removed (the memo outlives nothing but its rule; this guards direct callers) is rebuilt.
  if (known && b.graph.values.get(known.name) === known) return known;
  const dims = shapes.shape(v);
  let row: Value;
  if (dims?.[axis] === 1) row = v;
  else row = (depth < MAX_DEPTH && pushed(b, shapes, memo, v, axis, depth)) || sliced(b, v, axis);
  memo.rows.set(key, row);
  return row;
}

function opsFor(b: GraphBuilder, v: Value): SiteOps {
  return new SiteOps(b, `${v.producer?.name ?? v.name}::last_row`, 'float32');
}

function sliced(b: GraphBuilder, v: Value, axis: number): Value {
  return opsFor(b, v).slice(v, axis, -1, Number.MAX_SAFE_INTEGER, `slice_${axis}`);
}

/** The producer applied to its inputs' last rows, or null where that is not the same thing. */
function pushed(b: GraphBuilder, shapes: ShapeInfo, memo: Memo, v: Value, axis: number, depth: number): Value | null {
  const p = v.producer;
  const rank = shapes.shape(v)?.length;
  if (!p || p.domain !== '' || rank === undefined || p.outputs.length !== 1) return null;
  if (ELEMENTWISE.has(p.opType)) {
    const inputs: (Value | null)[] = [];
    for (const x of p.inputs) {
      if (!x) { inputs.push(null); continue; }
      const r = shapes.shape(x)?.length;
      if (r === undefined) return null;
      const a = axis - (rank - r);
      inputs.push(a < 0 ? x : rowOf(b, shapes, memo, x, a, depth + 1));
    }
    return newNode(b, p, v, inputs);
  }
  if (p.opType === 'Expand') return pushedExpand(b, shapes, memo, p, v, axis, rank, depth);
  return null;
}

/** Expand(x, shape): x's row, expanded to the shape with 1 on the row axis. */
function pushedExpand(b: GraphBuilder, shapes: ShapeInfo, memo: Memo, p: Node, v: Value, axis: number, rank: number, depth: number): Value | null {
  const [x, target] = [p.input(0), p.input(1)];
  const xr = x ? shapes.shape(x)?.length : undefined;
  const len = target ? shapes.shape(target)?.[0] : undefined;
  if (!x || !target || xr === undefined || typeof len !== 'number') return null;
  const a = axis - (rank - xr);
  const xRow = a < 0 ? x : rowOf(b, shapes, memo, x, a, depth + 1);
  const t = axis - (rank - len);
  if (t < 0) return newNode(b, p, v, [xRow, target]);
  const ops = opsFor(b, v);
  const parts = [
    ...(t > 0 ? [ops.slice(target, 0, 0, t, 'shape_before')] : []),
    ops.i64([1], 'one_row'),
    ...(t + 1 < len ? [ops.slice(target, 0, t + 1, len, 'shape_after')] : []),
  ];
  return newNode(b, p, v, [xRow, ops.concat(parts, 0, 'shape')]);
}

/** A copy of `p` (same operator and attributes, e.g. Cast's `to`) on other inputs. */
function newNode(b: GraphBuilder, p: Node, v: Value, inputs: (Value | null)[]): Value {
  const node = b.node(p.opType, inputs, { name: `${p.name}::last_row/op` });
  // Copies, so that a later edit of one node's attribute (a precision change of Cast's `to`) does not change the other.
  for (const [name, a] of p.attributes) node.attributes.set(name, { ...a });
  return node.outputs[0];
}

/**
 * Removes the producers of full masks that nothing reads any more (after a rule has rewritten its sites), up the
 * chain as far as nothing else reads it. A mask some site or output still reads stays whole.
 */
export function dropDeadMasks(b: GraphBuilder): void {
  const memo = memos.get(b);
  memos.delete(b);
  if (!memo) return;
  const unread = [...memo.sources].filter((v) => v.uses.length === 0 && !v.isGraphOutput);
  b.removeDeadFrom(unread.map((v) => v.producer).filter((n): n is Node => n !== null));
}
