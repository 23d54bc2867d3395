// The region of the graph a head rewrite works in: the nodes between a site's projections and its output projection,
// and the parts of it upstream or downstream of one value.
import type { Node, Value } from '../../../analysis/ir/graph';

/** Nodes downstream of `sources` and upstream of `sinks` (sinks' producers included, sources' producers not). */
export function between(sources: Value[], sinks: Value[]): Set<Node> {
  const upstream = new Set<Node>();
  const stack = sinks.map((v) => v.producer).filter((n): n is Node => !!n);
  while (stack.length) {
    const n = stack.pop()!;
    if (upstream.has(n)) continue;
    upstream.add(n);
    for (const i of [...n.inputs, ...n.implicitInputs]) if (i?.producer && !upstream.has(i.producer)) stack.push(i.producer);
  }
  const region = new Set<Node>();
  const queue = [...sources];
  const seen = new Set<Value>();
  while (queue.length) {
    const v = queue.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    for (const u of v.uses) {
      if (!upstream.has(u.node) || region.has(u.node)) continue;
      region.add(u.node);
      queue.push(...u.node.outputs);
    }
  }
  return region;
}

/** Region nodes from which `start` can be reached (start's producer included). */
export function upstreamIn(region: Set<Node>, start: Value | undefined): Set<Node> {
  const out = new Set<Node>();
  const stack = start?.producer ? [start.producer] : [];
  while (stack.length) {
    const n = stack.pop()!;
    if (out.has(n) || !region.has(n)) continue;
    out.add(n);
    for (const i of n.inputs) if (i?.producer) stack.push(i.producer);
  }
  return out;
}

export function downstreamIn(region: Set<Node>, start: Value): Set<Node> {
  const out = new Set<Node>();
  const queue = [start];
  while (queue.length) {
    const v = queue.pop()!;
    for (const u of v.uses) {
      if (out.has(u.node) || !region.has(u.node)) continue;
      out.add(u.node);
      queue.push(...u.node.outputs);
    }
  }
  return out;
}
