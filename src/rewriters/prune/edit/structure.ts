// What a head-level rewrite needs to know about one site, gathered before anything is edited: the projections, the
// region of the graph between the Q/K/V projections and the output projection, the role of every node in it (which
// head count its tensors carry), the grouped-query repeat of K and V, and which KV head each query head reads.
import type { Graph, Node, Value } from '../../../analysis/ir/graph';
import { ShapeInfo } from '../../../analysis/ir/shapes';
import type { RawSite } from '../../../analysis/attention/site';
import type { SiteInfo } from '../../../analysis/report/types';
import { nonStandardLayout } from '../../layout/standard';
import { resolveProjection, ProjectionError, type ResolvedProjection } from './projection';
import { outsideReader } from './outside-readers';
import { between, downstreamIn, upstreamIn } from './region';

export type SiteForm = 'unfused' | 'ms-attention' | 'ms-mha' | 'ms-gqa' | 'onnx-attention';

/**
 * q, k, v: tensors of that projection before the core (k/v carry KV heads); packed: a fused QKV (or KV) tensor;
 * krep/vrep: K/V after the grouped-query repeat (query-head count); scores: Q·Kᵀ to P·V; o: merged heads on their way
 * to the output projection; fused: the fused attention operator itself.
 */
export type Role = 'q' | 'k' | 'v' | 'packed' | 'krep' | 'vrep' | 'scores' | 'o' | 'fused';

/** The grouped-query repeat of K or V: `pre` has the KV heads, `post` the query heads. */
export interface Repeat {
  pre: Value;
  post: Value;
  /**
   * interleave: query head i reads KV head ⌊i / n_rep⌋ (repeat_kv, Expand); modulo: i mod kvHeads (Tile); a list:
   * query head i reads KV head list[i] (a Gather of KV heads, as an earlier head rewrite leaves it).
   */
  mapping: 'interleave' | 'modulo' | number[];
}

export interface PackedPart {
  role: 'q' | 'k' | 'v';
  start: number;
  end: number;
}

export interface SiteStructure {
  raw: RawSite;
  info: SiteInfo;
  form: SiteForm;
  anchor: Node;
  heads: number;
  kvHeads: number;
  headDim: number;
  vHeadDim: number;
  proj: { q?: ResolvedProjection; k?: ResolvedProjection; v?: ResolvedProjection; o?: ResolvedProjection };
  /** When one node projects several roles (GPT-2's c_attn, packed Attention): the node and its parts in feature order. */
  packed?: { proj: ResolvedProjection; parts: PackedPart[] };
  region: Set<Node>;
  roles: Map<Node, Role>;
  repeats: { k?: Repeat; v?: Repeat };
  /** For each query head, the KV head it reads. */
  qToKv: number[];
  shapes: ShapeInfo;
}

export class StructureError extends Error {}

const FORMS: Record<string, SiteForm> = {
  unfused: 'unfused',
  'sdpa-decomposed': 'unfused',
  'com.microsoft.Attention': 'ms-attention',
  'com.microsoft.MultiHeadAttention': 'ms-mha',
  'com.microsoft.GroupQueryAttention': 'ms-gqa',
  'onnx.Attention': 'onnx-attention',
};

export function siteForm(form: string): SiteForm | undefined {
  return FORMS[form];
}

export interface StructureOptions {
  /** Require an output projection (head pruning cuts its rows). */
  needOutput?: boolean;
  /** Roles whose tensors the rule changes: a reader of one outside the site's path refuses the site. */
  exclusive?: readonly Role[];
  /** The rule changes head counts (prune-heads, gqa): every size that splits the heads must be known (bound). */
  cutsHeads?: boolean;
}

