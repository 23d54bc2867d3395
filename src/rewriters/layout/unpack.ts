// A projection that packs two or three of Q, K and V, split into one projection per role, the rest of the site kept
// as it is. Two kinds of site need it:
//   - packed Q, K and V cut into [batch, heads, positions, head size] and then computed on before the core (GPT-NeoX
//     and Falcon apply a rotary embedding there): the standard-layout pass cannot rebuild such a site, since it would
//     drop that computation;
//   - K and V packed apart from a separate Q (multi-query's one `kv` Linear, lucidrains' `to_kv`, PVT): the head
//     rewrites edit one packed projection only when it holds all three roles.
// The head rewrites only need Q, K and V from projections of their own. Each part's cut value is replaced by its own
// projection, laid out the same way, and everything between the cut and the core (rotary embedding, caches, the
// multi-query Expand) stays as it is. Exact: the new weights are the packed weight's columns for that role, in the
// cut's order.
import type { Layout } from '../../analysis/attention/layout/factors';
import type { RawSite } from '../../analysis/attention/site';
import type { GraphBuilder } from '../../analysis/ir/builder';
import type { Node, Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { HeadColumns, SiteBinding, SiteInfo, TokenAxes } from '../../analysis/report/types';
import { SiteOps } from '../sparse/ops';
import { projectionWeights } from './projection-weights';
import { LayoutError } from './score-operands';
import { LAYOUT_OPS, projectRole } from './standard';
import { retargetShapeReaders } from './shape-readers';

type RoleName = 'q' | 'k' | 'v';
const ROLES: readonly RoleName[] = ['q', 'k', 'v'];

/** The roles that share a projection node with another role (empty when each has its own). */
export function packedRoles(b: SiteBinding): RoleName[] {
  return ROLES.filter((r) => ROLES.some((o) => o !== r && b[o].node === b[r].node));
}

/**
 * Splits the site's packed projection into one per role. `shapes`: the model's as the layout pass found it (this
 * site's projection and cuts are still as they were then). Returns what was split, as "Q, K and V" or "K and V".
 */
export function unpackProjection(b: GraphBuilder, raw: RawSite, info: SiteInfo, shapes: ShapeInfo): string {
  const bind = info.binding;
  if (!bind?.tokens || !raw.layouts) throw new LayoutError('the site has no bound token axes');
  const roles = packedRoles(bind);
  // Two roles sharing one node, or all three: with three roles there is no other way for them to share.
  if (roles.length === 0) throw new LayoutError('Q, K and V have projections of their own');
  const packed = projectionWeights(b.model.graph, bind[roles[0]].node, shapes);
  if (!packed.ok) throw new LayoutError(packed.reason);
  const heads = { q: bind.heads, k: bind.kvHeads, v: bind.kvHeads };
  // Every cut is found before anything changes: a site is unpacked whole or not at all.
  const cuts = roles.map((role) => {
    const cut = cutOf(raw, bind[role], bind.tokens![role], packed.value.output);
    if (!cut) throw new LayoutError(`its ${role.toUpperCase()} is not cut from the packed projection as [batch, heads, positions, head size] before it is computed on`);
    return cut;
  });
  const ops = new SiteOps(b, `${raw.anchor.name}::unpack`, packed.value.dtype);
  roles.forEach((role, i) => {
    const own = projectRole(b, ops, packed.value, bind[role], bind.tokens![role], heads[role], role);
    b.replaceAllUses(cuts[i], own);
  });
  retargetShapeReaders(b, ops, raw.layouts);
  const names = roles.map((r) => r.toUpperCase());
  return names.length === 3 ? 'Q, K and V' : names.join(' and ');
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

/**
 * Whether the layout is [batch, heads, positions, head size] with exactly the role's heads. An axis of size 1 has no
 * factor: a fixed batch of 1, or the one K/V head of multi-query attention.
 */
function isRoleCut(l: Layout, cols: HeadColumns, t: TokenAxes): boolean {
  const axes = l.axes.map((a) => a.filter((f) => f.size !== 1));
  if (axes.length !== 4 || axes.some((a) => a.length > 1)) return false;
  const [batch, head, pos, dim] = axes.map((a) => a[0]);
  if (batch && (batch.kind !== 'token' || batch.axis !== t.batch)) return false;
  if (pos?.kind !== 'token' || pos.axis !== t.positions || pos.stride !== undefined) return false;
  if (dim?.kind !== 'feature' || dim.stride !== 1 || dim.size !== cols.width) return false;
  if (!head) return cols.starts.length === 1 && cols.starts[0] === l.offset;
  if (head.kind !== 'feature' || head.size !== cols.starts.length) return false;
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
