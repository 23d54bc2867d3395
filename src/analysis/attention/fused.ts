// Fused attention operators: ONNX `Attention` (opset 23+) and onnxruntime's com.microsoft contrib ops. Their
// attributes state heads, causality, scale and windows; shapes and the projections around them give the rest.
import type { Node, Value } from '../ir/graph';
import type { ProjectionInfo } from '../report/types';
import { classifyMask, maskTypeOf } from './mask';
import { attrFloat, attrInt, attrInts, fail, ok, type Ctx, type Match } from './match';
import { outputProjection } from './output';
import type { RawSite } from './site';
import { attentionKind, projectionWithSlice, traceBack, type Trace } from './trace';

export const FUSED_OPS = new Set([
  'onnx.Attention',
  'com.microsoft.Attention',
  'com.microsoft.MultiHeadAttention',
  'com.microsoft.GroupQueryAttention',
  'com.microsoft.SparseAttention',
  'com.microsoft.PackedAttention',
  'com.microsoft.PackedMultiHeadAttention',
  'com.microsoft.DecoderMaskedMultiHeadAttention',
]);

/**
 * Where each fused operator takes its inputs, by name (the onnxruntime contrib-op schemas and ONNX Attention-23): the
 * one table the analysis and every rule read, so an input index is written down once.
 */
export const FUSED_INPUTS = {
  'onnx.Attention': { query: 0, key: 1, value: 2, attnMask: 3, pastKey: 4, pastValue: 5, nonpadKvSeqlen: 6 },
  'com.microsoft.MultiHeadAttention': {
    query: 0, key: 1, value: 2, bias: 3, keyPaddingMask: 4, attentionBias: 5, pastKey: 6, pastValue: 7, pastSequenceLength: 8, cacheIndirection: 9,
  },
  'com.microsoft.GroupQueryAttention': {
    query: 0, key: 1, value: 2, pastKey: 3, pastValue: 4, seqlensK: 5, totalSequenceLength: 6, cosCache: 7, sinCache: 8, positionIds: 9,
    attentionBias: 10, headSink: 11,
  },
  'com.microsoft.SparseAttention': {
    query: 0, key: 1, value: 2, pastKey: 3, pastValue: 4, blockRowIndices: 5, blockColIndices: 6, totalSequenceLength: 7, keyTotalSequenceLengths: 8,
    cosCache: 9, sinCache: 10,
  },
  'com.microsoft.Attention': { input: 0, weights: 1, bias: 2, maskIndex: 3, past: 4, attentionBias: 5, pastSequenceLength: 6 },
  'com.microsoft.DecoderMaskedMultiHeadAttention': {
    query: 0, key: 1, value: 2, maskIndex: 3, attentionBias: 4, pastKey: 5, pastValue: 6, pastSequenceLength: 7, beamWidth: 8, cacheIndirection: 9, bias: 10,
  },
} as const;

export type FusedInputKey = keyof typeof FUSED_INPUTS;

/** The indexes of the past (KV-cache) inputs an operator reads, in the order key, value (or the one packed `past`). */
export function pastInputIndexes(key: string): number[] {
  const t = (FUSED_INPUTS as Record<string, Record<string, number>>)[key];
  if (!t) return [];
  return t.past !== undefined ? [t.past] : t.pastKey !== undefined ? [t.pastKey, t.pastValue] : [];
}

export function fusedKey(n: Node): string {
  return `${n.domain === '' ? 'onnx' : n.domain}.${n.opType}`;
}

