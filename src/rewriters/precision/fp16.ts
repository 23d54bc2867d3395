// `--precision fp16`: the model's float32 weights and computation become float16, its interface stays float32 (a
// Cast after each float input, a Cast before each float output, under the output's own name), and the nodes
// float-region.ts names stay in float32 with Casts at the boundary. Float32 constants read by float16 code are
// converted once (values beyond float16's range are clamped to ±65504, as a masking constant like float32's lowest
// value must stay finite); those read only by float32 code stay as they are. A float32 result that goes down into
// float16 code from the float32 region other than out of a normalisation or softmax (a mask) is clamped to float16's
// range first, so that a masking value becomes −65504 rather than −∞ (a row whose every key is masked then stays
// finite, as in the float32 model).
import { attr, type GraphBuilder } from '../../analysis/ir/builder';
import type { Node, Value } from '../../analysis/ir/graph';
import { floatToHalf } from '../../analysis/numeric/float16';
import { DataType } from '../../analysis/onnx/dtypes';
import { FloatTypes, float32Nodes } from './float-region';

export interface PrecisionReport {
  precision: 'fp16';
  /** Float32 initializers and constants converted, their bytes before and after. */
  convertedConstants: number;
  bytesBefore: number;
  bytesAfter: number;
  /** Nodes kept in float32, by operator. */
  keptFloat32: Record<string, number>;
  /** Casts added at the interface and at the float32 region's boundary. */
  castsAdded: number;
  /** Constant elements beyond float16's range, clamped to ±65504. */
  clampedElements: number;
}

const HALF_MAX = 65504;
const SOFT_OUTPUTS = new Set(['Softmax', 'LogSoftmax', 'LayerNormalization', 'SimplifiedLayerNormalization', 'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization', 'RMSNormalization']);

/**
 * Outputs within float16's range, which need no clamp: a normalisation's, or one passed on by a Cast or Identity
 * (transformers' Llama casts its float32 probabilities to the model's type, a Cast to float32 in a float32 export).
 */
function boundedOutput(n: Node): boolean {
  let from: Node | null | undefined = n;
  for (let i = 0; i < 4 && from && (from.opType === 'Cast' || from.opType === 'Identity'); i++) from = from.input(0)?.producer;
  return !!from && SOFT_OUTPUTS.has(from.opType);
}

