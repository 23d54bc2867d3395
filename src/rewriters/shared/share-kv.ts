// `share-kv i->j` (methods.md; cross-layer KV sharing as in CLA and KVSharer): site j uses site i's keys and values,
// after any rotary embedding, and j's own K/V projections are removed.
//
// Unfused sites: j's Q·Kᵀ and P·V MatMuls read the K and V that enter i's (rotary, cache concatenation, grouped-query
// repeat and any K scaling already applied); a KV-cache site's present outputs become copies of i's, so a generation
// loop feeds j the cache i writes. Fused MultiHeadAttention, GroupQueryAttention and ONNX Attention take i's K and V
// inputs (the operator applies its own rotary the same way to both). Packed Attention computes K and V inside the
// operator and is refused.
import type { Node, Value } from '../../analysis/ir/graph';
import type { RawSite } from '../../analysis/attention/site';
import type { SiteInfo } from '../../analysis/report/types';
import { RuleError, siteById, type Rule, type RuleResult, type RuleContext } from '../rule';
import { keepPackedParts, PackedError } from '../prune/edit/packed';
import { cost, projectionParams, siteChange, trackNodes } from '../prune/edit/report';
import { siteStructure, StructureError, type SiteStructure } from '../prune/edit/structure';
import { setInput } from '../prune/edit/weights';
import { checkPairs, sameHeads, sourceOf, type PairParams } from './pairs';

const NAME = 'share-kv';

export const shareKv: Rule<PairParams> = {
  name: NAME,
  family: 'shared',
  editsProjections: true,
  summary: "site j uses site i's keys and values; j's K/V projections are removed",
  validate(params, report) {
    checkPairs(NAME, params, report, compatible);
  },
  skipReason(site, params) {
    return sourceOf(params, site.id) === undefined ? 'not the target of any pair' : null;
  },
  apply(ctx, siteIds, params): RuleResult {
    const changes = [];
    const warnings: string[] = [];
    // Where each rewritten site now takes K and V from, so that a chain i->j, j->m gives m the tensors i computes.
    const taken = new Map<number, { k: Value; v: Value; present: Map<'k' | 'v', Value> }>();
    for (const j of [...siteIds].sort((a, b) => a - b)) {
      const i = sourceOf(params, j)!;
      const src = siteById(ctx, i);
      const dst = siteById(ctx, j);
      const nodes = trackNodes(ctx.builder);
      try {
        const sj = siteStructure(ctx.builder.graph, dst.raw, dst.info, { exclusive: ['k', 'v', 'packed', 'krep', 'vrep'] });
        const before = { heads: sj.heads, kvHeads: sj.kvHeads, params: projectionParams(sj, sj.heads, sj.kvHeads), kvFrom: j };
        // A source rewritten by an earlier pair has no K/V projections left to inspect; what it reads is recorded.
        let from = taken.get(i);
        if (!from) {
          const si = siteStructure(ctx.builder.graph, src.raw, src.info);
          if (src.info.kind === 'cross' && si.proj.k!.activation !== sj.proj.k!.activation) {
            throw new RuleError(NAME, `${i}:${j}: the two cross-attention sites attend to different sources`);
          }
          from = { k: kvValue(si, 'k'), v: kvValue(si, 'v'), present: presents(ctx, src.raw, src.info) };
        }
        if (sj.form === 'unfused') {
          setInput(coreNode(sj, 'k'), 1, from.k);
          setInput(coreNode(sj, 'v'), 1, from.v);
          shareCache(ctx, dst.raw, dst.info, from.present, j, i);
          if (sj.packed) keepPackedParts(ctx.builder, sj, 'q', NAME);
        } else {
          if (sj.form === 'ms-attention') throw new RuleError(NAME, `site ${j}: packed Attention computes K and V inside the operator; they cannot come from another site`);
          setInput(sj.anchor, 1, from.k);
          setInput(sj.anchor, 2, from.v);
          if (sj.packed) keepPackedParts(ctx.builder, sj, 'q', NAME);
        }
        ctx.builder.removeUnused();
        taken.set(j, from);
        const c = cost(sj.heads, sj.headDim, sj.vHeadDim, ctx.seqLen);
        // j keeps its Q and O projections; K and V weights are gone.
        const after = { heads: sj.heads, kvHeads: sj.kvHeads, params: projectionParams(sj, sj.heads, 0), kvFrom: i };
        changes.push(siteChange(j, before, after, c, c, nodes()));
      } catch (e) {
        if (e instanceof StructureError || e instanceof PackedError) throw new RuleError(NAME, `${i}:${j}: ${e.message}`);
        throw e;
      }
    }
    return { changes, warnings };
  },
};