export function siteStructure(graph: Graph, raw: RawSite, info: SiteInfo, options: StructureOptions = {}, shapes = new ShapeInfo(graph)): SiteStructure {
  const form = siteForm(raw.form);
  if (!form) throw new StructureError(`${raw.form} sites are not supported`);
  const { heads, headDim } = raw;
  let kvHeads = raw.kvHeads;
  if (!heads || !kvHeads || !headDim) throw new StructureError('the analysis could not read the head count, KV head count and head size');
  const vHeadDim = raw.vHeadDim ?? headDim;
  const proj: SiteStructure['proj'] = {};
  try {
    for (const role of ['q', 'k', 'v', 'o'] as const) {
      const p = raw.projections[role];
      if (p) proj[role] = resolveProjection(graph, p);
    }
  } catch (e) {
    if (e instanceof ProjectionError) throw new StructureError(e.message);
    throw e;
  }
  if (options.needOutput && !proj.o) throw new StructureError('no output projection was found, so the heads cannot be cut from it');
  if (!proj.q || !proj.k || !proj.v) throw new StructureError('the Q, K and V projections were not all found');
  const packed = packedOf(proj, raw, info, shapes);
  const bound = raw.binding;
  if (options.cutsHeads && form === 'unfused' && !bound && !rewrittenHere(info)) {
    // Without a binding the sizes that split the heads are not known to be the ones edited: a head size computed at run
    // time as width // heads (diffusers' head_to_batch_dim) kept dividing by the old count, and the model failed.
    const why = info.notes.find((n) => n.startsWith('dimensions not bound'));
    throw new StructureError(`${why ?? 'its dimensions are not bound across Q, K, V and the output'}; the heads cannot be cut without knowing every size that splits them`);
  }
  if (form === 'unfused' && !bound) {
    // The K weight says how many KV heads the site computes; written-out attention leaves no attribute to read.
    const part = packed?.parts.find((p) => p.role === 'k');
    const width = part ? part.end - part.start : proj.k.features;
    if (width % headDim === 0 && width / headDim !== kvHeads) kvHeads = width / headDim;
  }
  const anchor = raw.anchor;

  const sinks = proj.o ? [proj.o.activation] : raw.io.out ? [raw.io.out] : [];
  if (sinks.length === 0) throw new StructureError('the attention output was not found');
  const sources = packed ? [packed.proj.output] : [proj.q.output, proj.k.output, proj.v.output];
  const region = between(sources, sinks);
  if (form === 'ms-attention') region.add(anchor);

  const repeats: SiteStructure['repeats'] = {};
  if (form === 'unfused') {
    for (const role of ['k', 'v'] as const) {
      const io = raw.io[role];
      const r = io ? (bound && raw.layouts ? repeatOnPath(raw, role, region, kvHeads) : undefined) ?? findRepeat(shapes, io, region, heads, kvHeads) : undefined;
      if (!r && heads === kvHeads) continue;
      if (!r) throw new StructureError(`the grouped-query repeat of ${role.toUpperCase()} (${kvHeads} to ${heads} heads) was not recognised`);
      repeats[role] = r;
    }
    const order = (r?: Repeat) => JSON.stringify(r ? readOrder(r.mapping, heads, kvHeads) : undefined);
    if (order(repeats.k) !== order(repeats.v)) throw new StructureError('K and V are repeated in different orders');
  }
  const roles = assignRoles(raw, form, region, repeats);
  const outside = options.exclusive && outsideReader({ region, roles, proj, packed, sinks, cacheOutputs: new Set(info.kvCache.presentOutputs) }, options.exclusive);
  if (outside) throw new StructureError(outside);
  // The binding's head map says which KV head each query head reads; the repeat's kind only stands in without one.
  const qToKv = bound && bound.heads === heads && bound.kvHeads === kvHeads
    ? [...bound.qToKv]
    : repeats.k
    ? readOrder(repeats.k.mapping, heads, kvHeads)
    : Array.from({ length: heads }, (_, i) => (heads === kvHeads ? i : Math.floor(i / (heads / kvHeads))));
  return { raw, info, form, anchor, heads, kvHeads, headDim, vHeadDim, proj, ...(packed ? { packed } : {}), region, roles, repeats, qToKv, shapes };
}

