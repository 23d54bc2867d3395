// The advisor's joint search over several lengths (issue 10, MoA's elastic form): ONE integer program over every
// profiled length (search.ts, `searchRows`), so the plan meets its budget at each of them by construction.
//
// A head's options are span laws and length-independent choices, each with a cost at every length (one budget row per
// length) and an estimated loss at every length (from that length's profile; the objective is their mean):
// - dense and pruned are the same at every length;
// - block-topk b,k keeps its block size b and k at every length (a block count that grows with L is not a choice the
//   plan rule has); it is an option when every length measured its recall: each length measures the block-topk
//   candidates of the other lengths too (`jointExtras`), so with the default block L/16 both b = 256/16 and 512/16 are
//   options at 256 and 512;
// - the window kinds (window W, sink N + window W, strided K + window W, power + window W) keep their other parameters
//   (N, K) at every length and give W as a law W(L) = a + b·L (b ≥ 0; a plain window when b = 0) through a point of
//   the window ladder at one length and a point of the ladder at another. The law is evaluated at every length, and it
//   is an option only when its window there (rounded as the plan rule rounds it) is one whose recall that length's
//   profile measured: recall is never interpolated. With two lengths every pair of ladder points with W2 ≥ W1 is a law;
//   with more, the laws through a pair whose values at the other lengths fall on their ladders (W = c·L through a
//   doubling ladder, a constant through a window every ladder has). Strided candidates of another length's stride are
//   measured with this length's windows (`jointExtras`), so strided K + W(L) is an option for each default stride K.
// Dense as "a window of L keys" is not a ladder point: a head that needs every key at one length takes dense.
import type { HeadChoice, HeadPlanFile, PlanChoice, Span } from '../../rewriters/plan/choices';
import { describeHeadChoice } from '../../rewriters/plan/choices';
import { resolveChoice, resolveSpan } from '../../rewriters/plan/span';
import type { CostModel } from './budget-cost';
import { type CandidateOptions, candidateSet } from './candidates';
import type { LossProxy } from './loss';
import type { AdvisorProfile, SiteProfile } from './profile';
import { type RowsHead, type RowsResult, searchRows } from './search';

type WindowChoice = Extract<HeadChoice, { window: number }>;

/** What a head of a joint plan holds: its choice resolved at each length, and whether that is a span law. */
export interface HeadFit {
  site: number;
  head: number;
  /** The planned choice at each profiled length, in the order of the plan's `lengths`. */
  resolved: string[];
  /** The planned choice as the plan file holds it ("window 0 + 0.125·L"). */
  planned: string;
  how: 'same' | 'law';
}

/** An option of every head of a site: the planned choice and, per length, the index of its resolved choice in that length's profile. */
export interface SiteOption {
  choice: PlanChoice;
  at: number[];
}

/** The choices each length measures besides its own candidates: the other lengths' block-topk, and their strides with this length's windows. */
export function jointExtras(seqs: number[], candidates?: CandidateOptions): (seq: number, causal: boolean) => HeadChoice[] {
  return (seq, causal) => {
    const windows = candidateSet(seq, causal, candidates).choices.flatMap((c) => (c.kind === 'window' ? [c.window] : []));
    return seqs.filter((L) => L !== seq).flatMap((L) => candidateSet(L, causal, candidates).choices.flatMap((c): HeadChoice[] => {
      if (c.kind === 'block-topk') return [c];
      if (c.kind === 'strided') return windows.map((window) => ({ ...c, window }));
      return [];
    }));
  };
}

const shapeKey = (c: WindowChoice) => describeHeadChoice({ ...c, window: 1 });

/** The law through (L1, W1) and (L2, W2), L1 < L2, W1 ≤ W2: a plain window when W1 = W2. */
export function lawThrough(L1: number, W1: number, L2: number, W2: number): Span {
  if (W1 === W2) return W1;
  const b = (W2 - W1) / (L2 - L1);
  return { a: W1 - b * L1, b };
}

