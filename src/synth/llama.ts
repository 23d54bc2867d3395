// A Llama-style decoder built as the TorchScript exporter writes transformers' LlamaForCausalLM with eager attention
// (compare ../shared/fixtures/llama-eager-ts-op17): the causal mask from Range/LessOrEqual/And/Where, rotary
// embeddings computed at run time, rotate_half with Slice/Neg/Concat, repeat_kv with Unsqueeze/Expand/Reshape for
// grouped-query attention, MatMul with the transposed keys, a Mul by 1/sqrt(head_dim), the mask Add, Softmax and the
// MatMul with the values; RMSNorm written out; a SwiGLU MLP. MatMul weights are stored [in, out], as the exporter
// stores them.
//
// Small configs get random embedded weights and run in onnxruntime (tests); large ones point every weight into one
// sparse file (benchmarks of analysis on 7B-shaped graphs, where no weight is ever read).
import * as path from 'node:path';
import { attr, GraphBuilder } from '../analysis/ir/builder';
import type { Value } from '../analysis/ir/graph';
import type { Model } from '../analysis/ir/load';
import { INT64_MAX, TorchScriptWriter } from './torchscript-style';
import { RandomWeights, SparseFileWeights, type WeightInit, type WeightSource } from './weights';

export interface LlamaConfig {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  /** RoPE base; default 10000. */
  ropeTheta?: number;
  /** RMSNorm epsilon; default 1e-6. */
  rmsEps?: number;
  /** Seed of the random weights; default 0. */
  seed?: number;
  /** Write every weight as a reference into this (new, sparse) file instead of embedding random values. */
  externalData?: { file: string };
}

export interface SynthLlama {
  model: Model;
  /** Weights (float32 elements). */
  parameters: number;
  /** The sparse data file and its size, with `externalData`. */
  dataFile?: string;
  dataBytes?: number;
}

/** The largest config whose random weights are embedded; above it, generating them would take long and much memory. */
const MAX_EMBEDDED_PARAMETERS = 64 * 1024 * 1024;

export function llamaParameterCount(c: LlamaConfig): number {
  const q = c.heads * c.headDim;
  const kv = c.kvHeads * c.headDim;
  const layer = 2 * c.hidden + c.hidden * (q + 2 * kv) + q * c.hidden + 3 * c.hidden * c.intermediate;
  return 2 * c.vocab * c.hidden + c.hidden + c.layers * layer;
}

export function buildLlama(config: LlamaConfig): SynthLlama {
  checkConfig(config);
  const parameters = llamaParameterCount(config);
  let weights: WeightSource;
  let sparse: SparseFileWeights | undefined;
  if (config.externalData) {
    sparse = new SparseFileWeights(path.resolve(config.externalData.file));
    weights = sparse;
  } else {
    if (parameters > MAX_EMBEDDED_PARAMETERS) {
      throw new RangeError(`a Llama config with ${parameters} parameters is too large for embedded random weights; use externalData`);
    }
    weights = new RandomWeights(config.seed ?? 0);
  }
  const b = GraphBuilder.create({ irVersion: 8, opsets: { '': 17 }, producerName: 'attention-lens synth', graphName: 'main_graph' });
  new LlamaWriter(b, config, weights).write();
  const model = b.finish();
  // The data file is created only once the whole graph was built, so a refused config leaves nothing behind.
  weights.finish();
  return { model, parameters, ...(sparse ? { dataFile: sparse.file, dataBytes: sparse.bytes } : {}) };
}

function checkConfig(c: LlamaConfig): void {
  for (const k of ['layers', 'hidden', 'heads', 'kvHeads', 'headDim', 'intermediate', 'vocab'] as const) {
    if (!Number.isSafeInteger(c[k]) || c[k] <= 0) throw new RangeError(`Llama config: ${k} must be a positive integer (got ${c[k]})`);
  }
  if (c.heads % c.kvHeads !== 0) throw new RangeError(`Llama config: heads (${c.heads}) must be a multiple of kvHeads (${c.kvHeads})`);
  if (c.headDim % 2 !== 0) throw new RangeError(`Llama config: headDim (${c.headDim}) must be even for rotary embeddings`);
}

interface Rotary { cos: Value; sin: Value }

class LlamaWriter {
  private readonly w: TorchScriptWriter;

  constructor(
    private readonly b: GraphBuilder,
    private readonly c: LlamaConfig,
    private readonly weights: WeightSource,
  ) {
    this.w = new TorchScriptWriter(b);
  }

  private weight(name: string, dims: readonly number[], init: WeightInit = 'normal'): Value {
    return this.weights.add(this.b, name, dims, init);
  }

