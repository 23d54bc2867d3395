// A head rewrite changes the tensors between a site's projections and its output: their head counts (prune-heads,
// gqa) or where they come from (share-kv, share-attn). It rewrites the site's own path. A node outside that path
// that reads one of those tensors would silently get the changed one (CoaT's convolutional position term reads V,
// and `q * conv(v)` reads Q), so such a site is refused with the reader named. Shape readers only read sizes the
// rewrite fixes, and the site's own KV-cache outputs are meant to change with it.
import type { Node, Value } from '../../../analysis/ir/graph';
import type { Role, SiteStructure } from './structure';

export interface SitePath extends Pick<SiteStructure, 'region' | 'roles' | 'proj' | 'packed'> {
  /** Where the site's path ends (the output projection's input): read outside by design. */
  sinks: Value[];
  /** The graph outputs that are the site's KV cache. */
  cacheOutputs: ReadonlySet<string>;
}

/** Why the rule cannot change the site's tensors of these roles (a reader outside its path), or undefined. */
export function outsideReader(p: SitePath, changed: readonly Role[]): string | undefined {
  const found = firstReaderOutside(p, new Set(changed));
  if (!found) return undefined;
  const { role, value, reader } = found;
  const what = role === 'packed' ? 'the packed projection' : role === 'scores' ? 'the scores' : role === 'o' ? 'the merged heads' : role.replace('rep', '').toUpperCase();
  return `${what} ('${value.name}') is also read outside the attention by ${reader.opType} '${reader.name}', which would get the rewritten tensor`;
}

/** The projections' outputs with their roles: they are produced outside the region. */
function sources(p: SitePath): { value: Value; role: Role }[] {
  const apart = (['q', 'k', 'v'] as const).filter((role) => !p.packed?.parts.some((x) => x.role === role));
  const own = apart.flatMap((role) => (p.proj[role] ? [{ value: p.proj[role].output, role }] : []));
  return p.packed ? [{ value: p.packed.proj.output, role: 'packed' }, ...own] : own;
}

function firstReaderOutside(p: SitePath, changed: ReadonlySet<Role>): { value: Value; reader: Node; role: Role } | undefined {
  const sinks = new Set(p.sinks);
  const from = sources(p);
  const tensors: { value: Value; role: Role }[] = [...from];
  for (const n of p.region) {
    const role = p.roles.get(n);
    if (role) for (const value of n.outputs) tensors.push({ value, role });
  }
  const data = dataPath(p.region, from.map((x) => x.value));
  for (const { value, role } of tensors) {
    if (!changed.has(role) || sinks.has(value) || !data.has(value)) continue;
    for (const u of value.uses) {
      const n = u.node;
      if (p.region.has(n) || n === p.proj.o?.node || n.opType === 'Shape' || onlyFeedsCache(n, p.cacheOutputs)) continue;
      return { value, reader: n, role };
    }
  }
  return undefined;
}

/**
 * The region's values computed from the projections' data, not from their sizes only: positions and shapes read off
 * Q or K (a blocked form's block columns) follow the rewrite by themselves and may be read anywhere.
 */
function dataPath(region: Set<Node>, from: Value[]): Set<Value> {
  const out = new Set<Value>(from);
  const stack = [...from];
  while (stack.length) {
    const v = stack.pop()!;
    for (const u of v.uses) {
      if (!region.has(u.node) || u.node.opType === 'Shape' || u.node.opType === 'Size') continue;
      for (const o of u.node.outputs) {
        if (out.has(o)) continue;
        out.add(o);
        stack.push(o);
      }
    }
  }
  return out;
}

/** True when everything computed from `start` ends in the site's KV-cache outputs (a present key laid out apart). */
function onlyFeedsCache(start: Node, cache: ReadonlySet<string>): boolean {
  if (cache.size === 0) return false;
  const stack = [start];
  const seen = new Set<Node>();
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    if (seen.size > 64) return false;
    for (const o of n.outputs) {
      if (o.isGraphOutput && !cache.has(o.name)) return false;
      for (const u of o.uses) stack.push(u.node);
    }
  }
  return true;
}