/**
 * A site an earlier rule of this tool rewrote (its nodes are named `<anchor>::<rule>/…`): a Gather of KV heads after a
 * head rule, blocked keys after a sparse rule leave it unbound, and the head rewrites read it the way those rules wrote it.
 */
function rewrittenHere(info: SiteInfo): boolean {
  return info.nodes.some((n) => /::[a-z0-9-]+\//.test(n));
}

/** For each query head, the KV head a repeat of this kind gives it. */
function readOrder(mapping: Repeat['mapping'], heads: number, kvHeads: number): number[] {
  if (Array.isArray(mapping)) return [...mapping];
  return Array.from({ length: heads }, (_, i) => (mapping === 'modulo' ? i % kvHeads : Math.floor(i / (heads / kvHeads))));
}

function packedOf(proj: SiteStructure['proj'], raw: RawSite, info: SiteInfo, shapes: ShapeInfo): SiteStructure['packed'] {
  const fromMap = packedFromHeadMap(proj, info);
  if (fromMap) return fromMap;
  const { q, k, v } = proj;
  if (q && k && v && q.node === k.node && k.node === v.node && q.info.sliceStart === undefined) {
    // The analysis names the shared node but not the slices (fused operators fed by a Split): read them off the Split.
    const parts = partsFromSplit(q, raw, shapes);
    const layout = nonStandardLayout(info);
    if (!parts && layout) throw new StructureError(`projection '${q.node.name}' packs Q, K and V and the site is not in the standard layout (${layout}), which the standard-layout pass could not give it`);
    if (!parts) throw new StructureError(`projection '${q.node.name}' packs Q, K and V but its split was not recognised`);
    return { proj: q, parts };
  }
  const byNode = new Map<Node, PackedPart[]>();
  for (const [role, p] of [['q', q], ['k', k], ['v', v]] as const) {
    if (!p) continue;
    const list = byNode.get(p.node) ?? [];
    list.push({ role, start: p.info.sliceStart ?? 0, end: p.info.sliceEnd ?? p.features });
    byNode.set(p.node, list);
  }
  for (const [node, parts] of byNode) {
    if (parts.length < 2) continue;
    if (byNode.size > 1 && parts.length < 3) throw new StructureError(`projection '${node.name}' packs ${parts.map((p) => p.role).join('+')} and the rest is separate; not supported`);
    parts.sort((a, b) => a.start - b.start);
    const p = (parts[0].role === 'q' ? q : parts[0].role === 'k' ? k : v)!;
    return { proj: p, parts };
  }
  return undefined;
}

/**
 * Where Q, K and V sit in a projection they share, read off the site's head map: each role's heads are one run of
 * columns there. Undefined when the binding has no packed projection or its heads are not consecutive runs (the
 * older readings below then apply, or the rules refuse).
 */
function packedFromHeadMap(proj: SiteStructure['proj'], info: SiteInfo): SiteStructure['packed'] {
  const b = info.binding;
  // Outside the standard layout (Q, K and V cut by Gather, heads folded into the batch) the head rewrites cannot
  // update the shapes that split the heads; the standard-layout pass must re-lay such a site out first.
  if (!b || nonStandardLayout(info) !== null) return undefined;
  const roles = (['q', 'k', 'v'] as const).filter((r) => proj[r]);
  const byNode = new Map<string, ('q' | 'k' | 'v')[]>();
  for (const r of roles) byNode.set(b[r].node, [...(byNode.get(b[r].node) ?? []), r]);
  const shared = [...byNode.values()].find((rs) => rs.length > 1);
  if (!shared) return undefined;
  const p = proj[shared[0]]!;
  if (shared.some((r) => proj[r]!.node !== p.node || b[r].node !== p.node.name)) return undefined;
  const parts: PackedPart[] = [];
  for (const role of shared) {
    const h = b[role];
    const run = h.starts.every((x, i) => x === h.starts[0] + i * h.width) && !h.offsets;
    if (!run) return undefined;
    parts.push({ role, start: h.starts[0], end: h.starts[0] + h.starts.length * h.width });
  }
  parts.sort((x, y) => x.start - y.start);
  if (parts.some((x, i) => i > 0 && x.start < parts[i - 1].end)) return undefined;
  if (byNode.size > 1 && shared.length < 3) throw new StructureError(`projection '${p.node.name}' packs ${shared.join('+')} and the rest is separate; not supported`);
  return { proj: p, parts };
}

/**
 * The grouped-query repeat of K or V as the binding walked it: along the role's path from its projection to the core,
 * `pre` is the last [batch, KV heads, positions, size] value before a repeat factor appears, and `post` the first
 * [batch, heads, positions, size] value whose head axis holds the repeat. Undefined when the path has no such pair.
 */
function repeatOnPath(raw: RawSite, role: 'k' | 'v', region: Set<Node>, kvHeads: number): Repeat | undefined {
  const layouts = raw.layouts!;
  const chain: Value[] = [];
  for (let v: Value | null | undefined = raw.io[role]; v && layouts.has(v) && chain.length < 64; ) {
    chain.unshift(v);
    const p: Node | null = v.producer;
    if (!p || !region.has(p)) break;
    v = p.inputs.find((i) => i && layouts.has(i));
  }
  const repeated = (v: Value) => layouts.get(v)!.axes.some((a) => a.some((f) => f.kind === 'repeat' && f.size !== 1));
  const headAxis = (v: Value) => {
    const axes = layouts.get(v)!.axes;
    return axes.length === 4 ? axes[1].filter((f) => f.size !== 1) : undefined;
  };
  // Multi-query attention's one KV head leaves the head axis without a factor (size 1).
  const holdsKvHeads = (v: Value) => headAxis(v)?.every((f) => f.kind === 'feature') && product(headAxis(v)!) === kvHeads;
  const first = chain.findIndex(repeated);
  if (first <= 0) return undefined;
  const pre = chain.slice(0, first).reverse().find(holdsKvHeads);
  const post = chain.slice(first).find((v) => headAxis(v)?.some((f) => f.kind === 'repeat'));
  if (!pre || !post) return undefined;
  return { pre, post, mapping: raw.binding!.qToKv };
}

function product(fs: { size: unknown }[]): number {
  return fs.reduce((n: number, f) => n * (typeof f.size === 'number' ? f.size : NaN), 1);
}

function partsFromSplit(p: ResolvedProjection, raw: RawSite, shapes: ShapeInfo): PackedPart[] | undefined {
  let v = p.output;
  let split: Node | undefined;
  for (let step = 0; step < 4 && !split; step++) {
    const uses = v.uses.filter((u) => u.node.opType !== 'Shape');
    if (uses.length !== 1) return undefined;
    const n = uses[0].node;
    if (n.opType === 'Split') split = n;
    else if (['Reshape', 'Identity', 'Cast'].includes(n.opType)) v = n.outputs[0];
    else return undefined;
  }
  if (!split || split.outputs.length !== 3) return undefined;
  const widths = split.outputs.map((o) => shapes.shape(o)?.slice(-1)[0]);
  if (widths.some((w) => typeof w !== 'number')) return undefined;
  const starts = widths.map((_, i) => (widths as number[]).slice(0, i).reduce((a, b) => a + b, 0));
  const parts: PackedPart[] = [];
  for (const role of ['q', 'k', 'v'] as const) {
    const i = splitOutputReaching(split, raw.io[role]);
    if (i === undefined) return undefined;
    parts.push({ role, start: starts[i], end: starts[i] + (widths[i] as number) });
  }
  return parts.sort((a, b) => a.start - b.start);
}

/** Which output of `split` the value is computed from (a short walk back through its producers). */
function splitOutputReaching(split: Node, start: Value | undefined): number | undefined {
  const seen = new Set<Value>();
  const stack = start ? [start] : [];
  while (stack.length && seen.size < 64) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (v.producer === split) return v.producerIndex;
    if (v.producer) for (const i of v.producer.inputs) if (i && !i.constant) stack.push(i);
  }
  return undefined;
}