function compatible(i: SiteInfo, j: SiteInfo): string | null {
  if (i.form !== j.form) return `the sites are written differently (${i.form} and ${j.form}); their K/V tensors do not match`;
  if (i.form === 'com.microsoft.Attention') return 'packed Attention computes K and V inside the operator';
  const heads = sameHeads(i, j, 'kv');
  if (heads) return `incompatible heads: ${heads}`;
  if (i.position !== j.position) return `position schemes differ (${i.position} and ${j.position})`;
  if (i.scale !== null && j.scale !== null && Math.abs(i.scale - j.scale) > 1e-6 * Math.abs(i.scale)) return `softmax scales differ (${i.scale} and ${j.scale})`;
  if (i.kvCache.writes !== j.kvCache.writes) return 'only one of the sites writes a KV cache';
  return null;
}

/** The node where K (Q·Kᵀ) or V (P·V) enters the core of an unfused site. */
function coreNode(s: SiteStructure, role: 'k' | 'v'): Node {
  const name = role === 'k' ? s.raw.anchors.qk : s.raw.anchors.pv;
  const n = [...s.region].find((x) => x.name === name);
  if (!n) throw new StructureError(`the ${role === 'k' ? 'Q·Kᵀ' : 'P·V'} MatMul was not found`);
  return n;
}

/** K or V as it enters the core (unfused) or the fused operator. */
function kvValue(s: SiteStructure, role: 'k' | 'v'): Value {
  const v = s.form === 'unfused' ? coreNode(s, role).input(1) : s.anchor.input(role === 'k' ? 1 : 2);
  if (!v) throw new StructureError(`site ${s.info.id} has no ${role.toUpperCase()} input`);
  return v;
}

/**
 * The site's present-key and present-value outputs, told apart by whether K or V is computed from them (or, for a
 * cache output written on a side branch, from the value it copies).
 */
function presents(ctx: RuleContext, raw: RawSite, info: SiteInfo): Map<'k' | 'v', Value> {
  const out = new Map<'k' | 'v', Value>();
  const ks = raw.io.k ? upstream(raw.io.k) : new Set<Value>();
  const vs = raw.io.v ? upstream(raw.io.v) : new Set<Value>();
  for (const name of info.kvCache.presentOutputs) {
    let v = ctx.builder.graph.values.get(name);
    for (let step = 0; v && step < 6; step++) {
      if (ks.has(v) && !vs.has(v)) out.set('k', ctx.builder.graph.values.get(name)!);
      else if (vs.has(v) && !ks.has(v)) out.set('v', ctx.builder.graph.values.get(name)!);
      else if (v.producer && ['Identity', 'Transpose', 'Cast', 'Reshape'].includes(v.producer.opType)) {
        v = v.producer.input(0) ?? undefined;
        continue;
      }
      break;
    }
  }
  return out;
}

function upstream(start: Value): Set<Value> {
  const seen = new Set<Value>();
  const stack = [start];
  while (stack.length && seen.size < 256) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (v.producer) for (const i of v.producer.inputs) if (i && !i.constant) stack.push(i);
  }
  return seen;
}

/** j's cache outputs become copies of i's, so j's K/V projections are no longer needed for them either. */
function shareCache(ctx: RuleContext, raw: RawSite, info: SiteInfo, from: Map<'k' | 'v', Value>, j: number, i: number): void {
  if (info.kvCache.presentOutputs.length === 0) return;
  const mine = presents(ctx, raw, info);
  for (const role of ['k', 'v'] as const) {
    const own = mine.get(role);
    const theirs = from.get(role);
    if (!own) continue;
    if (!theirs) throw new RuleError(NAME, `${i}:${j}: site ${j} writes a ${role === 'k' ? 'key' : 'value'} cache and site ${i} does not`);
    const copy = ctx.builder.op('Identity', [theirs], { name: `${raw.anchor.name}::${NAME}/present_${role}` });
    ctx.builder.replaceAllUses(own, copy, { graphOutputs: true });
  }
}
