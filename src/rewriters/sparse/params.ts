// Parameters of the sparse rules, as the CLI parses them (src/cli/rewrite.ts) plus two tuning knobs the CLI does not
// expose, and their checks. Every problem is a RuleError naming the rule.
import type { SiteInfo } from '../../analysis/report/types';
import { splitReason } from '../plan/split-guard';
import { RuleError } from '../rule';
import { IMPL_AUTO } from './impl-auto';
import { FUSED_MASK_INPUT } from './mask-form';

export interface WindowParams {
  window: number;
  /** `mask` (default): dense scores, −∞ outside the window. `blocked`: only the blocks the window touches. */
  impl?: 'mask' | 'blocked';
  /** Blocked form: query rows per block (default: about W/2, between 16 and 128). */
  rows?: number;
  /**
   * Blocked form: how the model's own mask is read. `auto` (default): its last row when the analysis says it is a
   * padding/causal mask, every row otherwise; `rows`: always every row (slower; exact for any mask).
   */
  modelMask?: 'auto' | 'rows';
}
/** The window's implementation knobs, shared by the patterns built on a causal window. */
export interface WindowImpl {
  /** `mask` (default) or `blocked`: the blocked window plus the pattern's extra keys (blocked-extras.ts). */
  impl?: 'mask' | 'blocked';
  rows?: number;
  modelMask?: 'auto' | 'rows';
}
export interface SinkParams extends WindowImpl { window: number; sink: number }
export interface StridedParams extends WindowImpl { window: number; stride: number }
export interface PowerParams extends WindowImpl { window: number }
export interface Neighborhood2dParams {
  radius: number;
  /** `mask` (default) or `blocked`: each grid row of patches against the prefix tokens and the 2r + 1 rows around it. */
  impl?: 'mask' | 'blocked';
}
export interface BlockTopkParams {
  block: number;
  /** Key blocks kept per query block besides the diagonal block and block 0. 0 keeps only those two; more than
   * there are blocks keeps them all (the site is then exact). */
  k: number;
  /** `mask` (default): dense scores, −∞ outside the chosen blocks. `gather`: only the chosen blocks are computed. */
  impl?: 'mask' | 'gather';
  modelMask?: 'auto' | 'rows';
}

/** `impl` of a sparse rule: mask or its compute-reducing form. */
export function implOf<T extends string>(rule: string, v: unknown, fast: T): 'mask' | T | undefined {
  if (v === IMPL_AUTO) {
    throw new RuleError(rule, `impl ${IMPL_AUTO} is chosen by timing the candidates on a runtime (attention-lens rewrite --impl ${IMPL_AUTO}); this rewrite path needs impl mask or ${fast}`);
  }
  return oneOf(rule, 'impl', v, ['mask', fast] as const);
}

export function positiveInt(rule: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RuleError(rule, `${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

export function nonNegativeInt(rule: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new RuleError(rule, `${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

export function oneOf<T extends string>(rule: string, name: string, v: unknown, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw new RuleError(rule, `${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

/**
 * Why a site's form cannot take a mask (or null when it can). A site that a compute-reducing form (blocked window,
 * block-topk gather) already rewrote has blocked scores whose last two axes are no longer query and key positions, so
 * no later pattern can be placed on them: those rules must come last.
 */
export function formReason(site: SiteInfo): string | null {
  const split = splitReason(site);
  if (split) return split;
  const blocked = site.nodes.map((n) => /::(window|sink|strided|power|neighborhood2d|block-topk|plan)\/qk(_\d+)?$/.exec(n)).find((m) => m !== null);
  if (blocked) return `already rewritten into blocked scores by ${blocked[1]} --impl ${blocked[1] === 'block-topk' ? 'gather' : 'blocked'}; apply other sparse rules before the compute-reducing one`;
  if (site.form === 'unfused' || site.form === 'sdpa-decomposed') return null;
  if (FUSED_MASK_INPUT[site.form] !== undefined) return null;
  return `${site.form} has no mask input these rules can use`;
}
