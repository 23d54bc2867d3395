// `maps`: runs a model whose graph outputs include the sites' attention probabilities (see ../maps-model.ts) and
// computes the per-head statistics of methods.md, optionally with a sparse pattern's recall.
import { attentionStats } from '../measure/attention-stats';
import { describePattern, parsePattern } from '../measure/sparse-pattern';
import type { MapsRequest, MapsResult, SiteMap } from '../protocol';
import { type HostTensor, allocate, elementCount, toFloat64 } from '../tensor';
import type { TaskContext } from './context';
import { prepareFeeds } from './feeds';
import { runOnce } from './run-model';
import type { SessionCache } from './sessions';

/** Batch 0 of a [batch, ..., heads, q, k] map, as float32. */
function firstBatch(t: HostTensor): HostTensor {
  const dims = t.dims.length >= 4 ? [1, ...t.dims.slice(1)] : [...t.dims];
  const n = elementCount(dims);
  const data = allocate('float32', n) as Float32Array;
  const src = t.data instanceof Float32Array ? t.data : toFloat64(t);
  for (let i = 0; i < n; i++) data[i] = src[i];
  return { dtype: 'float32', dims, data };
}

export async function handleMaps(req: MapsRequest, sessions: SessionCache, ctx: TaskContext): Promise<MapsResult> {
  if (req.sites.length === 0) throw new Error('maps: no sites');
  const pattern = req.pattern !== undefined ? parsePattern(req.pattern) : undefined;
  const opened = await sessions.get(req.model, req.settings);
  ctx.throwIfCancelled();
  const prepared = prepareFeeds(opened, req.inputs);
  const { outputs } = await runOnce(opened, prepared.tensors, req.sites.map((s) => s.output));
  const sites: SiteMap[] = req.sites.map((s) => {
    const t = outputs[s.output];
    const values = t.data instanceof Float32Array || t.data instanceof Float64Array ? t.data : toFloat64(t);
    const map: SiteMap = { site: s.site, output: s.output, dims: [...t.dims], stats: attentionStats(values, t.dims, s.causal, pattern) };
    if (req.includeProbabilities !== false) map.probabilities = firstBatch(t);
    return map;
  });
  const result: MapsResult = { provider: opened.provider, fed: prepared.fed, sites };
  if (pattern) result.pattern = describePattern(pattern);
  return result;
}
