// The oracle of the advisor's integer program: the least summed loss over every combination of one option per head
// whose summed cost is at most the limit (Infinity when none is).
import type { SearchHead } from '../../../src/orchestrate/advisor/search';

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
