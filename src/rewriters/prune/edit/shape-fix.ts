// After a rewrite changes how many heads a site's tensors carry, the literal head counts and widths that exporters
// bake into the region's shape computations must follow: Reshape targets such as [batch, seq, 4, 32] or [-1, 128],
// the split sizes of a fused QKV tensor, and Slice bounds that cut one. Symbolic parts (batch, sequence) are left
// alone: each changed target becomes `Add(target, delta)` with a constant delta that is zero everywhere except at the
// literal entries, so nothing about how the exporter computed the rest needs to be understood.
import { attr, type GraphBuilder } from '../../../analysis/ir/builder';
import type { Node, Value } from '../../../analysis/ir/graph';
import type { ShapeInfo } from '../../../analysis/ir/shapes';
import { i64 } from '../../../analysis/ir/tensor-data';
import type { Role, SiteStructure } from './structure';
import { setInput } from './weights';

export interface HeadCounts {
  heads: number;
  kvHeads: number;
}

/** New widths of a packed projection's parts, in the packed order. */
export type PackedWidths = { role: 'q' | 'k' | 'v'; before: number; after: number }[];

type RoleMap = { heads?: [number, number]; width?: [number, number] };

/** Per role, the head count and width of its tensors before and after. */
function roleMaps(s: SiteStructure, before: HeadCounts, after: HeadCounts, packed: PackedWidths | undefined): Record<Role, RoleMap> {
  const d = s.headDim;
  const dv = s.vHeadDim;
  const packedBefore = packed?.reduce((a, p) => a + p.before, 0);
  const packedAfter = packed?.reduce((a, p) => a + p.after, 0);
  return {
    q: { heads: [before.heads, after.heads], width: [before.heads * d, after.heads * d] },
    krep: { heads: [before.heads, after.heads], width: [before.heads * d, after.heads * d] },
    vrep: { heads: [before.heads, after.heads], width: [before.heads * dv, after.heads * dv] },
    o: { heads: [before.heads, after.heads], width: [before.heads * dv, after.heads * dv] },
    scores: { heads: [before.heads, after.heads] },
    k: { heads: [before.kvHeads, after.kvHeads], width: [before.kvHeads * d, after.kvHeads * d] },
    v: { heads: [before.kvHeads, after.kvHeads], width: [before.kvHeads * dv, after.kvHeads * dv] },
    packed: packedBefore !== undefined ? { width: [packedBefore, packedAfter!] } : {},
    fused: {},
  };
}

export function fixShapes(builder: GraphBuilder, s: SiteStructure, before: HeadCounts, after: HeadCounts, packed: PackedWidths | undefined, rule: string): void {
  const maps = roleMaps(s, before, after, packed);
  const live = [...s.region].filter((n) => builder.graph.nodes.includes(n));
  for (const n of live) {
    const role = s.roles.get(n);
    if (!role || n.domain !== '') continue;
    if (n.opType === 'Reshape') fixReshape(builder, s, n, maps[role], role, rule);
    else if (role === 'packed' && packed && n.opType === 'Split') fixSplit(builder, s, n, packed, rule);
    else if (role === 'packed' && packed && n.opType === 'Slice') fixSlice(builder, s, n, packed, rule);
  }
  for (const n of live) {
    // Rotary embedding written by onnxruntime's optimizer: its num_heads matters only for 3-D inputs.
    if (n.opType === 'RotaryEmbedding' && n.domain === 'com.microsoft') {
      const role = s.roles.get(n);
      const m = role ? maps[role].heads : undefined;
      const h = Number(n.attr('num_heads')?.i ?? 0);
      if (m && h === m[0] && m[0] !== m[1]) builder.setAttribute(n, 'num_heads', attr.int(m[1]));
    }
  }
}

/** What a Reshape target's entry of value `t` at `i` becomes: the heads or the width it counts follow the rewrite. */
function entryAfter(t: number, i: number, last: number, map: RoleMap, role: Role): number {
  const pick = i === last ? map.width : i === last - 1 ? map.heads : role === 'scores' && i === last - 2 ? map.heads : undefined;
  return pick && t === pick[0] ? pick[1] : t;
}

function fixReshape(builder: GraphBuilder, s: SiteStructure, n: Node, map: RoleMap, role: Role, rule: string): void {
  const target = n.input(1);
  const values = s.shapes.values(target);
  if (!target || !values) return;
  const literal = literalEntries(s.shapes, target, outsideRegion(s));
  const last = values.length - 1;
  // Entries computed from a Shape at run time follow the new widths by themselves; only literals need the delta.
  const delta = values.map((t, i) => (typeof t !== 'number' || t <= 0 || !literal?.[i] ? 0 : entryAfter(t, i, last, map, role) - t));
  addDelta(builder, s, n, delta, rule);
}

