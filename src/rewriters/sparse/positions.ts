// Where a site's queries and keys sit, computed at run time from tensor shapes, so the masks fit any sequence length
// and any cache length. Queries are the last Sq of the Sk positions (past = Sk − Sq): the layout of every KV-cache
// export and of the fused operators' past/present inputs.
import { FUSED_INPUTS, fusedKey } from '../../analysis/attention/fused';
import type { Node, Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import type { SiteOps } from './ops';
import type { Positions } from './pattern';

/** Positions from the scores tensor [..., Sq, Sk] of a written-out site. */
export function positionsFromScores(ops: SiteOps, scores: Value): Positions {
  const shape = ops.shape(scores, 'scores_shape');
  return positionsFrom(ops, ops.dim(shape, -2, 'sq'), ops.dim(shape, -1, 'sk'));
}

export function positionsFrom(ops: SiteOps, sq: Value, sk: Value): Positions {
  const past = ops.op('Sub', [sk, sq], 'past');
  const qAbs = ops.unsqueeze(ops.range(sq, 'q_pos', past), [1], 'q_col');
  const kAbs = ops.unsqueeze(ops.range(sk, 'k_pos'), [0], 'k_row');
  return { sq, sk, past, qAbs, kAbs };
}

/**
 * Positions for a fused attention operator, read from its inputs as each operator lays them out:
 * - onnx Attention: Q [B, Sq, *] or [B, H, Sq, D]; K likewise; past_key (input 4) [B, Hkv, P, D];
 * - com.microsoft MultiHeadAttention: query [B, Sq, *] (or packed [B, S, H, 3, D]); key [B, Skv, *], [B, H, Skv, D]
 *   or packed [B, Skv, H, 2, D], absent when QKV is packed; past_key (input 6) [B, H, P, D];
 * - com.microsoft Attention: input [B, S, *]; past (input 4) [2, B, H, P, D];
 * - com.microsoft GroupQueryAttention: query [B, Sq, *]; total_sequence_length (input 6) is Sk.
 */
export function positionsFused(ops: SiteOps, shapes: ShapeInfo, n: Node): Positions {
  const rank = (v: Value | null) => shapes.shape(v)?.length;
  const seqAxis = (v: Value, fourD: number) => (rank(v) === 4 ? fourD : 1);
  const dimOf = (v: Value, axis: number, what: string) => ops.dim(ops.shape(v, `${what}_shape`), axis, what);
  const q = n.input(0)!;
  const key = fusedKey(n);
  const sq = dimOf(q, key === 'onnx.Attention' ? seqAxis(q, 2) : 1, 'sq');
  let sk: Value;
  if (key === 'com.microsoft.GroupQueryAttention') {
    sk = ops.cast(n.input(FUSED_INPUTS[key].totalSequenceLength)!, 'int64', 'sk');
  } else if (key === 'com.microsoft.Attention') {
    const past = n.input(FUSED_INPUTS[key].past);
    sk = past ? ops.op('Add', [sq, dimOf(past, 3, 'past_len')], 'sk') : sq;
  } else {
    const k = n.input(1);
    const pastKey = n.input(key === 'onnx.Attention' ? FUSED_INPUTS[key].pastKey : FUSED_INPUTS['com.microsoft.MultiHeadAttention'].pastKey);
    const skv = k ? dimOf(k, rank(k) === 4 ? 2 : 1, 'skv') : sq;
    sk = pastKey ? ops.op('Add', [skv, dimOf(pastKey, 2, 'past_len')], 'sk') : skv;
  }
  return positionsFrom(ops, sq, sk);
}
