// Places where a graph's known sizes disagree: an element-wise op combining two sizes that do not broadcast (3 heads
// against 4), a MatMul whose contracted sizes differ. A rewrite that changes head counts checks its result with this,
// so that a per-head value it did not know to cut is a clear refusal instead of a model that fails at run time.
import type { Graph, Node } from './graph';
import type { ShapeInfo } from './shapes';

const BROADCASTING = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Where', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Max', 'Min', 'Mod', 'PRelu']);

/** One line per op whose inputs' known sizes cannot be combined, keyed by the node's name. */
export function shapeConflicts(graph: Graph, shapes: ShapeInfo): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of graph.nodes) {
    if (n.domain !== '') continue;
    const why = BROADCASTING.has(n.opType) ? broadcastConflict(n, shapes) : n.opType === 'MatMul' ? matmulConflict(n, shapes) : undefined;
    if (why) out.set(n.name, `${n.opType} '${n.name}' ${why}`);
  }
  return out;
}

const show = (s: readonly unknown[]) => `[${s.map((d) => (typeof d === 'number' ? d : '?')).join(', ')}]`;

function broadcastConflict(n: Node, shapes: ShapeInfo): string | undefined {
  const ins = n.inputs.map((v) => (v ? shapes.shape(v) : undefined)).filter((s): s is NonNullable<typeof s> => !!s);
  const rank = Math.max(0, ...ins.map((s) => s.length));
  for (let i = 0; i < rank; i++) {
    const sizes = new Set<number>();
    for (const s of ins) {
      const d = s[s.length - rank + i];
      if (typeof d === 'number' && d !== 1) sizes.add(d);
    }
    if (sizes.size > 1) return `combines ${ins.map(show).join(' with ')}`;
  }
  return undefined;
}

function matmulConflict(n: Node, shapes: ShapeInfo): string | undefined {
  const a = shapes.shape(n.input(0));
  const b = shapes.shape(n.input(1));
  if (!a || !b || a.length < 2 || b.length < 2) return undefined;
  const k1 = a[a.length - 1];
  const k2 = b[b.length - 2];
  return typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2 ? `multiplies ${show(a)} by ${show(b)}` : undefined;
}
