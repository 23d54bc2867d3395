// The loss the search minimises, estimated per head and option from the profile (no gradients): the head's importance
// (the output change when it is zeroed, in the profile's metric) times the share of its attention mass the option
// drops, raised to a power. With exponent 1 the estimate is linear in the dropped mass; a KL divergence grows with the
// square of a small change of the output, which exponent 2 follows. Neither is exact (heads interact, and a pattern
// renormalises what it keeps rather than zeroing what it drops): the search proposes plans by each, and the advisor
// keeps the one whose measured score on the calibration data is best (advisor.ts).
import type { CostModel } from './budget-cost';
import type { AdvisorProfile } from './profile';
import type { SearchHead } from './search';

export interface LossProxy {
  /** For reports: "importance × (1 − recall)^2". */
  name: string;
  exponent: number;
}

export const LOSS_PROXIES: LossProxy[] = [
  { name: 'importance × (1 − recall)', exponent: 1 },
  { name: 'importance × (1 − recall)²', exponent: 2 },
];

/** Every planned head of the profile with its options' cost (under `costs`) and estimated loss (under `proxy`). */
export function searchHeads(profile: AdvisorProfile, proxy: LossProxy, costs: CostModel): SearchHead[] {
  return profile.sites.flatMap((s) =>
    s.perHead.map((h) => ({
      site: s.site,
      head: h.head,
      options: s.choices.map((choice, o) => ({
        choice,
        cost: costs.cost(s, h.head, choice),
        loss: h.importance * Math.pow(Math.max(0, 1 - h.recall[o]), proxy.exponent),
      })),
    })),
  );
}
