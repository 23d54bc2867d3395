// Reads onnxruntime's profiler output (a Chrome-trace JSON array) and attributes per-node kernel time to the analysis'
// attention sites: attention's share of all kernel time, and each site's share.
//
// Node events are named `<node name>_kernel_time`. onnxruntime's graph optimizer renames the nodes it fuses to
// `<first original node>/<FusionName>/…` (e.g. `/layers.0/attn/MatMul/MatmulTransposeFusion//MatMulScaleFusion/`), so a
// kernel belongs to a site when its name is one of the site's nodes or starts with one of them followed by `/`.
// Exporters never use an operator's name as a scope of another, so that prefix test does not capture strangers.

export interface SiteNodes {
  id: number;
  /** Every node of the site (projections included): what "attention's share" counts. */
  nodes: string[];
  /** The score path alone (QK product to PV product, or the fused operator): the part that grows as S². */
  core?: string[];
  /** Nodes outside the sites that only build this site's masks (a shared mask under each site): counted once. */
  mask?: string[];
}

export interface TraceEvent {
  cat?: string;
  name?: string;
  ph?: string;
  ts?: number;
  dur?: number;
  args?: { op_name?: string; provider?: string };
}

export interface SiteTime {
  site: number;
  /** Mean kernel time per run, ms. */
  kernelMs: number;
  /** Of all kernel time. */
  share: number;
  /** Kernels attributed to this site (after fusion, per run). */
  kernels: number;
  /** Kernel time of the site's score path, ms per run (0 when the site has no `core`). */
  coreMs: number;
  coreShare: number;
}

export interface KernelProfile {
  runsProfiled: number;
  /** Mean per run, ms. */
  totalKernelMs: number;
  attentionKernelMs: number;
  /** attentionKernelMs / totalKernelMs; null when no sites were given. */
  attentionShare: number | null;
  /** The score paths' share (QK, mask, softmax, PV; no projections); null when no site has a `core`. */
  attentionCoreShare: number | null;
  /** The share of the nodes that only build the sites' masks (outside the sites); null when no site lists any. */
  maskBuildShare: number | null;
  perSite: SiteTime[];
  /** Kernel time by operator type (the op that ran, after fusion), largest first. */
  byOpType: { op: string; kernelMs: number; share: number }[];
  /** Kernel time by execution provider that ran the node. */
  byProvider: Record<string, number>;
}

const KERNEL_SUFFIX = '_kernel_time';

/** Finds which of a set of original node names a kernel (named after the optimized graph's node) comes from. */
class NodeIndex<T> {
  private readonly owner = new Map<string, T>();

  add(node: string, value: T): void {
    this.owner.set(node, value);
  }

  lookup(kernelNode: string): T | undefined {
    const exact = this.owner.get(kernelNode);
    if (exact !== undefined) return exact;
    // Longest original node name that prefixes the fused name at a '/' boundary.
    for (let i = kernelNode.length - 1; i > 0; i--) {
      if (kernelNode[i] !== '/') continue;
      const hit = this.owner.get(kernelNode.slice(0, i));
      if (hit !== undefined) return hit;
    }
    return undefined;
  }
}

export class SiteIndex {
  private readonly all = new NodeIndex<number>();
  private readonly core = new NodeIndex<number>();
  private readonly mask = new NodeIndex<true>();

  constructor(sites: SiteNodes[]) {
    for (const s of sites) {
      for (const n of s.nodes) this.all.add(n, s.id);
      for (const n of s.core ?? []) this.core.add(n, s.id);
      for (const n of s.mask ?? []) this.mask.add(n, true);
    }
  }

  /** Whether the kernel builds a site's mask (outside the sites). */
  buildsMask(kernelNode: string): boolean {
    return this.mask.lookup(kernelNode) === true;
  }

  /** The site that a kernel (by its node name in the optimized graph) belongs to, or undefined. */
  siteOf(kernelNode: string): number | undefined {
    return this.all.lookup(kernelNode);
  }