export function matchFused(ctx: Ctx, n: Node): Match<RawSite> {
  const key = fusedKey(n);
  const numHeads = attrInt(n, 'num_heads') ?? attrInt(n, 'q_num_heads');
  const last = (v: Value | null) => {
    const s = ctx.shapes.shape(v);
    const d = s?.[s.length - 1];
    return typeof d === 'number' ? d : undefined;
  };
  const dim = (v: Value | null, i: number) => {
    const d = ctx.shapes.shape(v)?.[i];
    return typeof d === 'number' ? d : undefined;
  };
  const q = n.input(0);
  if (!q) return fail(`${key} '${n.name}' has no query input`);
  const out = outputProjection(ctx, n.outputs[0]);
  const base = {
    form: key,
    anchor: n,
    anchors: { fused: n.name },
    // Said in the report because it decides what can be done with the site: its Q and K as the operator receives
    // them are not yet rotated (an exported rotation before the operator is another matter, and leaves them so).
    notes: attrInt(n, 'do_rotary') === 1 ? [ROTARY_INSIDE] : [] as string[],
    io: { q, k: n.input(1) ?? undefined, v: n.input(2) ?? undefined, out: out.value },
  };
  const nodes = new Set<Node>([n, ...out.nodes]);
  const scaleAttr = attrFloat(n, 'scale');
  const withO = (p: RawSite['projections']) => (out.projection ? { ...p, o: out.projection } : p);

  if (key === 'com.microsoft.Attention' || key === 'com.microsoft.PackedAttention') {
    // Packed QKV weight [hidden, q + k + v] applied inside the op.
    const w = n.input(1);
    const sizes = attrInts(n, 'qkv_hidden_sizes');
    const wWidth = last(w);
    const qWidth = sizes?.[0] ?? (wWidth ? wWidth / 3 : undefined);
    if (!numHeads || !qWidth) return fail(`${key} '${n.name}': cannot read heads or hidden size`);
    const headDim = qWidth / numHeads;
    const kWidth = sizes?.[1] ?? qWidth;
    const vWidth = sizes?.[2] ?? qWidth;
    const proj = (start: number, end: number): ProjectionInfo => ({
      weight: w!.name, ...(n.input(2) ? { bias: n.input(2)!.name } : {}), layout: 'in_out', node: n.name, fused: 'qkv', sliceStart: start, sliceEnd: end,
    });
    const causal = attrInt(n, 'unidirectional') === 1;
    const at = FUSED_INPUTS['com.microsoft.Attention'];
    const past = key === 'com.microsoft.Attention' ? n.input(at.past) : null;
    return ok({
      ...base, nodes, kind: 'self', causal, heads: numHeads, kvHeads: numHeads, headDim, scale: scaleAttr || 1 / Math.sqrt(headDim),
      maskType: maskOf(ctx, [n.input(at.maskIndex)], causal), maskValues: present([n.input(at.maskIndex)]), position: attrInt(n, 'do_rotary') ? 'rope' : 'none',
      projections: withO({ q: proj(0, qWidth), k: proj(qWidth, qWidth + kWidth), v: proj(qWidth + kWidth, qWidth + kWidth + vWidth) }),
      kvCache: cache(past ? [past] : [], n.outputs.slice(1)),
    });
  }

  if (key === 'onnx.Attention') {
    const k = n.input(1);
    const v = n.input(2);
    const qs = ctx.shapes.shape(q);
    const rank4 = qs?.length === 4;
    const heads = rank4 ? dim(q, 1) : attrInt(n, 'q_num_heads');
    const kvHeads = rank4 ? dim(k, 1) : attrInt(n, 'kv_num_heads');
    const headDim = rank4 ? last(q) : heads && last(q) ? last(q)! / heads : undefined;
    if (!heads || !headDim) return fail(`onnx.Attention '${n.name}': cannot read heads and head size (3-D inputs need q_num_heads)`);
    const given = n.input(FUSED_INPUTS[key].attnMask);
    const mask = classifyMask(ctx, given ? [given] : []);
    const causal = attrInt(n, 'is_causal') === 1 || mask.causal;
    const tq = traceBack(ctx, q);
    const tk = k ? traceBack(ctx, k) : undefined;
    const tv = v ? traceBack(ctx, v) : undefined;
    addAll(nodes, tq, tk, tv);
    const softcap = attrFloat(n, 'softcap');
    return ok({
      ...base, nodes, kind: attentionKind(tq, tk), causal, heads, kvHeads: kvHeads ?? heads, headDim, scale: scaleAttr || 1 / Math.sqrt(headDim),
      maskType: attrInt(n, 'is_causal') === 1 ? (mask.padding ? 'causal+padding' : 'causal') : maskTypeOf(mask),
      maskValues: present([given]),
      ...(softcap ? { softcap } : {}),
      position: tq.rope ? 'rope' : 'none',
      projections: withO(projs(ctx, tq, tk, tv)),
      kvCache: cache(pastInputIndexes(key).map((i) => n.input(i)), n.outputs.slice(1, 3)),
    });
  }

  // com.microsoft MultiHeadAttention, GroupQueryAttention, SparseAttention, PackedMultiHeadAttention,
  // DecoderMaskedMultiHeadAttention: Q/K/V enter already projected, as [batch, sequence, heads * head_size].
  if (!numHeads) return fail(`${key} '${n.name}' has no num_heads attribute`);
  const k = n.input(1);
  const v = n.input(2);
  const grouped = key === 'com.microsoft.GroupQueryAttention' || key === 'com.microsoft.SparseAttention';
  const kvHeads = grouped ? attrInt(n, 'kv_num_heads') ?? numHeads : numHeads;
  const qWidth = last(q);
  // Packed QKV in the query input when key and value are absent.
  const packed = !k && !v;
  const headDim = qWidth ? (packed && grouped ? qWidth / (numHeads + 2 * kvHeads) : packed ? undefined : qWidth / numHeads) : undefined;
  const tq = traceBack(ctx, q);
  const tk = k ? traceBack(ctx, k) : undefined;
  const tv = v ? traceBack(ctx, v) : undefined;
  addAll(nodes, tq, tk, tv);
  const causal = grouped || key === 'com.microsoft.DecoderMaskedMultiHeadAttention' || attrInt(n, 'unidirectional') === 1;
  const local = attrInt(n, 'local_window_size');
  const pastIdx = pastInputIndexes(key);
  const softcap = attrFloat(n, 'softcap');
  const mha = FUSED_INPUTS['com.microsoft.MultiHeadAttention'];
  const maskInputs = key === 'com.microsoft.MultiHeadAttention' ? [n.input(mha.keyPaddingMask), n.input(mha.attentionBias)]
    : key === 'com.microsoft.GroupQueryAttention' ? [n.input(FUSED_INPUTS[key].attentionBias)] : [];
  return ok({
    ...base, nodes, kind: packed ? 'self' : attentionKind(tq, tk), causal, heads: numHeads, kvHeads, headDim: headDim ?? null,
    scale: scaleAttr || (headDim ? 1 / Math.sqrt(headDim) : null),
    maskType: local !== undefined && local > 0 ? 'sliding-window' : maskOf(ctx, maskInputs, causal),
    maskValues: present(maskInputs),
    ...(local !== undefined && local > 0 ? { window: local } : {}),
    ...(softcap ? { softcap } : {}),
    position: attrInt(n, 'do_rotary') === 1 || tq.rope ? 'rope' : 'none',
    projections: withO(projs(ctx, tq, tk, tv)),
    kvCache: cache(pastIdx.map((i) => n.input(i)), grouped || key === 'com.microsoft.MultiHeadAttention' || key === 'com.microsoft.DecoderMaskedMultiHeadAttention' ? n.outputs.slice(1, 3) : []),
  });
}