  write(): void {
    const { b, w, c } = this;
    const inputIds = b.input('input_ids', 'int64', ['batch', 'sequence']);
    const attentionMask = b.input('attention_mask', 'int64', ['batch', 'sequence']);
    const embed = this.weight('model.embed_tokens.weight', [c.vocab, c.hidden]);

    let hidden = w.scoped('model', () => {
      const embeds = w.scoped('embed_tokens', () => w.op('Gather', [embed, inputIds]));
      const positions = w.op('Range', [w.constI64([0], true), w.dim(embeds, 1), w.constI64([1], true)]);
      const positionIds = w.unsqueeze(positions, [0]);
      const mask = this.causalMask(positions, attentionMask);
      const rotary = w.scoped('rotary_emb', () => this.rotary(positionIds));
      let h = embeds;
      for (let i = 0; i < c.layers; i++) h = w.scoped(`layers.${i}`, () => this.layer(i, h, mask, rotary));
      return w.scoped('norm', () => this.rmsNorm(h, this.weight('model.norm.weight', [c.hidden], 'ones')).out);
    });
    const lmHead = this.weight('lm_head.weight', [c.hidden, c.vocab]);
    hidden = w.scoped('lm_head', () => w.op('MatMul', [hidden, lmHead], undefined, 'logits'));
    b.output(hidden, 'float32', ['batch', 'sequence', c.vocab]);
  }

  /**
   * The 4-D float mask transformers builds for eager attention: key j is visible from query i when j <= i and the
   * padding mask keeps j; visible gets 0, hidden the float32 minimum. Shape [batch, 1, query, key].
   */
  private causalMask(queryPositions: Value, attentionMask: Value): Value {
    const w = this.w;
    const padding = w.cast(attentionMask, 'bool');
    const keyPositions = w.op('Range', [w.constI64([0], true), w.dim(padding, 1), w.constI64([1], true)]);
    const keys = w.unsqueeze(keyPositions, [0, 1, 2]); // [1, 1, 1, key]
    const queries = w.unsqueeze(queryPositions, [0, 1, 3]); // [1, 1, query, 1]
    const causal = w.op('LessOrEqual', [keys, queries]);
    const visible = w.op('And', [causal, w.unsqueeze(padding, [1, 2])]);
    return w.op('Where', [visible, w.constF32(0), w.constF32(-3.4028234663852886e38)]);
  }

  /** cos and sin of position × inverse frequency, [batch, sequence, head_dim], as LlamaRotaryEmbedding computes them. */
  private rotary(positionIds: Value): Rotary {
    const { w, c } = this;
    const half = c.headDim / 2;
    const theta = c.ropeTheta ?? 10000;
    const invFreq = new Float32Array(half);
    for (let i = 0; i < half; i++) invFreq[i] = 1 / theta ** ((2 * i) / c.headDim);
    const inv = w.constTensor([1, half, 1], invFreq);
    const expanded = w.cast(w.expand(inv, w.shape([w.dim(positionIds, 0), -1, 1])), 'float');
    const pos = w.cast(w.unsqueeze(positionIds, [1]), 'float');
    const freqs = w.transpose(w.op('MatMul', [expanded, pos]), [0, 2, 1]);
    const emb = w.op('Concat', [freqs, freqs], { axis: attr.int(-1) });
    // attention_scaling is 1 for default RoPE; the exporter still writes the Mul.
    const cos = w.cast(w.op('Mul', [w.op('Cos', [emb]), w.constF32(1)]), 'float');
    const sin = w.cast(w.op('Mul', [w.op('Sin', [emb]), w.constF32(1)]), 'float');
    return { cos, sin };
  }

  /** LlamaRMSNorm; `xf` (the input in float32) is what the residual connection adds back, as in the export. */
  private rmsNorm(x: Value, weight: Value): { out: Value; xf: Value } {
    const w = this.w;
    const xf = w.cast(x, 'float');
    const variance = w.op('ReduceMean', [w.op('Pow', [xf, w.constF32(2)])], { axes: attr.ints([-1]), keepdims: attr.int(1) });
    const std = w.op('Sqrt', [w.op('Add', [variance, w.constF32(this.c.rmsEps ?? 1e-6)])]);
    const normed = w.op('Mul', [xf, w.op('Div', [w.constF32(1), std])]);
    return { out: w.op('Mul', [weight, w.cast(normed, 'float')]), xf };
  }

