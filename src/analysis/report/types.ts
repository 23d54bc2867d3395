// The analysis report: plain JSON, the one shape shared by `analyze --json`, the webview and saved reports.
// Nothing here may hold class instances, bigint or typed arrays: a report must survive JSON.stringify/parse unchanged.

export const REPORT_SCHEMA_VERSION = 1;

/** A dimension: a number when known, a symbol name (e.g. "batch") when symbolic, null when unknown. */
export type Dim = number | string | null;

/** What a graph input is for, guessed from its name, dtype, shape and where it flows. Drives input synthesis. */
export type InputRole =
  | 'input_ids'
  | 'attention_mask'
  | 'position_ids'
  | 'token_type_ids'
  | 'past_key'
  | 'past_value'
  | 'pixel_values'
  | 'audio_features'
  | 'hidden_states'
  | 'cache_position'
  | 'other';

export interface InputInfo {
  name: string;
  /** onnxruntime-style dtype name: float32, int64, bool, float16, ... */
  dtype: string;
  shape: Dim[];
  role: InputRole;
  /** For token-id inputs: the row count of the embedding table they index. */
  vocabSize?: number;
  /**
   * For token ids, positions, 2-D masks and hidden states: which axis is the batch and which the sequence (a mask's
   * key positions), as the graph uses them. Absent where the graph does not establish it (see the report's warnings).
   */
  axes?: InputAxes;
  /** For 0/1 and boolean masks: whether true (1) means "attend to this key" or "this key is padding", from how the graph uses it. */
  maskMeaning?: 'keep' | 'pad';
}

/** Axis indices into an input's shape. */
export interface InputAxes {
  batch?: number;
  sequence?: number;
  /** A mask given per query and key (torch.nn's `[S, S]` src_mask): its query axis; `sequence` is then the keys'. */
  query?: number;
}

export interface OutputInfo {
  name: string;
  dtype: string;
  shape: Dim[];
}

export interface ModelInfo {
  path: string;
  fileBytes: number;
  irVersion: number;
  producer: string;
  opsets: Record<string, number>;
  nodeCount: number;
  initializerCount: number;
  /** Parameters counted from initializer shapes (no weight is read). */
  parameterCount: number;
  externalDataFiles: string[];
  inputs: InputInfo[];
  outputs: OutputInfo[];
  opHistogram: Record<string, number>;
  /**
   * Rows of the smallest learned position table (a Gather from a constant table that token ids do not index), rounded
   * down to a power of two, or the size of a causal buffer sliced to the sequence length (nanoGPT's `bias`), whichever
   * is shorter: the longest sequence the model can take. Absent when the model has neither.
   */
  maxPositions?: number;
}

export type MaskType = 'none' | 'padding' | 'causal' | 'causal+padding' | 'sliding-window' | 'relative-bias' | 'alibi' | 'bias';
export type PositionScheme = 'rope' | 'learned-absolute' | 'relative-bias' | 'alibi' | 'none' | 'unknown';

export interface ProjectionInfo {
  /** Initializer holding the weight. */
  weight: string;
  bias?: string;
  /** `in_out`: MatMul(x, W) with W [in, out]; `out_in`: Gemm transB / Linear with W [out, in]. */
  layout: 'in_out' | 'out_in';
  /** The node that applies the weight. */
  node: string;
  /** The Add that applies `bias` when it is a node of its own (a Gemm applies its bias itself). */
  biasNode?: string;
  /** Fused projections: which slice of the weight's output features belongs to this role. */
  fused?: 'qkv' | 'kv';
  sliceStart?: number;
  sliceEnd?: number;
}

/**
 * Which output features of a projection belong to each head: head h's columns are `starts[h] + offsets[i]` (offsets
 * 0..width-1 when absent). For the output projection these are the input rows that read head h.
 */
export interface HeadColumns {
  /** The projection node whose weight these columns (rows, for the output projection) index. */
  node: string;
  starts: number[];
  width: number;
  offsets?: number[];
}

/**
 * The site's dimensions as bound across Q, K, V, the scores and the output, whatever the layout the exporter chose,
 * and the head map derived from the same walk. Heads are numbered in the order of their Q columns.
 */
