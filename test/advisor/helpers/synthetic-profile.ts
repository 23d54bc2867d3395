// A profile of a real model's sites (its analysis: sites, heads, causality, the candidate set at a length) with
// recall and importance drawn from a seeded generator instead of measured: for tests of what the advisor's costs and
// search do with a profile (costs, budgets, the solver), which do not depend on the measured numbers.
import { analyzeModel } from '../../../src/analysis/analyze';
import type { AnalysisReport } from '../../../src/analysis/report/types';
import { Rng } from '../../../src/analysis/numeric/random';
import type { HeadChoice } from '../../../src/rewriters/plan/choices';
import { candidateSet, choiceKeys, denseKeys } from '../../../src/orchestrate/advisor/candidates';
import type { AdvisorProfile } from '../../../src/orchestrate/advisor/profile';

export function syntheticProfile(
  model: string, seq: number, seed: number, options: { choices?: (causal: boolean) => HeadChoice[]; sites?: number } = {},
): { profile: AdvisorProfile; report: AnalysisReport } {
  const report = analyzeModel(model, { seqLen: seq });
  const rng = new Rng(seed);
  const sites = report.sites.filter((s) => s.kind === 'self' && s.heads).slice(0, options.sites ?? Infinity).map((s) => {
    const choices = options.choices?.(s.causal) ?? candidateSet(seq, s.causal).choices;
    const heads = s.heads!;
    return {
      site: s.id,
      causal: s.causal,
      heads,
      kvHeads: s.kvHeads,
      denseKeys: denseKeys(s.causal, seq),
      choices,
      perHead: Array.from({ length: heads }, (_, h) => ({
        head: h,
        importance: rng.next(),
        recall: choices.map((c) => (c.kind === 'dense' ? 1 : c.kind === 'pruned' ? 0 : rng.next())),
        keys: choices.map((c) => choiceKeys(c, s.causal, seq, h, heads)),
        entropy: 0,
        firstTokenMass: 0,
        meanDistance: 0,
      })),
    };
  });
  const profile: AdvisorProfile = {
    model, seq, calibration: `synthetic (seed ${seed})`, maps: 0, importanceWindows: 0, output: 'none', metric: 'kl',
    sites, skipped: [], timings: { mapsMs: 0, importanceMs: 0 }, warnings: [],
  };
  return { profile, report };
}
