// Head edits of weights that several layers share. Exporters store equal weights once (cloned layers, such as
// torch.nn.TransformerEncoder's, deduplicated), and pruning different heads per layer would give each layer its own
// sliced copy: the file would grow although heads were removed. Instead, once a rule has edited every site, the
// entries kept from one weight are stored once (the union over the layers, or the original weight itself when
// something still reads it whole) and each layer takes its own entries from it with a Gather of constant indices,
// which onnxruntime folds into a constant when the session loads (no per-run cost).
import { attr, type GraphBuilder } from '../../../analysis/ir/builder';
import type { Value } from '../../../analysis/ir/graph';
import { i64 } from '../../../analysis/ir/tensor-data';
import type { Tensor } from '../../../analysis/onnx/tensor';
import type { AxisBlock } from './mix';

/** A weight or bias written as a selection of entries of another along one axis (both as the reading node sees them). */
export interface Selection {
  /** The new initializer. */
  value: Value;
  /** What the node read before: the stored weight, an Identity of it, or its Transpose. */
  origin: Value;
  /** The stored tensor behind origin, and how origin sees it ('' as stored, 'T' transposed). */
  tensor: Tensor;
  view: string;
  axis: 0 | 1;
  /** Old entries, in the order the new weight holds them. */
  entries: number[];
  /** Entries along the axis in origin. */
  length: number;
  /** A new initializer holding the given old entries along the axis, in their order. */
  store(name: string, entries: number[]): Value;
}

const pending = new WeakMap<GraphBuilder, Selection[]>();

/** Remembers a selection until the rule's edits are done (see shareSelections). */
export function recordSelection(builder: GraphBuilder, s: Selection): void {
  const list = pending.get(builder) ?? [];
  list.push(s);
  pending.set(builder, list);
}

/** The entries a list of pure-copy blocks selects, or undefined when some block mixes entries. */
export function selectedEntries(blocks: readonly AxisBlock[]): number[] | undefined {
  const out: number[] = [];
  for (const b of blocks) {
    if (b.from.length !== 1 || b.from[0].weight !== 1) return undefined;
    for (let k = 0; k < b.size; k++) out.push(b.from[0].at + k);
  }
  return out;
}

/**
 * Makes the selections recorded since the last call that come from one weight share their storage, where that stores
 * less than a copy each. Call once a rule has edited all of its sites, so that every layer's selection is known.
 */
export function shareSelections(builder: GraphBuilder): void {
  const list = pending.get(builder);
  pending.delete(builder);
  if (!list?.length) return;
  builder.removeUnused();
  const live = list.filter((s) => isLive(builder, s.value));
  for (const group of groups(live)) shareGroup(builder, group);
  builder.removeUnused();
}

function isLive(builder: GraphBuilder, v: Value): boolean {
  return builder.graph.values.get(v.name) === v && v.uses.length > 0;
}

/** Selections of the same stored tensor, seen the same way, along the same axis. */
function groups(list: Selection[]): Selection[][] {
  const byTensor = new Map<Tensor, Map<string, Selection[]>>();
  for (const s of list) {
    const key = `${s.view}:${s.axis}`;
    const m = byTensor.get(s.tensor) ?? new Map<string, Selection[]>();
    m.set(key, [...(m.get(key) ?? []), s]);
    byTensor.set(s.tensor, m);
  }
  return [...byTensor.values()].flatMap((m) => [...m.values()]);
}

function shareGroup(builder: GraphBuilder, group: Selection[]): void {
  // Something still reads the whole weight (a layer that was not pruned): every selection can read it too.
  const whole = group.map((s) => s.origin).find((o) => isLive(builder, o));
  if (whole) {
    for (const s of group) replace(builder, s, whole, s.length, s.entries);
    return;
  }
  if (group.length < 2) return;
  const union = [...new Set(group.flatMap((s) => s.entries))].sort((a, b) => a - b);
  const copies = group.reduce((n, s) => n + s.entries.length, 0);
  if (union.length >= copies) return; // disjoint selections: a copy each stores no more
  const stored = group[0].store(builder.uniqueName(`${group[0].value.name}_shared`), union);
  const position = new Map(union.map((e, i) => [e, i]));
  for (const s of group) replace(builder, s, stored, union.length, s.entries.map((e) => position.get(e)!));
}

/**
 * Points every reader of the selection at `Gather(source, indices)` along its axis, or at `source` itself when the
 * indices take all of its `length` entries in order.
 */
function replace(builder: GraphBuilder, s: Selection, source: Value, length: number, indices: number[]): void {
  const all = indices.length === length && indices.every((e, i) => e === i);
  const taken = all
    ? source
    : builder.op('Gather', [source, builder.initializer(builder.uniqueName(`${s.value.name}_entries`), [indices.length], i64(indices))], {
        name: `${s.value.name}/gather`,
        attrs: { axis: attr.int(s.axis) },
      });
  builder.replaceAllUses(s.value, taken);
}

/** Sorted entries as blocks of consecutive runs. */
export function runs(sorted: readonly number[]): AxisBlock[] {
  const out: { size: number; from: { at: number; weight: number }[] }[] = [];
  for (const e of sorted) {
    const last = out[out.length - 1];
    if (last && last.from[0].at + last.size === e) last.size++;
    else out.push({ size: 1, from: [{ at: e, weight: 1 }] });
  }
  return out;
}