export function convertToFloat16(b: GraphBuilder): PrecisionReport {
  b.sort();
  const g = b.graph;
  const types = new FloatTypes();
  const nodes = [...g.nodes];
  const kept = float32Nodes(nodes, types);
  const report: PrecisionReport = { precision: 'fp16', convertedConstants: 0, bytesBefore: 0, bytesAfter: 0, keptFloat32: {}, castsAdded: 0, clampedElements: 0 };
  for (const n of kept) report.keptFloat32[n.opType] = (report.keptFloat32[n.opType] ?? 0) + 1;
  // Decide every float32 value's float16 stand-in before editing (types are read from the unedited graph).
  const f32 = new Map<Value, boolean>();
  for (const n of nodes) for (const v of [...n.inputs, ...n.outputs]) if (v && !f32.has(v)) f32.set(v, types.isF32(v));
  for (const v of g.outputs) if (!f32.has(v)) f32.set(v, types.isF32(v));

  const down = new Map<Value, Value>();
  const up = new Map<Value, Value>();
  const cast = (v: Value, to: number, what: string): Value => {
    report.castsAdded++;
    return b.op('Cast', [v], { name: `${v.name}::fp16/${what}`, attrs: { to: attr.int(to) } });
  };
  const toHalf = (v: Value): Value => {
    const done = down.get(v);
    if (done) return done;
    let h: Value;
    if (v.constant && !v.isGraphInput) h = halfConstant(b, v, report);
    else if (v.producer && kept.has(v.producer) && !boundedOutput(v.producer)) {
      const lim = (x: number, w: string) => b.initializer(`${v.name}::fp16/${w}`, [], { dtype: 'float32', data: [x] });
      h = cast(b.op('Clip', [v, lim(-HALF_MAX, 'lo'), lim(HALF_MAX, 'hi')], { name: `${v.name}::fp16/clip` }), DataType.FLOAT16, 'down');
    } else h = cast(v, DataType.FLOAT16, 'down');
    down.set(v, h);
    return h;
  };
  const toSingle = (v: Value): Value => {
    const done = up.get(v);
    if (done) return done;
    const s = cast(v, DataType.FLOAT, 'up');
    up.set(v, s);
    return s;
  };

  // A float fill (ConstantOfShape) is float16 when any float16 node reads it, else it stays float32.
  const halfFills = new Set(nodes.filter((n) => n.opType === 'ConstantOfShape' && f32.get(n.outputs[0]) && n.outputs[0].uses.some((u) => !kept.has(u.node))));
  const isHalf = (v: Value) => {
    const p = v.producer;
    if (!p || v.isGraphInput || v.constant) return false;
    return p.opType === 'ConstantOfShape' ? halfFills.has(p) : !kept.has(p);
  };
  for (const n of nodes) {
    const isKept = kept.has(n);
    if (n.opType === 'Constant' || (n.opType === 'ConstantOfShape' && !halfFills.has(n))) continue;
    if (!isKept) retypeAttributes(b, n);
    n.inputs.forEach((v, i) => {
      if (!v || !f32.get(v)) return;
      if (isKept && isHalf(v)) b.setInput(n, i, toSingle(v));
      else if (!isKept && !isHalf(v)) b.setInput(n, i, toHalf(v));
    });
    if (!isKept) for (const o of n.outputs) if (f32.get(o)) retypeInfo(o, DataType.FLOAT16);
  }
  // Float outputs computed in float16 go back to float32 under their own names.
  for (const o of [...g.outputs]) {
    if (!f32.get(o) || !o.producer || kept.has(o.producer)) continue;
    const c = cast(o, DataType.FLOAT, 'output');
    const info = o.info;
    // Only the output's role moves to the Cast; float16 nodes that read the value (a KV cache's present) keep it.
    const named = b.replaceAllUses(o, c, { graphOutputs: true, except: o.uses.map((u) => u.node) });
    if (info) named.info = { ...info, type: { ...info.type, tensorType: { ...info.type?.tensorType, elemType: DataType.FLOAT } } };
  }
  b.removeUnused();
  return report;
}

/** The float16 copy of a float32 constant (clamped into float16's range). */
function halfConstant(b: GraphBuilder, v: Value, report: PrecisionReport): Value {
  const t = v.constant!;
  const values = t.toNumbers();
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    let x = values[i];
    if (Math.abs(x) > HALF_MAX && Number.isFinite(x)) {
      x = Math.sign(x) * HALF_MAX;
      report.clampedElements++;
    }
    bits[i] = floatToHalf(x);
  }
  report.convertedConstants++;
  report.bytesBefore += 4 * values.length;
  report.bytesAfter += 2 * values.length;
  return b.initializer(`${v.name}_fp16`, t.dims, { dtype: 'float16', data: bits });
}

/** Attributes that name float32 as a result type, in a node that now computes in float16. */
function retypeAttributes(b: GraphBuilder, n: Node): void {
  if (n.domain !== '') return;
  if (n.opType === 'Cast' && Number(String(n.attr('to')?.i ?? 0)) === DataType.FLOAT) b.setAttribute(n, 'to', attr.int(DataType.FLOAT16));
  if (n.opType === 'ConstantOfShape') {
    const t = n.attr('value')?.t as { dataType?: number } | undefined;
    if (!t || t.dataType === DataType.FLOAT) {
      const fill = fillValue(n);
      b.setAttribute(n, 'value', attr.tensor([1], { dtype: 'float16', data: Uint16Array.of(floatToHalf(Math.max(-HALF_MAX, Math.min(HALF_MAX, fill)))) }));
    }
  }
}

function fillValue(n: Node): number {
  const t = n.attr('value')?.t as { floatData?: number[]; rawData?: Uint8Array } | undefined;
  if (!t) return 0;
  if (t.floatData?.length) return t.floatData[0];
  if (t.rawData && t.rawData.length >= 4) return new DataView(t.rawData.buffer, t.rawData.byteOffset, 4).getFloat32(0, true);
  return 0;
}

/** A declared float32 value type (value_info) changed to `to`. */
function retypeInfo(v: Value, to: number): void {
  const info = v.info;
  if (info?.type?.tensorType?.elemType !== DataType.FLOAT) return;
  v.info = { ...info, type: { ...info.type, tensorType: { ...info.type.tensorType, elemType: to } } };
}
