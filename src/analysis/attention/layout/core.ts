// The score core of a site as the binding reads it: Q·Kᵀ and P·V, written as MatMul (FusedMatMul) or Einsum, give
// which axes of Q, K and V are the rows, the contracted columns and the batch axes shared with the scores.
import { einsumText, parseEinsum } from '../../ir/einsum';
import type { Ctx } from '../match';
import type { BindInput } from './bind';
import type { Factor, Layout } from './factors';

export interface Side {
  batch: Factor[][];
  rows: Factor[];
  cols: Factor[];
}

/**
 * Q, K and V as the core reads them, their batch axes aligned with the scores' leading axes; `outOrder` says which
 * of [score batch axes..., queries, V's head size] each axis of P·V's output is (absent: in that order).
 */
export interface Core {
  qs: Side;
  ks: Side;
  vs: Side;
  qb: Factor[][];
  kb: Factor[][];
  vb: Factor[][];
  outOrder?: number[];
  equations?: { qk: string; pv: string };
}

export type CoreStep = { ok: true; value: Core } | { ok: false; reason: string };

function sides(l: Layout, transposed: boolean): Side | undefined {
  const r = l.axes.length;
  if (r < 2) return undefined;
  const [a, b] = [l.axes[r - 2], l.axes[r - 1]];
  return { batch: l.axes.slice(0, r - 2), rows: transposed ? b : a, cols: transposed ? a : b };
}

/** MatMul (or FusedMatMul) products: the last two axes multiply, the leading ones broadcast right-aligned. */
export function matMulCore(ql: Layout, kl: Layout, vl: Layout, kTransB: boolean): CoreStep {
  const qs = sides(ql, false);
  // K enters Q·Kᵀ as [.., D, T] (transposed in the graph) or [.., T, D] with FusedMatMul's transB.
  const ks = sides(kl, !kTransB);
  const vs = sides(vl, false);
  if (!qs || !ks || !vs) return { ok: false, reason: 'Q, K or V has fewer than two axes' };
  const rank = Math.max(qs.batch.length, ks.batch.length, vs.batch.length);
  return { ok: true, value: { qs, ks, vs, qb: align(qs.batch, rank), kb: align(ks.batch, rank), vb: align(vs.batch, rank) } };
}

/**
 * Einsum products: each operand's axes are named by the equation, so Q's, K's and V's axes are matched by label
 * whatever order each is in. Q·Kᵀ must contract one label (the head size) and give [shared labels..., queries, keys];
 * P·V must contract the keys and give the shared labels, the queries and V's head size in any order.
 */
