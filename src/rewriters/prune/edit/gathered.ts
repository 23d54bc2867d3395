// Weights and biases that an earlier prune left as a Gather of constant indices from a weight that layers share
// (shared-selections.ts). Reading them as the selection they are lets a pruned model be pruned again.
import { constantOf, type Value } from '../../../analysis/ir/graph';
import { DataType } from '../../../analysis/onnx/dtypes';
import type { Tensor } from '../../../analysis/onnx/tensor';
import { readFloats } from './weights';

/** `Gather(source, constant 1-D integer indices)` behind v, with its axis; undefined for anything else. */
export function constantGather(v: Value | null | undefined): { source: Value; axis: number; indices: number[] } | undefined {
  const g = v?.producer;
  if (!g || g.opType !== 'Gather' || g.domain !== '') return undefined;
  const source = g.input(0);
  const t = constantOf(g.input(1));
  if (!source || !t || t.dims.length !== 1 || (t.dataType !== DataType.INT64 && t.dataType !== DataType.INT32)) return undefined;
  return { source, axis: Number(g.attr('axis')?.i ?? 0), indices: t.toNumbers() };
}

/** Gather indices as entries of an axis of `along` entries (negative ones count from the end); undefined when out of range. */
export function entriesWithin(indices: readonly number[], along: number): number[] | undefined {
  const out = indices.map((e) => (e < 0 ? e + along : e));
  return out.every((e) => Number.isSafeInteger(e) && e >= 0 && e < along) ? out : undefined;
}

/** A bias as the node reads it: its values, and the stored vector they come from (all of it, or `entries` of it). */
export interface BiasView {
  data: Float64Array;
  tensor: Tensor;
  /** The value holding the stored vector. */
  source: Value;
  entries?: number[];
}

/** The bias behind v: a constant vector, or a Gather of one; undefined otherwise. */
export function biasView(v: Value | null | undefined): BiasView | undefined {
  const t = constantOf(v);
  if (v && t) return { data: readFloats(t), tensor: t, source: v };
  const g = constantGather(v);
  const whole = constantOf(g?.source);
  if (!g || !whole || whole.dims.length !== 1 || g.axis !== 0) return undefined;
  const entries = entriesWithin(g.indices, whole.size);
  if (!entries) return undefined;
  const all = readFloats(whole);
  return { data: Float64Array.from(entries, (e) => all[e]), tensor: whole, source: g.source, entries };
}
