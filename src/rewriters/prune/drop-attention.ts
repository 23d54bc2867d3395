// `drop-attention SITE[,SITE]`: the whole attention sub-layer is removed (methods.md); the residual stream passes
// through unchanged. The residual join takes only its skip input, and every node that only fed the attention output
// (projections, scores, softmax, output projection and its bias) is removed as dead.
import { RuleError, siteById, type Rule, type RuleResult } from '../rule';
import { cost, siteChange, trackNodes } from './edit/report';
import { removeSublayer, SublayerError } from './edit/sublayer';
import { requireSite } from './site-params';

export interface DropAttentionParams {
  sites: number[];
}

const NAME = 'drop-attention';

export const dropAttention: Rule<DropAttentionParams> = {
  name: NAME,
  family: 'prune',
  anyLayout: true,
  summary: 'remove whole attention sub-layers; the residual stream passes through',
  validate(params, report) {
    if (!Array.isArray(params?.sites) || params.sites.length === 0) throw new RuleError(NAME, 'name at least one site');
    const seen = new Set<number>();
    for (const id of params.sites) {
      requireSite(NAME, report, id);
      if (seen.has(id)) throw new RuleError(NAME, `site ${id} is listed twice`);
      seen.add(id);
    }
  },
  skipReason(site, params) {
    return params.sites.includes(site.id) ? null : 'not listed in the sites to drop';
  },
  apply(ctx, siteIds): RuleResult {
    const changes = [];
    const warnings: string[] = [];
    for (const id of siteIds) {
      const { info, raw } = siteById(ctx, id);
      const nodes = trackNodes(ctx.builder);
      try {
        warnings.push(...removeSublayer(ctx.builder, raw, {}, NAME).map((w) => `site ${id}: ${w}`));
      } catch (e) {
        if (e instanceof SublayerError) throw new RuleError(NAME, `site ${id}: ${e.message}`);
        throw e;
      }
      const heads = info.heads ?? 0;
      changes.push(
        siteChange(
          id,
          { heads: info.heads, kvHeads: info.kvHeads },
          { heads: 0, kvHeads: 0, dropped: true },
          cost(heads, info.headDim, raw.vHeadDim, ctx.seqLen),
          cost(0, info.headDim, raw.vHeadDim, ctx.seqLen),
          nodes(),
        ),
      );
    }
    return { changes, warnings };
  },
};
