// Mutations inside bodies: a copy of a stretch of the main graph (near attention, most often) becomes the then-branch
// of an If or the body of a model-local function that a new node calls, and another structure mutation is then
// applied inside that body. Loading must check bodies as it checks the main graph; these make sure it is tried.
import { AttrType, nodes, pickNode, type AttrP, type GraphP, type Mutation, type MutationContext, type NodeP } from './proto';

/** A renamed copy of up to 12 consecutive nodes: the names it reads from outside, and its last output. */
function copyStretch(ctx: MutationContext, prefix: string): { body: NodeP[]; reads: string[]; out: string } | null {
  const all = nodes(ctx.graph);
  const around = pickNode(ctx.rng, ctx.graph, (n) => !!n.output?.some(Boolean));
  if (!around) return null;
  const len = 1 + ctx.rng.int(Math.min(12, all.length));
  const start = Math.max(0, Math.min(all.indexOf(around) - ctx.rng.int(len), all.length - len));
  const rename = new Map<string, string>();
  const body = all.slice(start, start + len).map((n): NodeP => {
    const copy: NodeP = { ...n, input: [...(n.input ?? [])], output: (n.output ?? []).map((o) => (o ? `${prefix}${o}` : o)), attribute: n.attribute?.map(cloneAttr) };
    (n.output ?? []).forEach((o) => o && rename.set(o, `${prefix}${o}`));
    if (n.name) copy.name = `${prefix}${n.name}`;
    return copy;
  });
  const reads = new Set<string>();
  for (const n of body) {
    n.input = n.input!.map((x) => rename.get(x) ?? x);
    for (const x of n.input) if (x && !x.startsWith(prefix)) reads.add(x);
  }
  const out = body[body.length - 1].output?.find(Boolean);
  return out ? { body, reads: [...reads], out } : null;
}

function cloneAttr(a: AttrP): AttrP {
  return { ...a, ...(a.ints ? { ints: [...a.ints] } : {}), ...(a.floats ? { floats: [...a.floats] } : {}) };
}

/** Applies one of `inner` to `graph` (a body), drawing again a few times when one does not apply. */
function mutateInside(ctx: MutationContext, graph: GraphP, inner: readonly (readonly [Mutation, number])[]): string {
  for (let tries = 0; tries < 8; tries++) {
    const what = ctx.rng.weighted(inner)({ ...ctx, graph });
    if (what !== null) return what;
  }
  return 'nothing';
}

export function bodyMutations(inner: readonly (readonly [Mutation, number])[]): (readonly [string, Mutation, number])[] {
  return [
    ['mutate-in-branch', (ctx) => {
      const prefix = `fuzz_b${ctx.rng.int(1_000_000)}_`;
      const s = copyStretch(ctx, prefix);
      if (!s) return null;
      const then: GraphP = { name: `${prefix}then`, node: s.body, output: [{ name: s.out }] };
      const outer = s.reads[0] ?? s.out;
      const otherwise: GraphP = { name: `${prefix}else`, node: [{ name: `${prefix}else_id`, opType: 'Identity', input: [outer], output: [`${prefix}else_out`] }], output: [{ name: `${prefix}else_out` }] };
      const ifNode: NodeP = {
        name: `${prefix}if`, opType: 'If', input: [ctx.rng.pick(s.reads.length ? s.reads : [outer])], output: [`${prefix}if_out`],
        attribute: [{ name: 'then_branch', type: AttrType.GRAPH, g: then }, { name: 'else_branch', type: AttrType.GRAPH, g: otherwise }],
      };
      nodes(ctx.graph).push(ifNode);
      if (ctx.rng.chance(0.5)) (ctx.graph.output ??= []).push({ name: `${prefix}if_out` });
      return `${s.body.length} nodes copied into an If branch, then inside it: ${mutateInside(ctx, then, inner)}`;
    }, 4],
    ['mutate-in-function', (ctx) => {
      const prefix = `fuzz_f${ctx.rng.int(1_000_000)}_`;
      const s = copyStretch(ctx, prefix);
      if (!s) return null;
      const domain = 'fuzz.body';
      const name = `${prefix}F`;
      const body: GraphP = { name, node: s.body };
      const what = mutateInside(ctx, body, inner);
      (ctx.model.functions ??= []).push({ name, domain, input: s.reads, output: [s.out], node: body.node ?? [], opsetImport: [...(ctx.model.opsetImport ?? [])] });
      if (!(ctx.model.opsetImport ?? []).some((o) => o.domain === domain)) (ctx.model.opsetImport ??= []).push({ domain, version: 1 });
      nodes(ctx.graph).push({ name: `${prefix}call`, opType: name, domain, input: s.reads, output: [`${prefix}call_out`] });
      return `${s.body.length} nodes copied into model-local function '${name}', then inside it: ${what}`;
    }, 4],
  ];
}
