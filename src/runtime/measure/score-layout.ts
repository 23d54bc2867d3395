// How a site's attention probabilities are laid out, so that maps are read per batch item as [heads, queries, keys]
// whatever the exporter wrote:
//   [batch, heads, queries, keys]           transformers, torch SDPA, ONNX Attention, GroupQueryAttention's output_qk
//   [batch·heads, queries, keys]            torch.nn.MultiheadAttention folds the heads into the batch, batch-major
//                                           (row block b·heads + h)
//   [batch, windows, heads, queries, keys]  windowed attention: one map per window
//   [batch, kv heads, group, queries, keys] grouped-query attention written with the query heads split per KV head
//                                           (query head = kv·group + g, the order repeat_kv gives)
//   [queries, keys]                         one head, one batch item
// Every form above stores block (b, w, h) at ((b·windows + w)·heads + h)·queries·keys, so one index serves them all.
//
// The layout is read in this one place: from the probabilities' rank and the site's head count today; from the
// site's bound dimensions (which scores axis is batch, heads, query, key) once the analysis records them. A shape
// that contradicts the site's head count gives no layout, with the reason, never a guessed one.

/** What the layout needs to know about the site (MapsSite carries it from the analysis). */
export interface LayoutSite {
  heads: number | null;
  kvHeads: number | null;
}

export interface ScoreLayout {
  batch: number;
  /** Attention windows per batch item; 1 unless the attention is windowed. */
  windows: number;
  heads: number;
  queries: number;
  keys: number;
  /** The form recognised, for messages and reports, e.g. "[batch·heads, queries, keys]". */
  form: string;
}

export type LayoutReading = { layout: ScoreLayout } | { unknown: string };

export function scoreLayout(site: LayoutSite, dims: readonly number[]): LayoutReading {
  const r = dims.length;
  const shape = `[${dims.join(', ')}]`;
  if (r < 2 || r > 5) return { unknown: `probabilities of rank ${r} (${shape}): no known attention layout has that rank` };
  const [queries, keys] = [dims[r - 2], dims[r - 1]];
  const H = site.heads !== null && site.heads > 0 ? site.heads : null;
  const layout = (batch: number, windows: number, heads: number, form: string): LayoutReading => ({ layout: { batch, windows, heads, queries, keys, form } });
  const contradiction = (what: string) => ({ unknown: `probabilities ${shape} ${what}, but the analysis gives the site ${H} heads` });

  switch (r) {
    case 2:
      if (H !== null && H !== 1) return contradiction('hold one head');
      return layout(1, 1, 1, '[queries, keys]');
    case 3: {
      // [batch·heads, queries, keys]: without the head count the leading axis cannot be split.
      if (H === null) return { unknown: `probabilities ${shape} fold heads into the batch, and the analysis does not give the site's head count` };
      if (dims[0] % H !== 0) return contradiction(`have a leading axis of ${dims[0]}, not a multiple of the heads`);
      return layout(dims[0] / H, 1, H, '[batch·heads, queries, keys]');
    }
    case 4:
      if (H !== null && dims[1] !== H) return contradiction(`have ${dims[1]} heads on axis 1`);
      return layout(dims[0], 1, dims[1], '[batch, heads, queries, keys]');
    default: {
      if (H === null) return { unknown: `probabilities ${shape} have two axes before the queries, and without the site's head count they cannot be told apart` };
      if (dims[2] === H) return layout(dims[0], dims[1], H, '[batch, windows, heads, queries, keys]');
      if (site.kvHeads !== null && dims[1] === site.kvHeads && dims[1] * dims[2] === H) {
        return layout(dims[0], 1, H, '[batch, kv heads, group, queries, keys]');
      }
      return contradiction(`match neither [batch, windows, heads, ...] nor [batch, kv heads, group, ...]`);
    }
  }
}

/** An explicit [batch, heads, queries, keys] layout (leading axes may be absent), for maps already laid out per item. */
export function plainLayout(dims: readonly number[]): ScoreLayout {
  if (dims.length < 2 || dims.length > 4) throw new Error(`attention map of rank ${dims.length}: expected [batch, heads, queries, keys] or a suffix of it`);
  const r = dims.length;
  return {
    batch: r === 4 ? dims[0] : 1,
    windows: 1,
    heads: r >= 3 ? dims[r - 3] : 1,
    queries: dims[r - 2],
    keys: dims[r - 1],
    form: '[batch, heads, queries, keys]',
  };
}

/** Elements in one (batch item, window, head) block. */
export function blockSize(l: ScoreLayout): number {
  return l.queries * l.keys;
}

/** Elements in all of a layout. */
export function layoutSize(l: ScoreLayout): number {
  return l.batch * l.windows * l.heads * blockSize(l);
}
