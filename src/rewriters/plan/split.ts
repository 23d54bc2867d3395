// The compute-reducing form of a plan on a written-out site: the heads are split into groups by choice and each group
// computes its own attention on its own slice of Q, K and V (a Gather along the head axis), so that a window group
// costs O(S·W) through the blocked window (sparse/blocked-window.ts), a sink, strided or power group O(S·(W + R + C))
// through the uniform rules' blocked form (sparse/blocked-pattern.ts: the window plus C extra key columns) and a
// block-topk group O(S·(k+2)·b) through block-topk's gather form, while dense heads stay dense. The first group keeps
// the site's own nodes (the Softmax keeps its name, so the site keeps its id); the others get copies of the score chain
// (Q·Kᵀ, the element-wise steps, the Softmax, the steps after it, ·V). The groups' outputs are concatenated along the
// head axis and put back in head order for whatever read the site's ·V. The analysis reads this structure back as one
// site (analysis/attention/plan-site.ts): keep the names `<anchor>::plan/g<i>_q`, `_kt`, `_v` (the head slices) and
// `<anchor>::plan/heads_concat`, `<anchor>::plan/heads` (the merge).
import { attr } from '../../analysis/ir/builder';
import type { Node, Value } from '../../analysis/ir/graph';
import { ShapeInfo } from '../../analysis/ir/shapes';
import type { RawSite } from '../../analysis/attention/site';
import type { RuleContext } from '../rule';
import { applyGather, blockTopkVisible } from '../sparse/block-topk';
import { blockedPattern, type CausalPattern } from '../sparse/blocked-pattern';
import { applyBlockedWindow, blockedKeys, defaultBlockRows } from '../sparse/blocked-window';
import { applyMask } from '../sparse/mask-form';
import { SiteOps } from '../sparse/ops';
import { readScoreChain, type ScoreChain } from '../sparse/score-chain';
import { describeHeadChoice } from './choices';
import type { GroupCost } from './cost';
import { groupHeads, patternOf, type HeadGroup, type PlanHead } from './heads';
import { staticVisibility, type PlanSite } from './mask';

export interface SplitResult {
  groups: (GroupCost & { choice: string; form: string })[];
  warnings: string[];
}

/** Rewrites the site into head groups, or returns why it cannot (the caller then uses the mask form). */
export function applyPlanSplit(ctx: RuleContext, site: PlanSite, heads: PlanHead[], origHeads: number): SplitResult | string {
  const { info, raw, ops } = site;
  const chain = readScoreChain(ctx.builder.graph, site.shapes, raw);
  if (typeof chain === 'string') return chain;
  for (const [what, x] of [['Q', chain.qk.input(0)], ['Kᵀ', chain.qk.input(1)], ['V', chain.pv.input(1)]] as const) {
    const r = site.shapes.shape(x)?.length;
    if (r !== undefined && r !== 4) return `${what} has rank ${r}, not [batch, heads, positions, head size]`;
  }
  const groups = groupHeads(heads);
  let parts: { raw: RawSite; out: Value }[];
  if (groups.length === 1) {
    parts = [{ raw, out: chain.pv.outputs[0] }];
  } else {
    const split = splitChain(ctx, ops, site.shapes, raw, chain, groups, heads.length);
    if (typeof split === 'string') return split;
    parts = split;
  }
  // The copies and the head slices are new values: their shapes are read again for the groups' rewrites.
  const shapes = groups.length === 1 ? site.shapes : new ShapeInfo(ctx.builder.graph);
  const result: SplitResult = { groups: [], warnings: [] };
  groups.forEach((g, i) => {
    const sub = new SiteOps(ctx.builder, groups.length === 1 ? ops.prefix : `${ops.prefix}/g${i}`, ops.float);
    const mine = g.heads.map((n) => heads[n]);
    const done = rewriteGroup(ctx, { ...site, raw: parts[i].raw, ops: sub, shapes }, g, mine, origHeads);
    result.groups.push({ ...done.cost, heads: g.heads.length, choice: describeHeadChoice(g.choice), form: done.form });
    result.warnings.push(...done.warnings.map((w) => `site ${info.id}, ${describeHeadChoice(g.choice)} heads: ${w}`));
  });
  return result;
}

interface GroupDone {
  form: string;
  cost: { rows: number; keys: number; extraFlops?: number };
  warnings: string[];
}