  private layer(i: number, x: Value, mask: Value, rotary: Rotary): Value {
    const { w, c } = this;
    const p = `model.layers.${i}`;
    const inputNorm = w.scoped('input_layernorm', () => this.rmsNorm(x, this.weight(`${p}.input_layernorm.weight`, [c.hidden], 'ones')));
    const attnOut = w.scoped('self_attn', () => this.attention(p, inputNorm.out, mask, rotary));
    const h = w.op('Add', [inputNorm.xf, attnOut]);
    const postNorm = w.scoped('post_attention_layernorm', () => this.rmsNorm(h, this.weight(`${p}.post_attention_layernorm.weight`, [c.hidden], 'ones')));
    const mlpOut = w.scoped('mlp', () => {
      const gate = w.scoped('gate_proj', () => w.op('MatMul', [postNorm.out, this.weight(`${p}.mlp.gate_proj.weight`, [c.hidden, c.intermediate])]));
      const act = w.scoped('act_fn', () => w.op('Mul', [gate, w.op('Sigmoid', [gate])]));
      const up = w.scoped('up_proj', () => w.op('MatMul', [postNorm.out, this.weight(`${p}.mlp.up_proj.weight`, [c.hidden, c.intermediate])]));
      const prod = w.op('Mul', [act, up]);
      return w.scoped('down_proj', () => w.op('MatMul', [prod, this.weight(`${p}.mlp.down_proj.weight`, [c.intermediate, c.hidden])]));
    });
    return w.op('Add', [postNorm.xf, mlpOut]);
  }

  private attention(p: string, x: Value, mask: Value, rotary: Rotary): Value {
    const { w, c } = this;
    const D = c.headDim;
    const batch = w.dim(x, 0);
    const seq = w.dim(x, 1);
    const project = (name: string, outFeatures: number) => {
      const weight = this.weight(`${p}.self_attn.${name}.weight`, [c.hidden, outFeatures]);
      return w.scoped(name, () => w.op('MatMul', [x, weight]));
    };
    // view(batch, seq, -1, head_dim).transpose(1, 2)
    const heads = (proj: Value, shape: Value) => w.transpose(w.reshape(proj, shape), [0, 2, 1, 3]);
    const qp = project('q_proj', c.heads * D);
    const qShape = w.shape([batch, seq, -1, D]);
    const kShape = w.shape([batch, seq, -1, D]);
    const vShape = w.shape([batch, seq, -1, D]);
    const q = heads(qp, qShape);
    const k = heads(project('k_proj', c.kvHeads * D), kShape);
    const v = heads(project('v_proj', c.kvHeads * D), vShape);

    const cos = w.unsqueeze(rotary.cos, [1]);
    const sin = w.unsqueeze(rotary.sin, [1]);
    const qRot = this.applyRotary(q, cos, sin);
    const kRot = this.applyRotary(k, cos, sin);
    const kAll = this.repeatKv(kRot);
    const vAll = this.repeatKv(v);

    const scores = w.op('MatMul', [qRot, w.transpose(kAll, [0, 1, 3, 2])]);
    const scaled = w.op('Mul', [scores, w.constF32(1 / Math.sqrt(D))]);
    const masked = w.op('Add', [scaled, mask]);
    const probs = w.op('Softmax', [masked], { axis: attr.int(-1) });
    // softmax(..., dtype=float32).to(query.dtype): two Casts in the export.
    const probsF = w.cast(w.cast(probs, 'float'), 'float');
    const context = w.transpose(w.op('MatMul', [probsF, vAll]), [0, 2, 1, 3]);
    const merged = w.reshape(context, w.shape([batch, seq, -1]));
    return w.scoped('o_proj', () => w.op('MatMul', [merged, this.weight(`${p}.self_attn.o_proj.weight`, [c.heads * D, c.hidden])]));
  }

  /** x * cos + rotate_half(x) * sin, with rotate_half = cat(-x[..., d/2:], x[..., :d/2]). */
  private applyRotary(x: Value, cos: Value, sin: Value): Value {
    const w = this.w;
    const direct = w.op('Mul', [x, cos]);
    const half = w.cast(w.cast(w.op('Div', [w.dim(x, 3), w.constI64([2], true)]), 'int64'), 'int64');
    const axes = w.constI64([3]);
    const x1 = w.op('Slice', [x, w.constI64([0]), w.unsqueeze(half, [0]), axes, w.constI64([1])]);
    const x2 = w.op('Slice', [x, w.unsqueeze(half, [0]), w.constI64([INT64_MAX]), w.constI64([3]), w.constI64([1])]);
    const rotated = w.op('Concat', [w.op('Neg', [x2]), x1], { axis: attr.int(-1) });
    return w.op('Add', [direct, w.op('Mul', [rotated, sin])]);
  }

  /**
   * repeat_kv: [b, kv, s, d] -> [b, kv * n_rep, s, d] by x[:, :, None].expand(b, kv, n_rep, s, d).reshape(...).
   * transformers returns the input unchanged when n_rep is 1, so then there is nothing in the graph.
   */
  private repeatKv(x: Value): Value {
    const { w, c } = this;
    const nRep = c.heads / c.kvHeads;
    if (nRep === 1) return x;
    const [b, kv, s, d] = [0, 1, 2, 3].map((i) => w.dim(x, i));
    const expanded = w.expand(w.unsqueeze(x, [2]), w.shape([b, kv, nRep, s, d]));
    const allHeads = w.op('Mul', [kv, w.constI64([nRep], true)]);
    return w.reshape(expanded, w.shape([b, allHeads, s, d]));
  }
}
