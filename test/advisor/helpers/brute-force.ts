// The oracle of the advisor's integer program: the least summed loss over every combination of one option per head
// whose summed cost is at most the limit (Infinity when none is); with several budget rows, at most each row's limit.
import type { RowsHead, SearchHead } from '../../../src/orchestrate/advisor/search';

export function bruteForce(heads: SearchHead[], limit: number): number {
  let best = Infinity;
  const walk = (h: number, cost: number, loss: number) => {
    if (h === heads.length) {
      if (cost <= limit + 1e-12) best = Math.min(best, loss);
      return;
    }
    for (const o of heads[h].options) walk(h + 1, cost + o.cost, loss + o.loss);
  };
  walk(0, 0, 0);
  return best;
}

/** The same with several budget rows: the least summed loss whose summed cost in every row r is at most limits[r]. */
export function bruteForceRows(heads: RowsHead[], limits: number[]): number {
  let best = Infinity;
  const walk = (h: number, costs: number[], loss: number) => {
    if (h === heads.length) {
      if (costs.every((c, r) => c <= limits[r] + 1e-12)) best = Math.min(best, loss);
      return;
    }
    for (const o of heads[h].options) walk(h + 1, costs.map((c, r) => c + o.costs[r]), loss + o.loss);
  };
  walk(0, limits.map(() => 0), 0);
  return best;
}