/** Read off the shape of a tensor outside the site (nanoGPT's `view(B, T, C)` with C from the block's input), an entry
 * keeps its old value when the heads change: it is as fixed as a literal. */
function outsideRegion(s: SiteStructure): (v: Value | null) => boolean {
  // The Q, K and V projections lie outside the region, but their outputs are as wide as the heads they keep
  // (diffusers reads the head size as `key.shape[-1] // heads`).
  const projected = new Set<string>();
  for (const p of [s.proj.q, s.proj.k, s.proj.v, s.packed?.proj]) {
    if (!p) continue;
    projected.add(p.node.name);
    if (p.info.biasNode) projected.add(p.info.biasNode);
  }
  return (v) => !v?.producer || (!s.region.has(v.producer) && !projected.has(v.producer.name));
}

function addDelta(builder: GraphBuilder, s: SiteStructure, n: Node, delta: number[], rule: string): void {
  if (delta.every((x) => x === 0)) return;
  const dv = builder.initializer(builder.uniqueName(`${s.anchor.name}::${rule}/shape_delta`), [delta.length], i64(delta));
  setInput(n, 1, builder.op('Add', [n.input(1)!, dv], { name: `${s.anchor.name}::${rule}/shape` }));
}

/** A Reshape whose target has entries computed at run time, and what each must be once the heads are cut (null: any). */
export interface ComputedEntries {
  n: Node;
  expected: (number | null)[];
}

/**
 * Entries computed at run time from the site's own tensors that may not follow the rewrite by themselves: a head size
 * read as `width // heads` (GPT-2 before transformers 3, diffusers' attention processors) divides the new width by the
 * old head count. Read before the rewrite (what each entry must become), then checked after it by `fixComputedEntries`.
 */
export function computedEntries(s: SiteStructure, before: HeadCounts, after: HeadCounts): ComputedEntries[] {
  const maps = roleMaps(s, before, after, undefined);
  const fixed = outsideRegion(s);
  const out: ComputedEntries[] = [];
  for (const n of s.region) {
    const role = s.roles.get(n);
    const values = n.opType === 'Reshape' && n.domain === '' ? s.shapes.values(n.input(1)) : undefined;
    // A packed projection's parts change widths of their own (fixShapes moves its cuts); nothing is expected of them.
    if (!role || role === 'packed' || role === 'fused' || !values) continue;
    const literal = literalEntries(s.shapes, n.input(1), fixed);
    const last = values.length - 1;
    const expected = values.map((t, i) => (typeof t === 'number' && t > 0 && literal && !literal[i] && i >= last - 2 ? entryAfter(t, i, last, maps[role], role) : null));
    if (expected.some((x) => x !== null)) out.push({ n, expected });
  }
  return out;
}

/** Where such an entry, read again once the widths are cut, is not what it must be: a constant delta corrects it (the
 * width it reads is fixed by the weights, so the error is too). */
export function fixComputedEntries(builder: GraphBuilder, s: SiteStructure, pending: ComputedEntries[], rule: string, now: () => ShapeInfo): void {
  const live = pending.filter(({ n }) => builder.graph.nodes.includes(n));
  if (live.length === 0) return;
  const shapes = now();
  for (const { n, expected } of live) {
    const got = shapes.values(n.input(1));
    if (!got || got.length !== expected.length) continue;
    addDelta(builder, s, n, expected.map((e, i) => (e !== null && typeof got[i] === 'number' ? e - (got[i] as number) : 0)), rule);
  }
}

/**
 * For a 1-D shape tensor: which entries are literals written by the exporter (constants, through Concat, Unsqueeze,
 * Cast, Gather of constants), or read from the shape of a tensor `fixed` says the rewrite does not change, rather than
 * read from a tensor's shape at run time that follows the new widths. Undefined when unknown.
 */
