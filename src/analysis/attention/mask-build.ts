// The nodes that build the sites' masks and do nothing else: what a rewrite can stop computing when its sites no longer
// read a full mask (the compute-reducing sparse forms read only its last row). On an exported causal Llama this S×S
// Where/And/Expand chain is outside every site yet grows with S² (50–100 ms per run at 4096 tokens on a 2-core
// CPU), so the runtime measures its share apart and the model bound of a sparse rewrite counts it as removable.
//
// From each site's mask values the walk goes up through the model's own nodes, and through a site's nodes only where
// they pass a mask along (`fuse` brings the model's mask to its operator as a broadcast bias); it stops at Shape (only
// dimensions are read there), inputs and constants. A node counts when everything that reads it is a counted node or
// the site node that applies the mask: positions that rotary embeddings also read, for one, do not.
import type { Node, Value } from '../ir/graph';
import type { RawSite } from './site';

/** A site's operators that carry a mask to where it is applied, without computing anything else from it. */
const PASSES_MASK = new Set(['Expand', 'Reshape', 'Unsqueeze', 'Squeeze', 'Cast', 'Identity', 'Add', 'Mul', 'Where', 'Concat', 'Slice', 'Transpose']);
/** A walk stops here, before it can wander far from the masks (it never needs to on an export). */
const MAX_NODES = 2000;

/** For each site, in the order given: the nodes that only build its masks (a shared mask's under each site). */
export function maskBuildNodes(sites: RawSite[], graphNodes: readonly Node[]): Node[][] {
  const inSite = new Set(sites.flatMap((s) => [...s.nodes]));
  // Values a subgraph reads from this scope are not in `uses`: their producers are read by something else.
  const implicit = new Set(graphNodes.flatMap((n) => n.implicitInputs));
  const candidates = new Set<Node>();
  const carriers = new Set<Node>();
  const reach = sites.map((s) => {
    const mine = new Set<Node>();
    const stack = [...(s.maskValues ?? [])];
    for (const m of s.maskValues ?? []) for (const u of m.uses) if (inSite.has(u.node)) carriers.add(u.node);
    const seen = new Set<Value>();
    while (stack.length && candidates.size < MAX_NODES) {
      const p = stack.pop()!.producer;
      if (!p || seen.has(p.outputs[0])) continue;
      p.outputs.forEach((o) => seen.add(o));
      if (inSite.has(p)) {
        if (p.domain !== '' || !PASSES_MASK.has(p.opType)) continue;
        carriers.add(p);
      } else {
        candidates.add(p);
        mine.add(p);
        if (p.opType === 'Shape' || p.opType === 'Size') continue;
      }
      for (const x of [...p.inputs, ...p.implicitInputs]) if (x) stack.push(x);
    }
    return mine;
  });
  exclusive(candidates, carriers, implicit);
  return reach.map((mine) => [...mine].filter((n) => candidates.has(n)));
}

/** Drops, to a fixed point, every candidate something else reads (a graph output counts as something else). */
function exclusive(candidates: Set<Node>, carriers: Set<Node>, implicit: Set<Value>): void {
  for (let changed = true; changed;) {
    changed = false;
    for (const n of candidates) {
      const only = n.outputs.every((o) => !o.isGraphOutput && !implicit.has(o) && o.uses.every((u) => candidates.has(u.node) || carriers.has(u.node)));
      if (!only) {
        candidates.delete(n);
        changed = true;
      }
    }
  }
}
