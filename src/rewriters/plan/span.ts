// Span laws (issue 10, MoA's elastic spans): a plan may give a window size as W(L) = round(a + b·L), clamped to [1, L],
// round(x) = floor(x + 0.5). The `plan` rule resolves every law at the rewrite's length before it builds anything, so
// the rest of the rule (masks, head groups, costs) sees plain numbers; the report shows each law with its value.
import type { RuleContext } from '../rule';
import { type HeadChoice, type HeadPlanFile, type PlanChoice, type ResolvedPlan, type Span, describeHeadChoice, isSpanLaw } from './choices';

/** The window a span gives at length `seq` (a fixed span is itself, whatever the length, as before span laws). */
export function resolveSpan(w: Span, seq: number): number {
  if (!isSpanLaw(w)) return w;
  return Math.min(seq, Math.max(1, Math.floor(w.a + w.b * seq + 0.5)));
}

export function resolveChoice(c: PlanChoice, seq: number): HeadChoice {
  return 'window' in c ? { ...c, window: resolveSpan(c.window, seq) } : c;
}

export function resolvePlan(plan: HeadPlanFile, seq: number): ResolvedPlan {
  const sites = Object.fromEntries(Object.entries(plan.sites).map(([id, hs]) => [id, hs.map((c) => resolveChoice(c, seq))]));
  return { ...plan, sites };
}

export function choiceHasLaw(c: PlanChoice): boolean {
  return 'window' in c && isSpanLaw(c.window);
}

export function planHasLaws(plan: HeadPlanFile, siteIds: readonly number[] = Object.keys(plan.sites).map(Number)): boolean {
  return siteIds.some((id) => plan.sites[id]?.some(choiceHasLaw));
}

/** Why a span cannot be used (one line), or null. */
export function spanProblem(w: Span): string | null {
  if (isSpanLaw(w)) {
    if (typeof w.a !== 'number' || !Number.isFinite(w.a)) return `the span law's a must be a finite number, got ${JSON.stringify(w.a) ?? String(w.a)}`;
    if (typeof w.b !== 'number' || !Number.isFinite(w.b)) return `the span law's b must be a finite number, got ${JSON.stringify(w.b) ?? String(w.b)}`;
    if (w.b < 0) return `the span law's b is ${w.b}: a span may not shrink as the length grows (b ≥ 0)`;
    return null;
  }
  return Number.isSafeInteger(w) && w >= 1 ? null : `the window must be a whole number >= 1, got ${String(w)}`;
}

/** "window 0 + 0.125·L (64 at L = 512)"; a choice without a law as describeHeadChoice gives it. */
export function describeChoiceAt(c: PlanChoice, seq: number): string {
  const d = describeHeadChoice(c);
  return choiceHasLaw(c) ? `${d} (${resolveSpan((c as { window: Span }).window, seq)} at L = ${seq})` : d;
}

/**
 * The length the plan's span laws are resolved at: the model's own where every planned site's queries and keys are
 * fixed to one length, else the length the rewrite was given (--seq). Returns why not when neither is known.
 */
export function lawLength(ctx: RuleContext, siteIds: readonly number[]): { seq: number; source: 'model' | 'given' } | string {
  const lengths = new Set(siteIds.map((id) => {
    const i = ctx.report.sites.findIndex((s) => s.id === id);
    const b = ctx.sites[i]?.binding;
    return b && b.queryPositions === b.keyPositions && typeof b.queryPositions === 'number' ? b.queryPositions : null;
  }));
  const [only] = lengths;
  if (lengths.size === 1 && typeof only === 'number' && only > 0) return { seq: only, source: 'model' };
  if (ctx.seqLenGiven) return { seq: ctx.seqLen, source: 'given' };
  return 'the plan gives span laws (a + b·L), which need the length, and the model does not fix it: give the length the rewritten model will run at (--seq L)';
}