  /** The site whose score path the kernel belongs to, or undefined. */
  coreOf(kernelNode: string): number | undefined {
    return this.core.lookup(kernelNode);
  }
}

/**
 * @param runs which runs of the trace to count, by index in time order: [from, to). The session's runs can thus serve
 *             several measurements (warm-up runs excluded, one range per sweep point).
 */
export function analyzeTrace(events: TraceEvent[], sites: SiteNodes[] | undefined, runs: { from: number; to?: number } = { from: 0 }): KernelProfile {
  const all = events
    .filter((e) => e.cat === 'Session' && e.name === 'model_run' && typeof e.ts === 'number' && typeof e.dur === 'number')
    .sort((a, b) => (a.ts as number) - (b.ts as number));
  const counted = all.slice(runs.from, runs.to);
  if (counted.length === 0) throw new Error(`profile: the trace holds ${all.length} runs, none in [${runs.from}, ${runs.to ?? 'end'})`);
  const windows = counted.map((r) => [r.ts as number, (r.ts as number) + (r.dur as number)] as const);
  const inCountedRun = (ts: number): boolean => windows.some(([a, b]) => ts >= a && ts <= b);

  const index = new SiteIndex(sites ?? []);
  const siteUs = new Map<number, number>();
  const siteKernels = new Map<number, number>();
  const coreUs = new Map<number, number>();
  const opUs = new Map<string, number>();
  const providerUs: Record<string, number> = {};
  let totalUs = 0;
  let maskUs = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || typeof e.name !== 'string' || !e.name.endsWith(KERNEL_SUFFIX)) continue;
    if (typeof e.ts !== 'number' || typeof e.dur !== 'number' || !inCountedRun(e.ts)) continue;
    const node = e.name.slice(0, -KERNEL_SUFFIX.length);
    totalUs += e.dur;
    const op = e.args?.op_name ?? '?';
    opUs.set(op, (opUs.get(op) ?? 0) + e.dur);
    const provider = e.args?.provider ?? '?';
    providerUs[provider] = (providerUs[provider] ?? 0) + e.dur;
    const site = index.siteOf(node);
    if (site !== undefined) {
      siteUs.set(site, (siteUs.get(site) ?? 0) + e.dur);
      siteKernels.set(site, (siteKernels.get(site) ?? 0) + 1);
    }
    const core = index.coreOf(node);
    if (core !== undefined) coreUs.set(core, (coreUs.get(core) ?? 0) + e.dur);
    else if (site === undefined && index.buildsMask(node)) maskUs += e.dur;
  }
  const n = counted.length;
  const perRunMs = (us: number): number => us / 1000 / n;
  const share = (us: number): number => (totalUs > 0 ? us / totalUs : 0);
  const attentionUs = [...siteUs.values()].reduce((a, b) => a + b, 0);
  const attentionCoreUs = [...coreUs.values()].reduce((a, b) => a + b, 0);
  const hasCore = (sites ?? []).some((s) => (s.core ?? []).length > 0);
  const byProvider: Record<string, number> = {};
  for (const [p, us] of Object.entries(providerUs)) byProvider[p] = perRunMs(us);
  return {
    runsProfiled: n,
    totalKernelMs: perRunMs(totalUs),
    attentionKernelMs: perRunMs(attentionUs),
    attentionShare: sites ? share(attentionUs) : null,
    attentionCoreShare: hasCore ? share(attentionCoreUs) : null,
    maskBuildShare: (sites ?? []).some((s) => (s.mask ?? []).length > 0) ? share(maskUs) : null,
    perSite: (sites ?? []).map((s) => ({
      site: s.id,
      kernelMs: perRunMs(siteUs.get(s.id) ?? 0),
      share: share(siteUs.get(s.id) ?? 0),
      kernels: (siteKernels.get(s.id) ?? 0) / n,
      coreMs: perRunMs(coreUs.get(s.id) ?? 0),
      coreShare: share(coreUs.get(s.id) ?? 0),
    })),
    byOpType: [...opUs.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([op, us]) => ({ op, kernelMs: perRunMs(us), share: share(us) })),
    byProvider,
  };
}