function literalEntries(shapes: ShapeInfo, v: Value | null, fixed: (v: Value | null) => boolean, depth = 0): boolean[] | undefined {
  const len = shapes.shape(v)?.[0];
  if (!v || typeof len !== 'number' || depth > 12) return undefined;
  if (v.constant) return new Array<boolean>(len).fill(true);
  const p = v.producer;
  if (!p || p.domain !== '') return new Array<boolean>(len).fill(false);
  switch (p.opType) {
    case 'Shape':
      return new Array<boolean>(len).fill(fixed(p.input(0)));
    case 'Concat': {
      const parts = p.inputs.map((i) => literalEntries(shapes, i, fixed, depth + 1));
      if (parts.some((x) => !x)) return undefined;
      const all = parts.flat() as boolean[];
      return all.length === len ? all : undefined;
    }
    case 'Unsqueeze': case 'Squeeze': case 'Cast': case 'Identity': case 'Reshape': {
      const inner = literalEntries(shapes, p.input(0), fixed, depth + 1) ?? (isScalarLiteral(p.input(0), fixed) ? [true] : undefined);
      if (!inner) return new Array<boolean>(len).fill(false);
      return inner.length === len ? inner : new Array<boolean>(len).fill(inner.every(Boolean));
    }
    case 'Gather': {
      const idx = shapes.values(p.input(1));
      const inner = literalEntries(shapes, p.input(0), fixed, depth + 1);
      if (!inner || !idx || idx.length !== len) return new Array<boolean>(len).fill(false);
      return idx.map((i) => (typeof i === 'number' ? inner[i < 0 ? i + inner.length : i] ?? false : false));
    }
    case 'Add': case 'Sub': case 'Mul': {
      // Element-wise shape arithmetic (an earlier rewrite's `target + delta`): literal where both sides are.
      const [a, b] = [0, 1].map((k) => literalEntries(shapes, p.input(k), fixed, depth + 1) ?? (isScalarLiteral(p.input(k), fixed) ? [true] : undefined));
      if (!a || !b) return new Array<boolean>(len).fill(false);
      return Array.from({ length: len }, (_, i) => (a.length === 1 ? a[0] : a[i]) && (b.length === 1 ? b[0] : b[i]));
    }
    default:
      return new Array<boolean>(len).fill(p.inputs.every((i) => !i || isScalarLiteral(i, fixed)));
  }
}

function isScalarLiteral(v: Value | null, fixed: (v: Value | null) => boolean): boolean {
  if (!v) return true;
  if (v.constant) return true;
  const p = v.producer;
  if (!p || p.opType === 'Size') return false;
  if (p.opType === 'Shape') return fixed(p.input(0));
  return p.inputs.every((i) => isScalarLiteral(i, fixed));
}

/** The Split that cuts a packed QKV tensor into its parts: new sizes in the parts' order. */
function fixSplit(builder: GraphBuilder, s: SiteStructure, n: Node, packed: PackedWidths, rule: string): void {
  const sizes = packed.map((p) => p.after);
  if (n.outputs.length !== packed.length) return;
  const sizesInput = n.input(1);
  if (sizesInput) {
    const v = builder.initializer(builder.uniqueName(`${s.anchor.name}::${rule}/split_sizes`), [sizes.length], i64(sizes));
    setInput(n, 1, v);
  } else if (n.attr('split')) {
    builder.setAttribute(n, 'split', attr.ints(sizes));
  } else if (n.attr('num_outputs') && !sizes.every((x) => x === sizes[0])) {
    // Equal parts no longer: name the sizes instead (opset 18 takes either, not both).
    n.attributes.delete('num_outputs');
    const v = builder.initializer(builder.uniqueName(`${s.anchor.name}::${rule}/split_sizes`), [sizes.length], i64(sizes));
    setInput(n, 1, v);
  }
}

/** A Slice that takes one part of a packed tensor: its bounds move with the parts before it. */
function fixSlice(builder: GraphBuilder, s: SiteStructure, n: Node, packed: PackedWidths, rule: string): void {
  const starts = s.shapes.values(n.input(1));
  const ends = s.shapes.values(n.input(2));
  if (!starts || !ends || starts.length !== 1 || ends.length !== 1) return;
  const boundaries = new Map<number, number>();
  let b = 0;
  let a = 0;
  boundaries.set(0, 0);
  for (const p of packed) {
    b += p.before;
    a += p.after;
    boundaries.set(b, a);
  }
  const move = (x: unknown) => (typeof x === 'number' && boundaries.has(x) ? boundaries.get(x)! : x);
  const ns = move(starts[0]);
  const ne = move(ends[0]);
  if (ns === starts[0] && ne === ends[0]) return;
  if (typeof ns !== 'number' || typeof ne !== 'number') return;
  setInput(n, 1, builder.initializer(builder.uniqueName(`${s.anchor.name}::${rule}/slice_start`), [1], i64([ns])));
  setInput(n, 2, builder.initializer(builder.uniqueName(`${s.anchor.name}::${rule}/slice_end`), [1], i64([ne])));
}
