// Reading back a site that the `plan` rule rewrote (rewriters/plan/), so that a planned model is analysed as the same
// sites with the same heads, plus the plan. Two things are relied on, both written by the rule:
//
// 1. The structure of the compute-reducing form (rewriters/plan/split.ts): the heads are split into groups, group i
//    reads its heads' slice of the site's Q, Kᵀ and V through Gathers named `<anchor>::plan/g<i>_q`, `_kt` and `_v`
//    (axis 1, constant indices), group 0 keeps the anchor Softmax and the other groups' copies are named
//    `<anchor>::plan/g<i>/…` (detect.ts already counts them as the anchor's own nodes), and the groups' outputs are
//    merged in head order by `<anchor>::plan/heads_concat` (a Concat along the heads) and, where the groups are not in
//    head order, `<anchor>::plan/heads` (a Gather). The site is then matched from the slices' sources (the whole Q, Kᵀ
//    and V) to the merged output, exactly as the site was before the split, and its heads are those of the sources.
// 2. The choices, which no structure spells out: the rule records them on the site's anchor node (its Softmax or fused
//    operator, whose name every rewrite keeps) as the NodeProto metadata entry `attention_lens.plan`, JSON
//    `{"version": 1, "heads": [choice per head of the site as planned]}` in the plan file's notation. The record is
//    checked against the graph (as many kept heads as the site has, one choice per group) and dropped with a note
//    when it does not match.
import type { Graph, Node, Value } from '../ir/graph';
import type { SitePlan } from '../report/types';
import { attrInt, type Ctx } from './match';

/** The metadata key of the plan record on a site's anchor node. */
export const PLAN_MARKER = 'attention_lens.plan';

/** A site split into head groups, as the plan's compute-reducing form leaves it. */
export interface PlanSplit {
  /** The site's Q, Kᵀ and V before the head slices ([B, H, S, D], [B, H, D, S], [B, H, S, Dv]). */
  q: Value;
  kt: Value;
  v: Value;
  /** The groups' outputs merged in head order: [B, H, Sq, Dv], what the site's ·V gave before the split. */
  out: Value;
  heads: number;
  /** The positions of each group's heads; group 0 is the anchor's. */
  groups: number[][];
}

/** Nodes the plan rule names after a site's anchor, by name (built once per graph: lookups by name are linear). */
export function planNodes(graph: Graph): Map<string, Node> {
  return new Map(graph.nodes.filter((n) => n.name.includes('::plan/')).map((n) => [n.name, n]));
}

/** The split around Softmax `sm`, or undefined when it has none (or its structure is not the rule's). */
export function planSplit(ctx: Ctx, nodes: Map<string, Node>, sm: Node): PlanSplit | undefined {
  const prefix = `${sm.name}::plan/`;
  const groups: number[][] = [];
  let sources: Value[] | undefined;
  for (let i = 0; ; i++) {
    const parts = ['q', 'kt', 'v'].map((x) => headSlice(ctx, nodes.get(`${prefix}g${i}_${x}`)));
    if (parts.every((p) => p === undefined)) break;
    if (parts.some((p) => p === undefined)) return undefined;
    const [q, kt, v] = parts as { source: Value; heads: number[] }[];
    if (!same(q.heads, kt.heads) || !same(q.heads, v.heads)) return undefined;
    const src = [q.source, kt.source, v.source];
    if (sources && src.some((x, k) => x !== sources![k])) return undefined;
    sources = src;
    groups.push(q.heads);
  }
  if (!sources || groups.length < 2) return undefined;
  const all = groups.flat().sort((a, b) => a - b);
  if (!all.every((h, n) => h === n)) return undefined;
  const merge = nodes.get(`${prefix}heads`) ?? nodes.get(`${prefix}heads_concat`);
  if (!merge) return undefined;
  return { q: sources[0], kt: sources[1], v: sources[2], out: merge.outputs[0], heads: all.length, groups };
}

/** A Gather of constant head indices along axis 1. */
function headSlice(ctx: Ctx, n: Node | undefined): { source: Value; heads: number[] } | undefined {
  if (!n || n.opType !== 'Gather' || n.domain !== '' || (attrInt(n, 'axis') ?? 0) !== 1) return undefined;
  const source = n.input(0);
  const index = ctx.shapes.values(n.input(1));
  if (!source || !index || !index.every((x): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0)) return undefined;
  return { source, heads: index };
}

function same(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The choices recorded on an anchor node, or why they cannot be read (undefined: nothing recorded). */
export function planRecord(anchor: Node): string[] | string | undefined {
  const props = anchor.proto.metadataProps as { key?: string | null; value?: string | null }[] | null | undefined;
  const entry = props?.find((p) => p.key === PLAN_MARKER);
  if (!entry) return undefined;
  try {
    const r = JSON.parse(entry.value ?? '') as { version?: unknown; heads?: unknown };
    if (r.version === 1 && Array.isArray(r.heads) && r.heads.length > 0 && r.heads.every((h) => typeof h === 'string')) return r.heads as string[];
  } catch {
    // reported below
  }
  return `the plan recorded on node '${anchor.name}' (${PLAN_MARKER}) is not one this version reads`;
}

/**
 * The site's plan from its record and split, with notes where they disagree; undefined when the site has neither.
 * `heads`: the site's query heads as matched.
 */
export function sitePlan(anchor: Node, split: PlanSplit | undefined, heads: number | null): { plan?: SitePlan; notes: string[] } {
  const record = planRecord(anchor);
  if (record === undefined && !split) return { notes: [] };
  const notes: string[] = [];
  let choices = typeof record === 'string' ? null : record ?? null;
  if (typeof record === 'string') notes.push(record);
  const kept = choices?.filter((c) => c !== 'pruned');
  if (choices && kept && heads !== null && kept.length !== heads) {
    notes.push(`the plan recorded on the site gives ${kept.length} kept heads where the site has ${heads}; choices not reported`);
    choices = null;
  }
  const groups = split?.groups.map((g) => {
    const names = new Set(g.map((h) => (choices ? kept![h] : null)));
    return { heads: g, choice: names.size === 1 ? [...names][0] : null };
  });
  if (choices && groups?.some((g) => g.choice === null)) {
    notes.push('the plan recorded on the site does not match its head groups; choices not reported');
    choices = null;
    for (const g of groups) g.choice = null;
  }
  if (split && record === undefined) notes.push('split into head groups by a per-head plan that records no choices');
  return { plan: { choices, ...(groups ? { groups } : {}) }, notes };
}