function rewriteGroup(ctx: RuleContext, site: PlanSite, g: HeadGroup, heads: PlanHead[], origHeads: number): GroupDone {
  const { info, raw, ops, shapes } = site;
  const seq = ctx.seqLen;
  const dense = { rows: seq, keys: seq };
  const c = g.choice;
  const warnings: string[] = [];
  if (c.kind === 'dense') return { form: 'dense', cost: dense, warnings };
  if (c.kind === 'window') {
    const rows = defaultBlockRows(c.window);
    const r = applyBlockedWindow(ctx, raw, info, ops, shapes, { window: c.window, causal: info.causal, rows, modelMask: 'auto' });
    if (typeof r !== 'string') return { form: 'blocked', cost: { rows: Math.ceil(seq / r.rows) * r.rows, keys: blockedKeys(c.window, r.rows, info.causal) }, warnings: r.warnings };
    warnings.push(`blocked form not possible (${r}); used the mask form`);
  }
  if (c.kind === 'block-topk') {
    const selection = info.headDim ? heads.length * (2 * Math.ceil(seq / c.block) ** 2 * info.headDim + 2 * seq * info.headDim) : 0;
    const r = applyGather(ctx, raw, info, ops, shapes, { block: c.block, k: c.k });
    const blocks = Math.ceil(seq / c.block);
    if (r === null) return { form: 'gather', cost: { rows: blocks * c.block, keys: Math.min(c.k + 2, blocks) * c.block, extraFlops: selection }, warnings };
    warnings.push(`gather form not possible (${r}); used the mask form`);
    const kept = blockTopkVisible(ctx, raw, info, ops, shapes, { block: c.block, k: c.k });
    ctx.builder.setInput(raw.anchor, 0, ops.masked(raw.anchor.input(0)!, kept));
    return { form: 'mask', cost: { ...dense, extraFlops: selection }, warnings };
  }
  if (c.kind === 'sink' || c.kind === 'strided' || c.kind === 'power') {
    // The uniform rules' builder; a strided head keeps the shard of its index in the original site.
    const pattern = patternOf(c, info.causal, origHeads) as CausalPattern;
    const r = blockedPattern(ctx, raw, info, ops, shapes, pattern, { window: c.window, shardHeads: heads.map((h) => h.orig) });
    if (typeof r !== 'string') return { form: 'blocked', cost: r.computed, warnings: r.warnings ?? [] };
    warnings.push(`blocked form not possible (${r}); used the mask form`);
  }
  applyMask(ctx, raw, ops, shapes, (pos) => staticVisibility(ops, heads, info.causal, origHeads, pos), c.kind === 'strided');
  return { form: 'mask', cost: dense, warnings };
}

/**
 * The chain once per group, each on its heads' slice; the first group keeps the site's nodes. Returns each group's
 * site view and output [B, Hg, Sq, Dv]; the site's old ·V output now reads the groups' outputs in head order.
 */
