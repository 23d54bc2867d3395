// One plan from the plans searched at several lengths (issue 10, MoA's elastic spans): where a head's choices at the
// profiled lengths are windows of one kind (window, sink N + window, strided K + window, power + window) of different
// sizes, its span becomes a law W(L) = a + b·L fitted by least squares over the profiled lengths (with two lengths the
// line through both points, which reproduces each length's choice exactly), under b ≥ 0: when the least-squares slope
// is negative the law is the constant mean. Dense at a length counts as a window of L keys there (a window of L keys
// sees every key). A head whose choices differ in kind (pruned at one length, block-topk at another, strides that
// differ) keeps its choice at the longest length. Each head's fit says whether the law gives back its choices.
import type { HeadChoice, HeadPlanFile, PlanChoice, SpanLaw } from '../../rewriters/plan/choices';
import { describeHeadChoice } from '../../rewriters/plan/choices';
import { resolveChoice, resolveSpan } from '../../rewriters/plan/span';

export interface HeadFit {
  site: number;
  head: number;
  /** The choice searched at each length, in the order of `lengths`. */
  searched: string[];
  /** What the plan holds for the head: a law, a fixed choice, or the longest length's choice. */
  planned: string;
  how: 'same' | 'law' | 'longest';
  /** Whether the planned choice resolved at each length is the choice searched there (a window of L for dense). */
  exact: boolean;
  /** Largest |W(L) − searched window| over the lengths (0 when exact; null when not a window law). */
  maxError: number | null;
}

type WindowChoice = Extract<HeadChoice, { window: number }>;

/** Plans searched at `lengths` (ascending, one per length, the same sites and heads) as one plan with span laws. */
export function fitLengths(lengths: number[], plans: HeadPlanFile[], note: string): { plan: HeadPlanFile; fits: HeadFit[] } {
  const longest = plans[plans.length - 1];
  const fits: HeadFit[] = [];
  const sites: Record<number, PlanChoice[]> = {};
  for (const [key, heads] of Object.entries(longest.sites)) {
    const site = Number(key);
    sites[site] = heads.map((_, head) => {
      const at = plans.map((p, i) => resolveChoice(p.sites[site][head], lengths[i]));
      const fit = fitHead(lengths, at);
      fits.push({ site, head, searched: at.map(describeHeadChoice), ...fit.report });
      return fit.choice;
    });
  }
  return { plan: { version: 1, seq: lengths[lengths.length - 1], lengths, note, sites }, fits };
}

function fitHead(lengths: number[], at: HeadChoice[]): { choice: PlanChoice; report: Omit<HeadFit, 'site' | 'head' | 'searched'> } {
  const described = at.map(describeHeadChoice);
  const last = at[at.length - 1];
  if (described.every((d) => d === described[0])) return { choice: last, report: { planned: described[0], how: 'same', exact: true, maxError: null } };
  const shape = windowShape(at);
  if (!shape) {
    return { choice: last, report: { planned: describeHeadChoice(last), how: 'longest', exact: false, maxError: null } };
  }
  const windows = at.map((c, i) => (c.kind === 'dense' ? lengths[i] : (c as WindowChoice).window));
  const law = leastSquares(lengths, windows);
  const choice = { ...shape, window: law } as PlanChoice;
  const errors = lengths.map((L, i) => Math.abs(resolveSpan(law, L) - Math.min(windows[i], L)));
  const maxError = Math.max(...errors);
  return { choice, report: { planned: describeHeadChoice(choice), how: 'law', exact: maxError === 0, maxError } };
}

/** The window kind the choices share (dense fits any), or null when they differ in kind or parameters. */
function windowShape(at: HeadChoice[]): WindowChoice | null {
  const windows = at.filter((c): c is WindowChoice => 'window' in c);
  if (windows.length === 0 || windows.length + at.filter((c) => c.kind === 'dense').length !== at.length) return null;
  const key = (c: WindowChoice) => describeHeadChoice({ ...c, window: 1 });
  return windows.every((c) => key(c) === key(windows[0])) ? windows[0] : null;
}

/** a + b·L minimising Σ (a + b·L − W)² with b ≥ 0. */
export function leastSquares(lengths: number[], windows: number[]): SpanLaw {
  const n = lengths.length;
  const mL = lengths.reduce((x, y) => x + y, 0) / n;
  const mW = windows.reduce((x, y) => x + y, 0) / n;
  let sLW = 0;
  let sLL = 0;
  lengths.forEach((L, i) => {
    sLW += (L - mL) * (windows[i] - mW);
    sLL += (L - mL) ** 2;
  });
  const b = sLL > 0 ? sLW / sLL : 0;
  if (b <= 0) return { a: mW, b: 0 };
  return { a: mW - b * mL, b };
}
