// `window`, `sink`, `strided` and `power`: the static patterns around a sliding window (methods.md, "Sparse attention").
// `window` has two implementations: `mask` (the exact meaning at dense cost) and `blocked` (only the blocks the window
// touches; written-out sites only, fused ones use what the operator offers or fall back to the mask form with a
// warning). `sink`, `strided` and `power` are a mask, or blocked: the blocked window plus their extra keys
// (blocked-pattern.ts).
import type { SiteInfo } from '../../analysis/report/types';
import type { Rule } from '../rule';
import { applyBlockedWindow, blockedKeys, defaultBlockRows } from './blocked-window';
import { blockedPattern, type CausalPattern } from './blocked-pattern';
import { round } from './cost';
import { fusedKey } from '../../analysis/attention/fused';
import { applyGqaWindow, applyMask } from './mask-form';
import { applyFusedBlockedWindow, fusedBlocksReason } from './fused-window';
import { KEY_MASKS } from './blocked-chain';
import { formReason, implOf, oneOf, positiveInt, type PowerParams, type SinkParams, type StridedParams, type WindowParams } from './params';
import { buildVisible, describe, keysPerQuery, perHead, type Pattern } from './pattern';
import { SITE_OPS_OPSET } from './ops';
import { rewriteSites, type SiteOutcome } from './site-loop';

const crossReason = 'cross-attention: its queries and keys are different sequences, so positions cannot be compared';

function maskOutcome(info: SiteInfo, seq: number, p: Pattern, extra: Record<string, unknown> = {}): SiteOutcome {
  return {
    after: { ...describe(p), impl: 'mask', keysPerQuery: round(keysPerQuery(p, seq)), ...extra, note: 'mask form: the dense scores are still computed' },
    computed: { rows: seq, keys: seq },
  };
}

export const windowRule: Rule<WindowParams> = {
  name: 'window',
  family: 'sparse',
  summary: 'sliding window of W keys (causal: i − W < j ≤ i; non-causal: |i − j| < W), as a mask or blocked',
  minOpset: SITE_OPS_OPSET,
  validate(p) {
    positiveInt('window', 'window', p.window);
    implOf('window', p.impl, 'blocked');
    oneOf('window', 'modelMask', p.modelMask, ['auto', 'rows'] as const);
    if (p.rows !== undefined) positiveInt('window', 'rows', p.rows);
  },
  skipReason(site) {
    if (site.kind === 'cross') return crossReason;
    return formReason(site);
  },
  apply(ctx, siteIds, p) {
    return rewriteSites(ctx, 'window', siteIds, ({ info, raw, ops, shapes }) => {
      const pattern: Pattern = { kind: 'window', window: p.window, causal: info.causal };
      const build = (pos: Parameters<typeof buildVisible>[2]) => buildVisible(ops, pattern, pos);
      const warnings: string[] = [];
      if (p.impl === 'blocked') {
        if (raw.anchors.fused) {
          if (fusedKey(raw.anchor) === 'com.microsoft.GroupQueryAttention') {
            // With `rows`: query blocks folded into one MultiHeadAttention (fused-window.ts), which computes only the
            // window's blocks on every provider; without, the operator's own local_window_size (compute-reducing
            // only where the provider's kernel skips the hidden keys, e.g. CUDA's flash kernel, not onnxruntime's CPU).
            const why = p.rows !== undefined ? fusedBlocksReason(raw.anchor, shapes, ops.float) : null;
            if (p.rows !== undefined && why === null) {
              const keysOnly = (p.modelMask ?? 'auto') === 'auto' && KEY_MASKS.has(info.maskType);
              const r = applyFusedBlockedWindow(ctx, raw.anchor, ops, shapes, { window: p.window, rows: p.rows, keysOnly });
              return {
                after: { ...describe(pattern), impl: 'blocked', via: 'MultiHeadAttention per query block', blockRows: r.rows, keysPerQuery: round(keysPerQuery(pattern, ctx.seqLen)) },
                computed: { rows: Math.ceil(ctx.seqLen / r.rows) * r.rows, keys: r.keys },
              };
            }
            if (why) warnings.push(`site ${info.id}: no per-block form (${why}); used GroupQueryAttention's local_window_size`);
            applyGqaWindow(ctx, raw.anchor, p.window);
            return { ...maskOutcome(info, ctx.seqLen, pattern, { impl: 'blocked', via: 'GroupQueryAttention local_window_size' }), warnings };
          }
          warnings.push(`site ${info.id}: ${info.form} has no compute-reducing window here; used the mask form`);
        } else {
          const rows = p.rows ?? defaultBlockRows(p.window);
          const r = applyBlockedWindow(ctx, raw, info, ops, shapes, { window: p.window, causal: info.causal, rows, modelMask: p.modelMask ?? 'auto' });
          if (typeof r !== 'string') {
            const blocks = Math.ceil(ctx.seqLen / r.rows);
            return {
              after: { ...describe(pattern), impl: 'blocked', blockRows: r.rows, keysPerQuery: round(keysPerQuery(pattern, ctx.seqLen)) },
              computed: { rows: blocks * r.rows, keys: blockedKeys(p.window, r.rows, info.causal) },
              warnings: r.warnings,
            };
          }
          warnings.push(`site ${info.id}: blocked form not possible (${r}); used the mask form`);
        }
      }
      applyMask(ctx, raw, ops, shapes, build, false);
      return { ...maskOutcome(info, ctx.seqLen, pattern), warnings };
    });
  },
};