function addAll(nodes: Set<Node>, ...ts: (Trace | undefined)[]): void {
  for (const t of ts) if (t) for (const x of t.nodes) nodes.add(x);
}

function projs(ctx: Ctx, q: Trace, k?: Trace, v?: Trace): RawSite['projections'] {
  return {
    ...(q.projection ? { q: projectionWithSlice(ctx, q)! } : {}),
    ...(k?.projection ? { k: projectionWithSlice(ctx, k)! } : {}),
    ...(v?.projection ? { v: projectionWithSlice(ctx, v)! } : {}),
  };
}

const present = (inputs: (Value | null | undefined)[]): Value[] => inputs.filter((x): x is Value => !!x);

/** The note on a fused site whose operator applies the rotary embedding itself (`do_rotary`). */
export const ROTARY_INSIDE = 'the operator applies the rotary embedding itself (do_rotary)';

function maskOf(ctx: Ctx, inputs: (Value | null)[], causal: boolean): RawSite['maskType'] {
  const given = present(inputs);
  const facts = classifyMask(ctx, given);
  if (!given.length) return causal ? 'causal' : 'none';
  // A mask input the walk learned nothing about (a constant that is not triangular) is a bias of unknown shape.
  const type = maskTypeOf(facts) === 'none' ? 'bias' : maskTypeOf(facts);
  // A causal operator's bias is read as a padding mask only when it is one (what the graph shows of it): any other
  // bias keeps its own type, since rules that read one row of a padding mask must not take it for one.
  if (causal) return type === 'padding' || type === 'causal' || type === 'causal+padding' ? 'causal+padding' : type;
  return type;
}

function cache(past: (Value | null)[], present: Value[]): RawSite['kvCache'] {
  const pastInputs = past.filter((x): x is Value => !!x).map((x) => x.name);
  const presentOutputs = present.filter((x) => x.name !== '' && (x.isGraphOutput || x.uses.length > 0)).map((x) => x.name);
  return { reads: pastInputs.length > 0, writes: presentOutputs.length > 0, pastInputs, presentOutputs };
}
