// Exporters compute reshape targets and masks from the shapes of intermediate values (torch.nn reads the shape of the
// packed projection and of K to build its key-padding mask). Once a site is rebuilt, those Shape nodes would keep the
// old projections alive — computing them for nothing and keeping their weights in the file. Every such Shape is
// replaced by the same vector computed from the activation's shape and the bound factor sizes, which the binding
// walk recorded for each value.
import type { Value } from '../../analysis/ir/graph';
import { transpose, type Layout } from '../../analysis/attention/layout/factors';
import { FLATTENED } from '../../analysis/attention/layout/walk';
import type { GraphBuilder } from '../../analysis/ir/builder';
import type { SiteOps } from '../sparse/ops';

export function retargetShapeReaders(b: GraphBuilder, ops: SiteOps, walked: Map<Value, Layout>): void {
  const layouts = withSideBranches(walked);
  for (const [v, layout] of layouts) {
    for (const use of [...v.uses]) {
      const n = use.node;
      if (n.opType !== 'Shape' || n.domain !== '' || n.attr('start') || n.attr('end')) continue;
      const vec = shapeVector(b, ops, layout);
      if (vec) b.replaceAllUses(n.outputs[0], vec);
    }
  }
}

/**
 * Values the walk did not pass but that only re-lay out a walked one for its shape to be read (torch.nn transposes K
 * once more just to read its length): Transpose, Identity and Cast branches, followed a few steps.
 */
function withSideBranches(walked: Map<Value, Layout>): Map<Value, Layout> {
  const out = new Map(walked);
  let frontier = [...walked];
  for (let depth = 0; depth < 3 && frontier.length; depth++) {
    const next: [Value, Layout][] = [];
    for (const [v, l] of frontier) {
      for (const { node } of v.uses) {
        const o = node.outputs[0];
        if (!o || out.has(o) || node.domain !== '') continue;
        let r: Layout | undefined;
        if (node.opType === 'Identity' || node.opType === 'Cast') r = l;
        else if (node.opType === 'Transpose') {
          const t = transpose(l, node.attr('perm')?.ints?.map(Number));
          r = t.ok ? t.value : undefined;
        }
        if (r) next.push([o, r]);
      }
    }
    for (const [v, l] of next) out.set(v, l);
    frontier = next;
  }
  return out;
}

/** The shape of a value with this layout, built from constants and dims of the source activations. */
function shapeVector(b: GraphBuilder, ops: SiteOps, l: Layout): Value | undefined {
  const parts: (number | Value)[] = [];
  for (const axis of l.axes) {
    let known = 1;
    const dyn: Value[] = [];
    for (const f of axis) {
      if (typeof f.size === 'number') {
        known *= f.size;
        continue;
      }
      if (f.kind !== 'token') return undefined;
      const src = sourceValue(b, f.source);
      if (!src) return undefined;
      dyn.push(ops.vec(ops.dim(ops.shape(src, 'src_shape'), f.axis, 'src_dim'), 'src_vec'));
    }
    if (dyn.length === 0) {
      parts.push(known);
      continue;
    }
    let p = dyn.reduce((a, d) => ops.op('Mul', [a, d], 'dim_product'));
    if (known !== 1) p = ops.op('Mul', [p, ops.i64([known], 'dim_factor')], 'dim_scaled');
    parts.push(p);
  }
  return ops.shapeOf(parts, 'shape_of');
}

function sourceValue(b: GraphBuilder, source: string): Value | undefined {
  const flat = source.endsWith(FLATTENED);
  const v = b.model.graph.values.get(flat ? source.slice(0, -FLATTENED.length) : source);
  if (!v) return undefined;
  // A flattened activation's token axes index the tensor it was flattened from.
  return flat ? v.producer?.input(0) ?? undefined : v;
}