function assignRoles(raw: RawSite, form: SiteForm, region: Set<Node>, repeats: SiteStructure['repeats']): Map<Node, Role> {
  const roles = new Map<Node, Role>();
  const fused = form !== 'unfused' ? raw.anchor : undefined;
  const within = new Set([...region].filter((n) => n !== fused));
  const up = {
    q: upstreamIn(within, raw.io.q),
    k: upstreamIn(within, raw.io.k),
    v: upstreamIn(within, raw.io.v),
  };
  const repK = repeats.k ? downstreamIn(up.k, repeats.k.post) : new Set<Node>();
  const repV = repeats.v ? downstreamIn(up.v, repeats.v.post) : new Set<Node>();
  // The merge after the core: downstream of P·V (unfused) or of the fused operator's output.
  const pv = raw.anchors.pv ? [...region].find((n) => n.name === raw.anchors.pv) : undefined;
  const coreOut = fused ? fused.outputs[0] : pv?.outputs[0];
  const merge = coreOut ? downstreamIn(within, coreOut) : new Set<Node>();
  for (const n of region) {
    if (n === fused) {
      roles.set(n, 'fused');
      continue;
    }
    const member = (['q', 'k', 'v'] as const).filter((r) => up[r].has(n));
    if (member.length > 1) roles.set(n, 'packed');
    else if (member.length === 1) roles.set(n, member[0] === 'k' && repK.has(n) ? 'krep' : member[0] === 'v' && repV.has(n) ? 'vrep' : member[0]);
    else if (merge.has(n)) roles.set(n, 'o');
    else roles.set(n, 'scores');
  }
  return roles;
}