/** sink, strided and power: causal patterns, as a mask or as the blocked window plus the pattern's extra keys. */
function causalPatternRule<P extends { window: number; impl?: 'mask' | 'blocked'; rows?: number; modelMask?: 'auto' | 'rows' }>(
  name: string, summary: string, check: (p: P) => void, pattern: (p: P, info: SiteInfo) => CausalPattern,
): Rule<P> {
  return {
    name,
    family: 'sparse',
    summary,
    minOpset: SITE_OPS_OPSET,
    validate(p) {
      positiveInt(name, 'window', p.window);
      implOf(name, p.impl, 'blocked');
      oneOf(name, 'modelMask', p.modelMask, ['auto', 'rows'] as const);
      if (p.rows !== undefined) positiveInt(name, 'rows', p.rows);
      check(p);
    },
    skipReason(site) {
      if (site.kind === 'cross') return crossReason;
      if (!site.causal) return `${name} is defined for causal sites; this one is bidirectional`;
      if (name === 'strided' && !site.heads) return 'the analysis could not read the number of heads, which the per-head shards need';
      return formReason(site);
    },
    apply(ctx, siteIds, p) {
      return rewriteSites(ctx, name, siteIds, ({ info, raw, ops, shapes }) => {
        const pat = pattern(p, info);
        const warnings: string[] = [];
        if (p.impl === 'blocked') {
          const r = blockedPattern(ctx, raw, info, ops, shapes, pat, p);
          if (typeof r !== 'string') return r;
          warnings.push(`site ${info.id}: blocked form not possible (${r}); used the mask form`);
        }
        applyMask(ctx, raw, ops, shapes, (pos) => buildVisible(ops, pat, pos), perHead(pat));
        return { ...maskOutcome(info, ctx.seqLen, pat), warnings };
      });
    },
  };
}

export const sinkRule = causalPatternRule<SinkParams>(
  'sink', 'attention sinks: the first N keys plus a causal window of W',
  (p) => positiveInt('sink', 'sink', p.sink),
  (p) => ({ kind: 'sink', window: p.window, sink: p.sink }),
);

export const stridedRule = causalPatternRule<StridedParams>(
  'strided', 'per head h, keys j ≡ h (mod k), plus a causal window of W',
  (p) => positiveInt('strided', 'stride', p.stride),
  (p, info) => ({ kind: 'strided', window: p.window, stride: p.stride, heads: info.heads! }),
);

export const powerRule = causalPatternRule<PowerParams>(
  'power', 'keys at power-of-two distances, plus a causal window of W',
  () => undefined,
  (p) => ({ kind: 'power', window: p.window }),
);
