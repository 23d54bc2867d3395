// Which fused operator a site becomes, for the execution provider the model is meant for. The choices rest on what
// onnxruntime implements and on measurements (docs/rewrite-benchmarks.md):
// - CPU: GroupQueryAttention for causal self-attention without a KV cache: its kernel runs one thread per (batch,
//   head) and soft-maxes only the causal part of each row; it also takes the model's mask as attention_bias and
//   implements soft-capping. A cache is not given to it: onnxruntime refuses past keys with more than one new token
//   unless the batch is 1, and a model's batch is not known when it is rewritten. Everything else (bidirectional,
//   cross-attention, caches) goes to MultiHeadAttention, grouped K/V heads repeated first (it has one KV head per query
//   head).
// - CUDA: MultiHeadAttention throughout: its CUDA kernels take an attention_bias in float32 and float16, while
//   GroupQueryAttention's CUDA kernel needs float16 and, in the releases this was written against, rejects an
//   attention_bias (onnxruntime issue 29506), which carries the model's mask. Not measured here (no GPU).
// - ONNX Attention (opset 23) holds everything (grouped heads, soft-capping, float masks) but only in models whose
//   default-domain opset is already 23 or later: raising a model's opset changes the meaning of other operators.
//   `auto` takes it for what the contrib operators cannot do (soft-capping without causality).
export type FusedOpName = 'MultiHeadAttention' | 'GroupQueryAttention' | 'Attention';
export type FuseTarget = 'cpu' | 'cuda';
export type FuseOpChoice = 'auto' | FusedOpName;

export const FUSE_TARGETS: readonly FuseTarget[] = ['cpu', 'cuda'];
export const FUSE_OPS: readonly FuseOpChoice[] = ['auto', 'MultiHeadAttention', 'GroupQueryAttention', 'Attention'];

export interface SiteNeeds {
  causal: boolean;
  kind: 'self' | 'cross';
  /** K/V include a cache (past keys concatenated with the new ones). */
  cache: boolean;
  heads: number;
  kvHeads: number;
  headDim: number;
  vHeadDim: number;
  softcap?: number;
  /** Default-domain opset of the model. */
  opset: number;
}

export function chooseOp(target: FuseTarget, wanted: FuseOpChoice, s: SiteNeeds): { op: FusedOpName } | { reason: string } {
  const why = (op: FusedOpName) => unsupported(op, target, s);
  if (wanted !== 'auto') {
    const reason = why(wanted);
    return reason ? { reason: `${wanted}: ${reason}` } : { op: wanted };
  }
  const order: FusedOpName[] = target === 'cpu'
    ? s.softcap ? ['GroupQueryAttention', 'Attention'] : ['GroupQueryAttention', 'MultiHeadAttention']
    : s.softcap ? ['Attention', 'GroupQueryAttention'] : ['MultiHeadAttention'];
  const reasons: string[] = [];
  for (const op of order) {
    const reason = why(op);
    if (!reason) return { op };
    reasons.push(`${op}: ${reason}`);
  }
  return { reason: reasons.join('; ') };
}

/** Why `op` cannot compute this site exactly on `target` (null: it can). */
function unsupported(op: FusedOpName, target: FuseTarget, s: SiteNeeds): string | null {
  if (op === 'Attention') return s.opset >= 23 ? null : `the model's opset is ${s.opset}; ONNX Attention needs 23`;
  if (op === 'MultiHeadAttention') return s.softcap ? 'it has no soft-capping' : null;
  // GroupQueryAttention
  if (!s.causal) return 'it is causal only, and this site is not causal';
  if (s.kind !== 'self') return 'it takes self-attention only (keys as long as the queries)';
  if (s.cache) return 'with a KV cache and more than one new token onnxruntime accepts only batch 1';
  if (s.headDim !== s.vHeadDim) return 'Q/K and V head sizes differ';
  if (s.heads % s.kvHeads !== 0) return `${s.heads} query heads are not a multiple of ${s.kvHeads} KV heads`;
  // onnxruntime 1.29 refuses it at run time ("head_size must be a multiple of 8").
  if (s.headDim % 8 !== 0) return `its kernel takes head sizes that are a multiple of 8; this site's is ${s.headDim}`;
  if (target === 'cuda') return 'its CUDA kernel needs float16 and rejects the attention_bias that carries the mask (onnxruntime issue 29506)';
  return null;
}