export interface SiteBinding {
  batch: Dim;
  /** Windowed attention: how many windows each batch item's positions are cut into (null: known only at run time). */
  windows?: Dim;
  heads: number;
  kvHeads: number;
  headDim: number;
  vHeadDim: number;
  queryPositions: Dim;
  keyPositions: Dim;
  /**
   * What each axis of the scores holds, major to minor within an axis (`[['batch', 'head'], ['query'], ['key']]`;
   * windowed attention: `[['batch'], ['window'], ['head'], ['query'], ['key']]`, queries and keys within a window).
   */
  scoreAxes: ('batch' | 'window' | 'head' | 'query' | 'key')[][];
  /** For each query head, the KV head it reads. */
  qToKv: number[];
  q: HeadColumns;
  k: HeadColumns;
  v: HeadColumns;
  o?: HeadColumns;
  /**
   * Where batch and positions sit in each projection's activation (axis indices; batch absent when it has none),
   * and what each leading axis of the output projection's input holds. Absent where an activation was flattened
   * into [tokens, features] before its projection.
   */
  tokens?: {
    q: TokenAxes;
    k: TokenAxes;
    v: TokenAxes;
    out?: ('batch' | 'positions')[][];
  };
  /** Why the output projection's rows could not be bound, when they could not. */
  oUnbound?: string;
  /** The core's equations when it is written with Einsum (a MatMul side given as the equivalent equation). */
  einsum?: { qk: string; pv: string };
}

/** Where batch and positions sit in an activation; `window`: positions cut into windows of that many (windows major). */
export interface TokenAxes {
  batch?: number;
  positions: number;
  rank: number;
  window?: number;
}

export interface SiteInfo {
  id: number;
  kind: 'self' | 'cross';
  causal: boolean;
  heads: number | null;
  kvHeads: number | null;
  headDim: number | null;
  /** Softmax scale applied to Q·K (product of every constant factor found), null if it could not be read. */
  scale: number | null;
  maskType: MaskType;
  /** Sliding-window length when the mask (or a fused op's attribute) sets one. */
  window?: number;
  softcap?: number;
  position: PositionScheme;
  projections: { q?: ProjectionInfo; k?: ProjectionInfo; v?: ProjectionInfo; o?: ProjectionInfo };
  kvCache: { reads: boolean; writes: boolean; pastInputs: string[]; presentOutputs: string[] };
  /** How the block is written: `unfused`, `sdpa-decomposed`, or the fused operator (`com.microsoft.GroupQueryAttention`, `onnx.Attention`, ...). */
  form: string;
  /** The key nodes of the block. */
  anchors: { softmax?: string; qk?: string; pv?: string; fused?: string };
  /** All nodes the block spans, in graph order. */
  nodes: string[];
  /**
   * Nodes outside every site that only build this site's masks (a mask shared by several sites is listed under each),
   * in graph order; absent when there are none. What a rewrite that stops reading the full mask no longer computes.
   */
  maskBuild?: string[];
  /** Analytic cost at `costSeqLen` tokens (batch 1, no past). */
  flops: number | null;
  attnMatrixBytes: number | null;
  notes: string[];
  /** Bound dimensions and head map; absent when the walk could not bind them (a note says why). */
  binding?: SiteBinding;
  /** A per-head plan the `plan` rule applied to this site, as the rewritten graph records it; absent otherwise. */
  plan?: SitePlan;
}

/**
 * What the analysis reads back of a per-head plan (analysis/attention/plan-site.ts): the choices the `plan` rule
 * recorded on the site's anchor node, and the head groups its compute-reducing form computes apart.
 */
export interface SitePlan {
  /**
   * One choice per query head of the site as it was planned, in the plan file's notation and numbering (pruned heads
   * included, so there can be more entries than `heads`); null when the graph does not record them or the record does
   * not match the site (a note says why).
   */
  choices: string[] | null;
  /**
   * The head groups computed apart (`--impl blocked`, more than one choice): the positions of each group's heads in
   * the site as it is now (after pruning) and their choice (null where unknown). Absent when the site is computed as
   * one (the mask form, or a single choice).
   */
  groups?: { heads: number[]; choice: string | null }[];
}

export interface UnmatchedInfo {
  node: string;
  reason: string;
}

export interface AnalysisReport {
  schemaVersion: number;
  model: ModelInfo;
  costSeqLen: number;
  sites: SiteInfo[];
  unmatched: UnmatchedInfo[];
  warnings: string[];
}