/**
 * Walks back from K (or V) as it enters its MatMul to the grouped-query repeat: `Unsqueeze → Expand → Reshape`
 * (transformers' repeat_kv) or a `Tile` over the head axis. Layout ops and scalings in between are passed.
 */
function findRepeat(shapes: ShapeInfo, start: Value, region: Set<Node>, heads: number, kvHeads: number): Repeat | undefined {
  const headsAt = (v: Value | null | undefined, n: number) => {
    const s = shapes.shape(v);
    return !!s && s.length === 4 && (s[1] === n || typeof s[1] !== 'number');
  };
  let v: Value | null = start;
  let lastReshape: Value | undefined;
  for (let step = 0; step < 12 && v?.producer && region.has(v.producer); step++) {
    const p: Node = v.producer;
    if (p.opType === 'Expand') {
      const un = p.input(0)?.producer;
      const pre = un?.opType === 'Unsqueeze' ? un.input(0) : null;
      if (!pre || !lastReshape || !headsAt(pre, kvHeads) || !headsAt(lastReshape, heads)) return undefined;
      return { pre, post: lastReshape, mapping: 'interleave' };
    }
    if (p.opType === 'Tile') {
      const pre = p.input(0);
      const reps = shapes.values(p.input(1));
      if (!pre || !reps || reps.length !== 4 || reps[1] !== heads / kvHeads || !headsAt(pre, kvHeads)) return undefined;
      return { pre, post: p.outputs[0], mapping: 'modulo' };
    }
    if (p.opType === 'Gather' && Number(p.attr('axis')?.i ?? 0) === 1) {
      const pre = p.input(0);
      const idx = shapes.values(p.input(1));
      if (!pre || !idx || idx.length !== heads || idx.some((x) => typeof x !== 'number') || !headsAt(pre, kvHeads)) return undefined;
      return { pre, post: p.outputs[0], mapping: idx as number[] };
    }
    if (p.opType === 'Reshape') lastReshape = p.outputs[0];
    if (['Transpose', 'Reshape', 'Cast', 'Identity', 'Unsqueeze', 'Squeeze'].includes(p.opType)) v = p.input(0);
    else if (p.opType === 'Mul' || p.opType === 'Div') v = p.inputs.find((i) => i && !i.constant && i.producer?.opType !== 'Constant') ?? null;
    else return undefined;
  }
  return undefined;
}
