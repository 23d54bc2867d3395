// For rules that edit written-out sites only (the score chain, Q and K as they enter Q·Kᵀ): the requested fused sites
// are expanded first, then the graph is analysed again so the rule sees them as unfused sites under their input ids.
import { analyzeWithSites } from '../../analysis/analyze';
import { ShapeInfo } from '../../analysis/ir/shapes';
import { RuleError, siteById, type RuleContext } from '../rule';
import { ExpandError, expandFused } from './expand-fused';

const anchorOf = (s: { anchors: { softmax?: string; fused?: string } }) => s.anchors.softmax ?? s.anchors.fused ?? '';

/** `ctx` with the fused sites among `siteIds` written out (the same ctx when there are none). */
export function expandRequested(ctx: RuleContext, siteIds: number[], rule: string): RuleContext {
  const fused = siteIds.filter((id) => siteById(ctx, id).info.anchors.fused);
  if (fused.length === 0) return ctx;
  const shapes = new ShapeInfo(ctx.builder.graph);
  for (const id of fused) {
    const { info, raw } = siteById(ctx, id);
    try {
      expandFused(ctx.builder, shapes, raw.anchor);
    } catch (e) {
      if (e instanceof ExpandError) throw new RuleError(rule, `site ${id} (${info.form}) could not be expanded into standard ops: ${e.message}`);
      throw e;
    }
  }
  ctx.builder.sort();
  // The expanded Softmax carries the fused node's name, so every site keeps its id through its anchor's name.
  const next = reanalysed(ctx);
  for (const id of fused) {
    const s = next.report.sites.find((x) => x.id === id);
    if (!s || s.anchors.fused) throw new RuleError(rule, `site ${id}: the expanded operator is not read back as a written-out site`);
  }
  return next;
}

/**
 * `ctx` with the working graph analysed again (after a rule edited it), each site under its input id through its
 * anchor's name, which rewrites keep. A site whose anchor is gone (a removed sub-layer) is no longer listed.
 */
export function reanalysed(ctx: RuleContext): RuleContext {
  const idOf = new Map(ctx.report.sites.map((s) => [anchorOf(s), s.id]));
  const { report, sites } = analyzeWithSites(ctx.builder.model, { seqLen: ctx.seqLen });
  const mapped = report.sites.map((s) => ({ ...s, id: idOf.get(anchorOf(s)) ?? s.id }));
  return { ...ctx, report: { ...report, sites: mapped }, sites };
}
