// `neighborhood2d r`: in a vision transformer, each patch token sees the patches within a (2r+1)×(2r+1) square around
// its own on the patch grid; prefix tokens (class, registers) see and are seen by all. A mask, or blocked by grid rows
// (neighborhood-blocked.ts).
import type { Value } from '../../analysis/ir/graph';
import { RuleError, type Rule } from '../rule';
import { round } from './cost';
import { findGrid } from './grid';
import { applyMask } from './mask-form';
import { SITE_OPS_OPSET } from './ops';
import { applyBlockedNeighborhood } from './neighborhood-blocked';
import { formReason, implOf, nonNegativeInt, oneOf, type Neighborhood2dParams } from './params';
import { buildVisible, describe, keysPerQuery, type Pattern } from './pattern';
import { rewriteSites } from './site-loop';

export const neighborhood2dRule: Rule<Neighborhood2dParams> = {
  name: 'neighborhood2d',
  family: 'sparse',
  summary: 'vision: patches see a (2r+1)×(2r+1) square of patches; class/register tokens see and are seen by all',
  minOpset: SITE_OPS_OPSET,
  validate(p) {
    nonNegativeInt('neighborhood2d', 'radius', p.radius);
    implOf('neighborhood2d', p.impl, 'blocked');
  },
  skipReason(site, _p, report) {
    if (site.kind === 'cross') return 'cross-attention: its keys are not patches of the same image';
    if (site.causal) return 'a causal site is a text (or generation) site, not one over image patches';
    if (!report.model.inputs.some((i) => i.role === 'pixel_values')) return 'the model has no image input, so its tokens are not on a patch grid';
    return formReason(site);
  },
  apply(ctx, siteIds, p) {
    return rewriteSites(ctx, 'neighborhood2d', siteIds, ({ info, raw, ops, shapes }) => {
      const probe: Value | null | undefined = raw.anchors.fused ? raw.io.q : raw.anchor.input(0);
      const dims = shapes.shape(probe);
      const tokens = raw.anchors.fused ? (dims?.length === 4 ? dims[2] : dims?.[1]) : dims?.[dims.length - 1];
      if (typeof tokens !== 'number') {
        throw new RuleError('neighborhood2d', `site ${info.id}: the token count is not fixed in the graph, so the patch grid cannot be placed (export with a fixed image size)`);
      }
      const grid = findGrid(ctx.builder.graph, shapes, tokens);
      if (typeof grid === 'string') throw new RuleError('neighborhood2d', `site ${info.id}: ${grid}`);
      const pattern: Pattern = { kind: 'neighborhood2d', radius: p.radius, prefix: grid.prefix, gridH: grid.gridH, gridW: grid.gridW };
      const warnings: string[] = [];
      const describeGrid = { ...describe(pattern), gridFrom: grid.source, keysPerQuery: round(keysPerQuery(pattern, tokens)) };
      if (p.impl === 'blocked') {
        const r = applyBlockedNeighborhood(ctx, raw, info, ops, shapes, pattern);
        if (typeof r !== 'string') {
          // Patch rows compute r.keys keys, prefix rows all of them: the mean per row.
          const keys = round((grid.gridH * grid.gridW * r.keys + grid.prefix * tokens) / tokens);
          return { after: { ...describeGrid, impl: 'blocked', blockRows: grid.gridW }, computed: { rows: tokens, keys } };
        }
        warnings.push(`site ${info.id}: blocked form not possible (${r}); used the mask form`);
      }
      applyMask(ctx, raw, ops, shapes, (pos) => buildVisible(ops, pattern, pos), false);
      return {
        warnings,
        after: { ...describe(pattern), gridFrom: grid.source, impl: 'mask', keysPerQuery: round(keysPerQuery(pattern, tokens)), note: 'mask form: the dense scores are still computed' },
        computed: { rows: ctx.seqLen, keys: ctx.seqLen },
      };
    });
  },
};
