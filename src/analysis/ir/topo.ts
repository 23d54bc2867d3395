// Stable topological order: nodes keep their relative order wherever the dependencies allow it, so a graph that is
// already sorted (as exporters write them) comes back unchanged, and rewrites that append nodes get them placed right.
import type { Node } from './graph';

export type TopoResult = { ok: true; nodes: Node[] } | { ok: false; cycle: Node[] };

export function sortTopologically(nodes: Node[]): TopoResult {
  const index = new Map(nodes.map((n, i) => [n, i]));
  const pending = new Map<Node, number>();
  const consumers = new Map<Node, Node[]>();
  for (const n of nodes) {
    const producers = new Set<Node>();
    for (const v of [...n.inputs, ...n.implicitInputs]) {
      const p = v?.producer;
      if (p && p !== n && index.has(p)) producers.add(p);
      if (p === n) return { ok: false, cycle: [n] };
    }
    pending.set(n, producers.size);
    for (const p of producers) {
      let list = consumers.get(p);
      if (!list) consumers.set(p, (list = []));
      list.push(n);
    }
  }
  // A binary heap on the original index keeps the order stable.
  const heap: Node[] = [];
  const less = (a: Node, b: Node) => index.get(a)! < index.get(b)!;
  const push = (n: Node) => {
    heap.push(n);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(heap[i], heap[p])) break;
      [heap[i], heap[p]] = [heap[p], heap[i]];
      i = p;
    }
  };
  const pop = (): Node => {
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && less(heap[l], heap[m])) m = l;
        if (r < heap.length && less(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    return top;
  };
  for (const n of nodes) if (pending.get(n) === 0) push(n);
  const out: Node[] = [];
  while (heap.length) {
    const n = pop();
    out.push(n);
    for (const c of consumers.get(n) ?? []) {
      const left = pending.get(c)! - 1;
      pending.set(c, left);
      if (left === 0) push(c);
    }
  }
  if (out.length !== nodes.length) return { ok: false, cycle: nodes.filter((n) => pending.get(n)! > 0) };
  return { ok: true, nodes: out };
}
