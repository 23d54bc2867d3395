// After a rule that changes head counts: the sizes the graph knows must still agree. A per-head value on a site's way
// that the rule did not know to cut (Conformer's per-head bias added to Q, a second product of Q with another
// projection's heads) leaves an op combining 3 heads with 4; the model would fail at run time, so the rule is refused
// with that op named. Conflicts the model had before the rule are not the rule's.
import type { Graph } from '../analysis/ir/graph';
import { shapeConflicts } from '../analysis/ir/shape-conflicts';
import { ShapeInfo } from '../analysis/ir/shapes';
import { RuleError } from './rule';

export function conflictsOf(graph: Graph): Map<string, string> {
  return shapeConflicts(graph, new ShapeInfo(graph));
}

export function checkNoNewConflicts(rule: string, before: Map<string, string>, graph: Graph): void {
  const added = [...conflictsOf(graph)].filter(([name]) => !before.has(name)).map(([, why]) => why);
  if (added.length === 0) return;
  const more = added.length > 1 ? ` (and ${added.length - 1} more)` : '';
  throw new RuleError(rule, `the rewritten model's sizes disagree: ${added[0]}${more}; a per-head value on the site's way was not cut with its heads, so the rule does not apply to this model`);
}