function splitChain(
  ctx: RuleContext, ops: SiteOps, shapes: ShapeInfo, raw: RawSite, chain: ScoreChain, groups: HeadGroup[], total: number,
): { raw: RawSite; out: Value }[] | string {
  const b = ctx.builder;
  const masks = chain.pre.flatMap((s) => s.maskIndexes.map((i) => s.node.input(i)!));
  const headAxis = new Map<Value, number | null>();
  for (const m of masks) {
    const a = maskHeadAxis(shapes, m, total);
    if (a === undefined) return `the head axis of mask '${m.name}' cannot be told from its shape`;
    headAxis.set(m, a);
  }
  const nodes = chainNodes(chain);
  const q = chain.qk.input(0)!;
  const kt = chain.qk.input(1)!;
  const v = chain.pv.input(1)!;
  const oldOut = chain.pv.outputs[0];
  // The inputs as they are now: the first group edits the site's nodes, the copies must read the originals.
  const inputsOf = new Map(nodes.map((n) => [n, [...n.inputs]]));
  const parts: { raw: RawSite; out: Value }[] = [];
  const handles: Node[] = [];
  groups.forEach((g, i) => {
    const tag = `g${i}`;
    const index = ops.i64(g.heads, `${tag}_heads`);
    const slice = (x: Value, axis: number, what: string) => ops.op('Gather', [x, index], `${tag}_${what}`, { axis: attr.int(axis) });
    const mapped = new Map<Value, Value>([[q, slice(q, 1, 'q')], [kt, slice(kt, 1, 'kt')], [v, slice(v, 1, 'v')]]);
    for (const [m, axis] of headAxis) if (axis !== null) mapped.set(m, slice(m, axis, 'mask'));
    let view: RawSite;
    let out: Value;
    if (i === 0) {
      // The site's own nodes serve the first group: only their head-carrying inputs change.
      for (const n of nodes) n.inputs.forEach((x, k) => x && mapped.has(x) && b.setInput(n, k, mapped.get(x)!));
      view = raw;
      out = oldOut;
    } else {
      const copies = copyNodes(ctx, ops, nodes, inputsOf, mapped, tag);
      const sm = copies.get(chain.softmax)!;
      view = { ...raw, anchor: sm, anchors: { ...raw.anchors, softmax: sm.name, qk: copies.get(chain.qk)!.name, pv: copies.get(chain.pv)!.name } };
      out = copies.get(chain.pv)!.outputs[0];
    }
    // A handle on the group's output that follows it when the group's rewrite replaces its ·V.
    const handle = b.node('Identity', [out], { name: ops.name(`${tag}_out`) });
    handles.push(handle);
    parts.push({ raw: view, out });
  });
  const order = groups.flatMap((g) => g.heads);
  let merged = ops.concat(handles.map((h) => h.outputs[0]), 1, 'heads_concat');
  if (!order.every((h, n) => h === n)) {
    const back = Array.from({ length: total }, (_, h) => order.indexOf(h));
    merged = ops.op('Gather', [merged, ops.i64(back, 'head_order')], 'heads', { axis: attr.int(1) });
  }
  b.replaceAllUses(oldOut, merged, { except: [handles[0]], graphOutputs: true });
  return parts;
}

/** Copies of `nodes` (producers first) reading `mapped` values where given, the originals' inputs elsewhere. */
function copyNodes(
  ctx: RuleContext, ops: SiteOps, nodes: Node[], inputsOf: Map<Node, (Value | null)[]>, mapped: Map<Value, Value>, tag: string,
): Map<Node, Node> {
  const copies = new Map<Node, Node>();
  for (const n of nodes) {
    const inputs = inputsOf.get(n)!.map((x) => (x ? mapped.get(x) ?? x : null));
    const copy = ctx.builder.node(n.opType, inputs, { name: ops.name(`${tag}/${n.opType.toLowerCase()}`), domain: n.domain, outputs: n.outputs.length });
    // Attribute records are never edited in place (setAttribute replaces them), so the copy may share them.
    for (const [k, a] of n.attributes) copy.attributes.set(k, a);
    n.outputs.forEach((o, k) => mapped.set(o, copy.outputs[k]));
    copies.set(n, copy);
  }
  return copies;
}

/** Q·Kᵀ, the steps before and after the Softmax, the Softmax and ·V, producers before users. */
function chainNodes(chain: ScoreChain): Node[] {
  const set = new Set<Node>([chain.qk, ...chain.pre.map((s) => s.node), chain.softmax, chain.pv]);
  // The steps after the Softmax: what its probabilities flow through on the way to ·V (readScoreChain checked that
  // nothing outside the site reads them, and that every other input of these steps is a scalar).
  const stack: Value[] = [...chain.softmax.outputs];
  while (stack.length) {
    for (const u of stack.pop()!.uses) {
      if (set.has(u.node)) continue;
      set.add(u.node);
      stack.push(...u.node.outputs);
    }
  }
  return topological([...set]);
}

/** Nodes in an order where each comes after the producers of its inputs among them. */
function topological(nodes: Node[]): Node[] {
  const inSet = new Set(nodes);
  const done = new Set<Node>();
  const out: Node[] = [];
  const visit = (n: Node) => {
    if (done.has(n)) return;
    done.add(n);
    for (const x of n.inputs) if (x?.producer && inSet.has(x.producer)) visit(x.producer);
    out.push(n);
  };
  nodes.forEach(visit);
  return out;
}

/**
 * Which axis of a mask runs over the heads (null: it broadcasts over them), aligned to scores [B, H, Sq, Sk];
 * undefined when its shape is not known well enough to say.
 */
function maskHeadAxis(shapes: ShapeInfo, m: Value, heads: number): number | null | undefined {
  const s = shapes.shape(m);
  if (!s) return undefined;
  if (s.length < 3) return null;
  const axis = s.length - 3;
  const d = s[axis];
  if (d === 1) return null;
  return d === heads ? axis : undefined;
}
