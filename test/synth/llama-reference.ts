// A direct float64 implementation of the Llama forward pass (batch 1), written from the model definition rather than
// from the graph, to check that the synthetic ONNX graph computes what a Llama computes.
import type { Model } from '../../src/analysis/ir/load';
import type { LlamaConfig } from '../../src/synth/llama';

type Mat = Float64Array[]; // rows

function weight(model: Model, name: string): Float64Array {
  const t = model.graph.initializers.get(name);
  if (!t) throw new Error(`no initializer ${name}`);
  return Float64Array.from(t.toNumbers());
}

/** x [S, n] times w stored [n, m] (row-major). */
function matmul(x: Mat, w: Float64Array, m: number): Mat {
  return x.map((row) => {
    const out = new Float64Array(m);
    for (let i = 0; i < row.length; i++) {
      const xi = row[i];
      for (let j = 0; j < m; j++) out[j] += xi * w[i * m + j];
    }
    return out;
  });
}

function rmsNorm(x: Mat, g: Float64Array, eps: number): Mat {
  return x.map((row) => {
    const ms = row.reduce((a, v) => a + v * v, 0) / row.length;
    const inv = 1 / Math.sqrt(ms + eps);
    return row.map((v, i) => v * inv * g[i]);
  });
}

function rope(x: Mat, heads: number, d: number, theta: number): Mat {
  const half = d / 2;
  return x.map((row, pos) => {
    const out = new Float64Array(row.length);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < half; i++) {
        const angle = pos * (1 / theta ** ((2 * i) / d));
        const a = row[h * d + i];
        const b = row[h * d + i + half];
        out[h * d + i] = a * Math.cos(angle) - b * Math.sin(angle);
        out[h * d + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
      }
    }
    return out;
  });
}

export function referenceLogits(model: Model, c: LlamaConfig, ids: number[], mask: number[]): Float64Array[] {
  const S = ids.length;
  const D = c.headDim;
  const eps = c.rmsEps ?? 1e-6;
  const theta = c.ropeTheta ?? 10000;
  const nRep = c.heads / c.kvHeads;
  const embed = weight(model, 'model.embed_tokens.weight');
  let x: Mat = ids.map((id) => embed.slice(id * c.hidden, (id + 1) * c.hidden));
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}`;
    const n = rmsNorm(x, weight(model, `${p}.input_layernorm.weight`), eps);
    const q = rope(matmul(n, weight(model, `${p}.self_attn.q_proj.weight`), c.heads * D), c.heads, D, theta);
    const k = rope(matmul(n, weight(model, `${p}.self_attn.k_proj.weight`), c.kvHeads * D), c.kvHeads, D, theta);
    const v = matmul(n, weight(model, `${p}.self_attn.v_proj.weight`), c.kvHeads * D);
    const ctx: Mat = ids.map(() => new Float64Array(c.heads * D));
    for (let h = 0; h < c.heads; h++) {
      const kh = Math.floor(h / nRep);
      for (let s = 0; s < S; s++) {
        const visible = Array.from({ length: S }, (_, t) => t <= s && mask[t] !== 0);
        const scores = Array.from({ length: S }, (_, t) => {
          let dot = 0;
          for (let i = 0; i < D; i++) dot += q[s][h * D + i] * k[t][kh * D + i];
          return dot / Math.sqrt(D);
        });
        // A row with no visible key gets equal weights on every key, as Softmax over all-minimum scores does.
        const any = visible.some(Boolean);
        const max = Math.max(...scores.filter((_, t) => visible[t] || !any));
        const e = scores.map((sc, t) => (visible[t] ? Math.exp(sc - max) : any ? 0 : 1));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let t = 0; t < S; t++) {
          const pr = e[t] / sum;
          for (let i = 0; i < D; i++) ctx[s][h * D + i] += pr * v[t][kh * D + i];
        }
      }
    }
    const attn = matmul(ctx, weight(model, `${p}.self_attn.o_proj.weight`), c.hidden);
    x = x.map((row, s) => row.map((val, i) => val + attn[s][i]));
    const n2 = rmsNorm(x, weight(model, `${p}.post_attention_layernorm.weight`), eps);
    const gate = matmul(n2, weight(model, `${p}.mlp.gate_proj.weight`), c.intermediate);
    const up = matmul(n2, weight(model, `${p}.mlp.up_proj.weight`), c.intermediate);
    const act = gate.map((row, s) => row.map((g, i) => (g / (1 + Math.exp(-g))) * up[s][i]));
    const down = matmul(act, weight(model, `${p}.mlp.down_proj.weight`), c.hidden);
    x = x.map((row, s) => row.map((val, i) => val + down[s][i]));
  }
  return matmul(rmsNorm(x, weight(model, 'model.norm.weight'), eps), weight(model, 'lm_head.weight'), c.vocab);
}
