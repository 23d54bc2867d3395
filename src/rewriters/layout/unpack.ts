// A packed QKV projection whose parts are cut into [batch, heads, positions, head size] and then computed on before
// the core (GPT-NeoX and Falcon apply a rotary embedding there): the standard-layout pass cannot rebuild such a site,
// since it would drop that computation, but the head rewrites only need Q, K and V from projections of their own.
// So the projection alone is unpacked: each part's cut value is replaced by its own projection, laid out the same way,
// and everything between the cut and the core (the rotary embedding, the caches) stays as it is. Exact: the new
// weights are the packed weight's columns for that role, in the cut's order.
import type { Layout } from '../../analysis/attention/layout/factors';
import type { RawSite } from '../../analysis/attention/site';
import type { GraphBuilder } from '../../analysis/ir/builder';
import type { Node, Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { HeadColumns, SiteInfo, TokenAxes } from '../../analysis/report/types';
import { SiteOps } from '../sparse/ops';
import { projectionWeights } from './projection-weights';
import { LayoutError } from './score-operands';
import { LAYOUT_OPS, projectRole } from './standard';
import { retargetShapeReaders } from './shape-readers';

const ROLES = ['q', 'k', 'v'] as const;

/** `shapes`: the model's as the layout pass found it (this site's projection and cuts are still as they were then). */
export function unpackProjection(b: GraphBuilder, raw: RawSite, info: SiteInfo, shapes: ShapeInfo): void {
  const bind = info.binding;
  if (!bind?.tokens || !raw.layouts) throw new LayoutError('the site has no bound token axes');
  const node = bind.q.node;
  if (bind.k.node !== node || bind.v.node !== node) throw new LayoutError('Q, K and V do not share one projection');
  const packed = projectionWeights(b.model.graph, node, shapes);
  if (!packed.ok) throw new LayoutError(packed.reason);
  const heads = { q: bind.heads, k: bind.kvHeads, v: bind.kvHeads };
  // Every cut is found before anything changes: a site is unpacked whole or not at all.
  const cuts = ROLES.map((role) => {
    const cut = cutOf(raw, bind[role], bind.tokens![role], packed.value.output);
    if (!cut) throw new LayoutError(`its ${role.toUpperCase()} is not cut from the packed projection as [batch, heads, positions, head size] before it is computed on`);
    return cut;
  });
  const ops = new SiteOps(b, `${raw.anchor.name}::unpack`, packed.value.dtype);
  ROLES.forEach((role, i) => {
    const own = projectRole(b, ops, packed.value, bind[role], bind.tokens![role], heads[role], role);
    b.replaceAllUses(cuts[i], own);
  });
  retargetShapeReaders(b, ops, raw.layouts);
}

/**
 * The value on the role's way to the core that holds exactly its heads as [batch, heads, positions, head size],
 * reached from the packed projection through layout ops alone.
 */
function cutOf(raw: RawSite, cols: HeadColumns, tokens: TokenAxes, packedOut: Value): Value | undefined {
  if (cols.offsets || tokens.batch === undefined || tokens.window !== undefined) return undefined;
  for (const [v, layout] of raw.layouts!) {
    if (isRoleCut(layout, cols, tokens) && onlyLayoutOpsFrom(packedOut, v)) return v;
  }
  return undefined;
}

function isRoleCut(l: Layout, cols: HeadColumns, t: TokenAxes): boolean {
  const axes = l.axes.map((a) => a.filter((f) => f.size !== 1));
  if (axes.length !== 4 || axes.some((a) => a.length !== 1)) return false;
  const [batch, head, pos, dim] = axes.map((a) => a[0]);
  if (batch.kind !== 'token' || batch.axis !== t.batch || pos.kind !== 'token' || pos.axis !== t.positions || pos.stride !== undefined) return false;
  if (head.kind !== 'feature' || dim.kind !== 'feature' || dim.stride !== 1 || dim.size !== cols.width || head.size !== cols.starts.length) return false;
  return cols.starts.every((s, h) => s === l.offset + h * head.stride);
}

/** Whether `to` is computed from `from` by layout ops only (no arithmetic a new projection would skip). */
function onlyLayoutOpsFrom(from: Value, to: Value): boolean {
  let v: Value | null = to;
  for (let i = 0; i < 16 && v; i++) {
    if (v === from) return true;
    const p: Node | null = v.producer;
    if (!p || !LAYOUT_OPS.has(p.opType) || p.domain !== '') return false;
    v = p.input(0);
  }
  return false;
}