/** The options of a site's heads at lengths `seqs` (ascending), `sites` being the site's profile at each. */
export function siteOptions(seqs: number[], sites: SiteProfile[]): SiteOption[] {
  const index = sites.map((s) => new Map(s.choices.map((c, o) => [describeHeadChoice(c), o])));
  const find = (c: HeadChoice) => index.map((m) => m.get(describeHeadChoice(c)));
  const complete = (at: (number | undefined)[]): at is number[] => at.every((o) => o !== undefined);
  const out: SiteOption[] = [];
  const shapes = new Map<string, WindowChoice>();
  for (const c of sites[0].choices) {
    if ('window' in c) shapes.set(shapeKey(c), c);
    else {
      const at = find(c);
      if (complete(at)) out.push({ choice: c, at });
    }
  }
  for (const [key, shape] of shapes) {
    const ladders = sites.map((s) => s.choices.flatMap((c) => ('window' in c && shapeKey(c) === key ? [c.window] : [])));
    const seen = new Set<string>();
    for (let i = 0; i < seqs.length; i++) {
      for (let j = i + 1; j < seqs.length; j++) {
        for (const w1 of ladders[i]) {
          for (const w2 of ladders[j]) {
            if (w2 < w1) continue;
            const window = lawThrough(seqs[i], w1, seqs[j], w2);
            const values = seqs.map((L) => resolveSpan(window, L));
            if (seen.has(values.join(','))) continue;
            const at = values.map((w, k) => index[k].get(describeHeadChoice({ ...shape, window: w })));
            if (!complete(at)) continue;
            seen.add(values.join(','));
            out.push({ choice: { ...shape, window } as PlanChoice, at });
          }
        }
      }
    }
  }
  return out;
}

/** Every planned head with its joint options: a cost per length (under that length's cost model) and the mean estimated loss. */
export function jointHeads(profiles: AdvisorProfile[], proxy: LossProxy, costs: CostModel[]): RowsHead<PlanChoice>[] {
  const seqs = profiles.map((p) => p.seq);
  return profiles[0].sites.flatMap((_, k) => {
    const sites = profiles.map((p) => p.sites[k]);
    const options = siteOptions(seqs, sites);
    return sites[0].perHead.map((_h, head) => ({
      site: sites[0].site,
      head,
      options: options.map((o) => ({
        choice: o.choice,
        costs: sites.map((s, i) => costs[i].cost(s, head, resolveChoice(o.choice, seqs[i]))),
        loss: sites.reduce((a, s, i) => a + s.perHead[head].importance * Math.pow(Math.max(0, 1 - s.perHead[head].recall[o.at[i]]), proxy.exponent), 0) / seqs.length,
      })),
    }));
  });
}

/** The joint search's plan: the chosen choice of every head, at the longest length's `seq`, with the profiled `lengths`. */
export function jointPlan(seqs: number[], r: RowsResult<PlanChoice>, note: string): { plan: HeadPlanFile; fits: HeadFit[] } {
  const sites: Record<number, PlanChoice[]> = {};
  const fits: HeadFit[] = [];
  for (const p of r.picks) {
    (sites[p.site] ??= [])[p.head] = p.choice;
    const resolved = seqs.map((L) => describeHeadChoice(resolveChoice(p.choice, L)));
    fits.push({ site: p.site, head: p.head, resolved, planned: describeHeadChoice(p.choice), how: resolved.every((d) => d === resolved[0]) ? 'same' : 'law' });
  }
  return { plan: { version: 1, seq: seqs[seqs.length - 1], lengths: seqs, note, sites }, fits };
}

/** One joint search: the plan of least mean estimated loss whose cost at every length is within that length's limit. */
export async function searchJoint(
  profiles: AdvisorProfile[], proxy: LossProxy, costs: CostModel[], limits: number[], describe: (row: number) => (cost: number) => string,
): Promise<RowsResult<PlanChoice>> {
  return searchRows(jointHeads(profiles, proxy, costs), limits, describe);
}
