// `expand`: rewrites fused attention sites into standard ONNX ops (expand-fused.ts), so that every rule that edits a
// written-out site applies to them, and so a user can inspect or edit the attention the operator hid.
import { ShapeInfo } from '../../analysis/ir/shapes';
import type { SiteInfo } from '../../analysis/report/types';
import { RuleError, siteById, type Rule, type RuleResult, type SiteChange } from '../rule';
import { SITE_OPS_OPSET } from '../sparse/ops';
import { ROTARY_INSIDE } from '../../analysis/attention/fused';
import { ExpandError, expandFused } from './expand-fused';

export type ExpandParams = Record<string, never>;

/** Why a fused site cannot be expanded, from its report entry (the operator's inputs are checked again on apply). */
export function expandSkipReason(site: SiteInfo): string | null {
  if (!site.anchors.fused) return 'the site is already written out in standard ops';
  if (site.kvCache.reads || site.kvCache.writes) return `${site.form}: it uses a KV cache, which the expansion does not reproduce`;
  // Only a rotation inside the operator: one applied before it (an exported rotate_half, `fuse`'s RotaryEmbedding)
  // leaves the operator's Q and K rotated already, as the expansion needs them.
  if (site.notes.includes(ROTARY_INSIDE)) return `${site.form}: its rotary embedding is applied inside the operator`;
  if (site.softcap) return `${site.form}: it soft-caps the scores`;
  return null;
}

export const expandRule: Rule<ExpandParams> = {
  name: 'expand',
  family: 'structure',
  summary: 'fused attention operators written out as standard ops (Q·Kᵀ, scale, masks, Softmax, P·V)',
  // Written with SiteOps (opset-13 forms).
  minOpset: SITE_OPS_OPSET,
  validate() {},
  skipReason: (site) => expandSkipReason(site),
  apply(ctx, siteIds): RuleResult {
    const shapes = new ShapeInfo(ctx.builder.graph);
    const changes: SiteChange[] = [];
    for (const id of siteIds) {
      const { info, raw } = siteById(ctx, id);
      const before = new Set(ctx.builder.graph.nodes);
      try {
        expandFused(ctx.builder, shapes, raw.anchor);
      } catch (e) {
        if (e instanceof ExpandError) throw new RuleError('expand', `site ${id} (${info.form}): ${e.message}`);
        throw e;
      }
      const now = new Set(ctx.builder.graph.nodes);
      changes.push({
        site: id, before: { form: info.form }, after: { form: 'unfused' },
        // Same attention, same cost: the expansion changes how it is written, not what it computes.
        flopsBefore: info.flops, flopsAfter: info.flops, bytesBefore: info.attnMatrixBytes, bytesAfter: info.attnMatrixBytes,
        nodesAdded: [...now].filter((n) => !before.has(n)).length, nodesRemoved: [...before].filter((n) => !now.has(n)).length,
      });
    }
    return { changes, warnings: [] };
  },
};