export function einsumCore(ctx: Ctx, s: Pick<BindInput, 'qk' | 'pv'>, ql: Layout, kl: Layout, vl: Layout, kTransB: boolean): CoreStep {
  const bad = (reason: string): CoreStep => ({ ok: false, reason });
  const qkEq = s.qk.opType === 'Einsum' ? einsumText(s.qk) : undefined;
  const pvEq = s.pv.opType === 'Einsum' ? einsumText(s.pv) : undefined;
  if (s.qk.opType === 'Einsum' && !qkEq) return bad(`Einsum '${s.qk.name}' has no equation`);
  if (s.pv.opType === 'Einsum' && !pvEq) return bad(`Einsum '${s.pv.name}' has no equation`);
  const qkText = qkEq ?? matMulEquation(ql.axes.length, kl.axes.length, kTransB);
  const qk = qkText ? parseEinsum(qkText, [ql.axes.length, kl.axes.length]) : undefined;
  if (!qkText || !qk) return bad(`Q·Kᵀ equation '${qkText}' does not fit Q and K`);
  const [lq, lk] = qk.inputs;
  const out = qk.output;
  const d = lq.filter((l) => lk.includes(l) && !out.includes(l));
  const qRow = lq.filter((l) => !lk.includes(l) && out.includes(l));
  const kRow = lk.filter((l) => !lq.includes(l) && out.includes(l));
  if (d.length !== 1 || qRow.length !== 1 || kRow.length !== 1) return bad(`Q·Kᵀ equation '${qkText}' does not contract one head-size axis into [queries, keys]`);
  if (lq.some((l) => !out.includes(l) && l !== d[0]) || lk.some((l) => !out.includes(l) && l !== d[0])) return bad(`Q·Kᵀ equation '${qkText}' sums over an axis of one operand`);
  const nb = out.length - 2;
  if (out[nb] !== qRow[0] || out[nb + 1] !== kRow[0]) return bad(`Q·Kᵀ equation '${qkText}' does not end in [queries, keys]`);
  const shared = out.slice(0, nb);
  if (shared.some((l) => !lq.includes(l))) return bad(`Q·Kᵀ equation '${qkText}' broadcasts Q over an axis of K`);
  const axisOf = (l: Layout, labels: string[], label: string): Factor[] => (labels.includes(label) ? l.axes[labels.indexOf(label)] : []);
  const qs: Side = { batch: shared.map((l) => axisOf(ql, lq, l)), rows: axisOf(ql, lq, qRow[0]), cols: axisOf(ql, lq, d[0]) };
  const ks: Side = { batch: shared.map((l) => axisOf(kl, lk, l)), rows: axisOf(kl, lk, kRow[0]), cols: axisOf(kl, lk, d[0]) };
  const rank = ctx.shapes.shape(s.pv.input(0))?.length ?? out.length;
  if (rank !== out.length) return bad('the probabilities have other axes than the scores');
  const pvText = pvEq ?? matMulEquation(rank, vl.axes.length, false);
  const pv = pvText ? parseEinsum(pvText, [rank, vl.axes.length]) : undefined;
  if (!pvText || !pv) return bad(`P·V equation '${pvText}' does not fit P and V`);
  const [lp, lv] = pv.inputs;
  const key = lp[nb + 1];
  const dv = lv.filter((l) => !lp.includes(l) && pv.output.includes(l));
  if (lv.includes(key) === false || pv.output.includes(key) || dv.length !== 1) return bad(`P·V equation '${pvText}' does not contract the keys with V`);
  if (lv.some((l) => l !== key && l !== dv[0] && !lp.slice(0, nb).includes(l))) return bad(`P·V equation '${pvText}' gives V an axis the scores do not have`);
  const standard = [...lp.slice(0, nb), lp[nb], dv[0]];
  const outOrder = pv.output.map((l) => standard.indexOf(l));
  if (outOrder.length !== standard.length || outOrder.some((i) => i < 0)) return bad(`P·V equation '${pvText}' does not give [scores' axes, queries, head size]`);
  const vs: Side = { batch: lp.slice(0, nb).map((l) => axisOf(vl, lv, l)), rows: axisOf(vl, lv, key), cols: axisOf(vl, lv, dv[0]) };
  const identity = outOrder.every((x, i) => x === i);
  return {
    ok: true,
    value: { qs, ks, vs, qb: qs.batch, kb: ks.batch, vb: vs.batch, ...(identity ? {} : { outOrder }), equations: { qk: qkText, pv: pvText } },
  };
}

/** The equation of a MatMul on the other side of an Einsum (batch axes right-aligned; `transB`: FusedMatMul's). */
function matMulEquation(a: number, b: number, transB: boolean): string | undefined {
  if (a < 2 || b < 2 || a > 10 || b > 10) return undefined;
  const batch = (n: number) => 'abcdefgh'.slice(8 - n);
  return `${batch(a - 2)}ij,${batch(b - 2)}${transB ? 'kj' : 'jk'}->${batch(Math.max(a, b) - 2)}ik`;
}

function align(batch: Factor[][], rank: number): Factor[][] {
  return [...Array.from({ length: rank - batch.length }, () => [] as Factor[]), ...batch];
}
