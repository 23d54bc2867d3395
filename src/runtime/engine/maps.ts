// `maps`: runs a model whose graph outputs include the sites' attention probabilities (see ../maps-model.ts) and
// computes the per-head statistics of methods.md, optionally with a sparse pattern's recall. The probabilities are read
// through the site's layout (../measure/score-layout.ts), so heads folded into the batch or split into windows come
// out per head; a layout that cannot be read makes the map unknown, with the reason.
import { attentionStats } from '../measure/attention-stats';
import { type ScoreLayout, blockSize, scoreLayout } from '../measure/score-layout';
import { describePattern, parsePattern } from '../measure/sparse-pattern';
import type { MapsRequest, MapsResult, SiteMap } from '../protocol';
import { type HostTensor, allocate, toFloat64 } from '../tensor';
import type { TaskContext } from './context';
import { prepareFeeds } from './feeds';
import { runOnce } from './run-model';
import type { SessionCache } from './sessions';

/** Batch item 0 as float32 [heads, queries, keys] ([windows, heads, queries, keys] when windowed). */
function firstItem(values: Float32Array | Float64Array, l: ScoreLayout): HostTensor {
  const n = l.windows * l.heads * blockSize(l);
  const data = allocate('float32', n) as Float32Array;
  for (let i = 0; i < n; i++) data[i] = values[i];
  const dims = [l.heads, l.queries, l.keys];
  return { dtype: 'float32', dims: l.windows > 1 ? [l.windows, ...dims] : dims, data };
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
    const base = { site: s.site, output: s.output, dims: [...t.dims] };
    const reading = scoreLayout(s, t.dims);
    if ('unknown' in reading) return { ...base, unknown: reading.unknown };
    const values = t.data instanceof Float32Array || t.data instanceof Float64Array ? t.data : toFloat64(t);
    const map: SiteMap = { ...base, layout: reading.layout, stats: attentionStats(values, reading.layout, s.causal, pattern) };
    if (req.includeProbabilities !== false) map.probabilities = firstItem(values, reading.layout);
    return map;
  });
  const result: MapsResult = { provider: opened.provider, fed: prepared.fed, sites };
  if (pattern) result.pattern = describePattern(pattern);
  return result;
}
