// The head map of a fused attention operator. Its attributes give the head counts; the map is stated only where it is
// certain: the operator reads Q, K and V as [batch, positions, heads·size] straight from their projections (or holds
// the packed weight itself), and its output goes straight into the output projection. There, head h is columns
// h·size onward of its role's slice, and query head h reads KV head ⌊h / (heads / kv heads)⌋, as the operators define.
import type { Node, Value } from '../../ir/graph';
import type { HeadColumns, ProjectionInfo, SiteBinding } from '../../report/types';
import type { Ctx } from '../match';
import type { RawSite } from '../site';

export function fusedBinding(ctx: Ctx, op: Node, s: RawSite): SiteBinding | undefined {
  const { heads, kvHeads, headDim } = s;
  if (!heads || !kvHeads || !headDim || heads % kvHeads !== 0) return undefined;
  const dv = s.vHeadDim ?? headDim;
  const { q, k, v, o } = s.projections;
  if (!q || !k || !v || !o) return undefined;
  const packedInside = q.node === op.name;
  const direct = (p: ProjectionInfo, input: number) => packedInside || readsProjection(ctx, op.input(input), p, op.input(0));
  if (!direct(q, 0) || !direct(k, 1) || !direct(v, 2)) return undefined;
  if (!feedsProjection(op.outputs[0], o)) return undefined;
  const cols = (p: ProjectionInfo, n: number, width: number): HeadColumns => ({
    node: p.node,
    starts: Array.from({ length: n }, (_, h) => (p.sliceStart ?? 0) + h * width),
    width,
  });
  const qShape = ctx.shapes.shape(op.input(0));
  const kShape = ctx.shapes.shape(op.input(1));
  const group = heads / kvHeads;
  return {
    batch: qShape?.[0] ?? null,
    heads,
    kvHeads,
    headDim,
    vHeadDim: dv,
    queryPositions: qShape?.[1] ?? null,
    keyPositions: kShape?.length === 3 ? kShape[1] : null,
    scoreAxes: [['batch'], ['head'], ['query'], ['key']],
    qToKv: Array.from({ length: heads }, (_, h) => Math.floor(h / group)),
    q: cols(q, heads, headDim),
    k: cols(k, kvHeads, headDim),
    v: cols(v, kvHeads, dv),
    o: { node: o.node, starts: Array.from({ length: heads }, (_, h) => h * dv), width: dv },
  };
}

/** The input is [batch, positions, features] produced by the projection (after its bias), or the packed QKV input. */
function readsProjection(ctx: Ctx, input: Value | null, p: ProjectionInfo, packed: Value | null): boolean {
  const x = input ?? (p.fused ? packed : null);
  if (!x || ctx.shapes.shape(x)?.length !== 3) return false;
  const prod = x.producer;
  if (!prod) return false;
  if (prod.name === p.node) return true;
  return prod.opType === 'Add' && prod.inputs.some((i) => i?.producer?.name === p.node);
}

/** The operator's output is the output projection's activation, through casts at most. */
function feedsProjection(out: Value, o: ProjectionInfo): boolean {
  let v: Value | undefined = out;
  for (let i = 0; i < 3 && v; i++) {
    if (v.uses.some((u) => u.node.name === o.node && u.index === 0)) return true;
    const next: { node: Node } | undefined = v.uses.find((u) => u.node.opType === 'Cast' || u.node.opType === 'Identity');
    v = next?.node.outputs[0];
  }
  return false;
}
