// The compute-reducing form of `sink`, `strided` and `power` on one written-out site (or on one head group of a plan's
// split site, plan/split.ts): the blocked window plus the pattern's extra key columns (blocked-extras.ts,
// pattern-extras.ts). One builder for both, so the uniform rules and the plans compute exactly the same thing.
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { RawSite } from '../../analysis/attention/site';
import type { SiteInfo } from '../../analysis/report/types';
import type { RuleContext } from '../rule';
import { applyBlockedPattern } from './blocked-extras';
import { defaultBlockRows, type WindowBlocks } from './blocked-window';
import { round } from './cost';
import type { SiteOps } from './ops';
import { extraColumns, powerExtras, sinkExtras, stridedExtras, stridedReason } from './pattern-extras';
import { describe, keysPerQuery, type Pattern } from './pattern';
import type { SiteOutcome } from './site-loop';

export type CausalPattern = Extract<Pattern, { kind: 'sink' | 'strided' | 'power' }>;

export interface BlockedPatternOptions {
  window: number;
  rows?: number;
  modelMask?: 'auto' | 'rows';
  /**
   * Strided only: the head index each head of the site as it is now has in the pattern (whose shard it reads,
   * j ≡ index mod k). Default 0 … H − 1; a plan's head group passes its heads' indices in the original site.
   */
  shardHeads?: readonly number[];
}

/** Rewrites the site in place, or returns why it cannot (the caller then uses the mask form). */
export function blockedPattern(
  ctx: RuleContext, raw: RawSite, info: SiteInfo, ops: SiteOps, shapes: ShapeInfo, pat: CausalPattern, p: BlockedPatternOptions,
): SiteOutcome | string {
  if (raw.anchors.fused) return `${info.form} computes its scores inside the operator`;
  const shardHeads = p.shardHeads ?? (pat.kind === 'strided' ? Array.from({ length: pat.heads }, (_, h) => h) : []);
  if (pat.kind === 'strided') {
    const kt = raw.anchors.qk ? ctx.builder.graph.nodeByName(raw.anchors.qk)?.input(1) : null;
    const why = stridedReason(shapes.shape(kt ?? null)?.[1], shardHeads.length);
    if (why) return why;
  }
  const rows = p.rows ?? defaultBlockRows(p.window);
  const extras = (w: WindowBlocks) => {
    if (pat.kind === 'sink') return sinkExtras(ops, w, pat);
    if (pat.kind === 'strided') return stridedExtras(ops, w, pat, shardHeads);
    return powerExtras(ops, w, pat);
  };
  const opts = { window: p.window, rows, modelMask: p.modelMask ?? 'auto', extraColumns: extraColumns(pat, ctx.seqLen, rows) } as const;
  const r = applyBlockedPattern(ctx, raw, info, ops, shapes, opts, extras);
  if (typeof r === 'string') return r;
  const blocks = Math.ceil(ctx.seqLen / r.rows);
  return {
    after: { ...describe(pat), impl: 'blocked', blockRows: r.rows, keysPerQuery: round(keysPerQuery(pat, ctx.seqLen)) },
    computed: { rows: blocks * r.rows, keys: r.keys },
    warnings: r.warnings,
  };
}
