// The node conversions of the opset upgrade (table.ts says which op needs which, and why). Each converter plans one
// node's step from the version before the table entry's opset to that version, on the graph as it was loaded, and
// returns why the node cannot be converted, the edit to make, or null when the node already means the same at the new
// version. upgrade.ts plans every node before it edits any, so a refused model is left untouched.
//
// Attributes that become inputs become int64 initializers (shared between nodes that need the same values) or scalars
// of the input's element type; everything else about a node (name, outputs, other attributes) stays.
import { attr, type GraphBuilder } from '../../analysis/ir/builder';
import type { Node, Value } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';
import { dtypeName } from '../../analysis/onnx/dtypes';
import { attrFloat, attrInt, attrInts, attrString, floatScalar, takeAttr } from './values';

export interface ConvertContext {
  readonly b: GraphBuilder;
  /** Shapes of the graph as loaded (ranks for Softmax, constant scales for Resize). */
  readonly shapes: ShapeInfo;
  /** The opset the model is raised to. */
  readonly target: number;
  /** An int64 vector initializer holding `values`, one per distinct vector. */
  int64(values: readonly bigint[]): Value;
  /** The float element type of a value (ONNX number), when it can be told. */
  floatType(v: Value | null): number | undefined;
}

/** A reason the node cannot be converted, the edit that converts it, or null when nothing needs to change. */
export type Plan = string | (() => void) | null;
export type Converter = (ctx: ConvertContext, node: Node) => Plan;

/** Lists of ints that became inputs: `names` in order, after the data input. */
function listsToInputs(names: readonly string[], required: readonly string[]): Converter {
  return (ctx, n) => {
    const values = names.map((name) => attrInts(n, name));
    if (values.every((v) => v === undefined)) {
      // Already in the input form (a file that declares an older opset than it uses) or nothing to move.
      const missing = required.find((_, i) => !n.input(1 + i));
      return missing ? `has no '${missing}' attribute or input` : null;
    }
    const missing = required.find((r) => values[names.indexOf(r)] === undefined);
    if (missing) return `has no '${missing}' attribute`;
    return () => {
      values.forEach((v, i) => {
        takeAttr(n, names[i]);
        if (v !== undefined) ctx.b.setInput(n, 1 + i, ctx.int64(v));
      });
    };
  };
}

/** Slice-1 -> 10: starts, ends and optional axes become inputs; the same values mean the same slice. */
export const sliceToInputs = listsToInputs(['starts', 'ends', 'axes'], ['starts', 'ends']);

/** TopK-1 -> 10: the int k becomes the one-element int64 input K. */
export const topkToInput: Converter = (ctx, n) => {
  const k = attrInt(n, 'k');
  if (k === undefined) return n.input(1) ? null : "has no 'k' attribute or input";
  return () => {
    takeAttr(n, 'k');
    ctx.b.setInput(n, 1, ctx.int64([k]));
  };
};

/**
 * Split-11 -> 13 (split), Squeeze-11 -> 13 and Unsqueeze-11 -> 13 (axes), ReduceSum-11 -> 13 (axes): the list becomes
 * an int64 input. An empty or absent list gives no input: no `split` means equal parts, no `axes` squeezes every
 * dimension of size 1 or reduces over all axes (noop_with_empty_axes defaults to 0), as before.
 */
export function listToInput(name: string, required: boolean): Converter {
  return (ctx, n) => {
    const values = attrInts(n, name);
    if (values === undefined) return required && !n.input(1) ? `has no '${name}' attribute` : null;
    return () => {
      takeAttr(n, name);
      if (values.length > 0) ctx.b.setInput(n, 1, ctx.int64(values));
    };
  };
}

/** A scalar initializer of element type `dataType` holding the float attribute value `x`. */
function scalarInput(ctx: ConvertContext, n: Node, what: string, dataType: number, x: number): Value {
  const data = floatScalar(dataType, x);
  if (!data) throw new Error(`no ${dtypeName(dataType)} scalar for ${what}`); // callers check the type first
  return ctx.b.initializer(ctx.b.uniqueName(`${n.name}/${what}`), [], data);
}

/** Why a float scalar of the input's type cannot be made (null when it can). */
function floatInputProblem(ctx: ConvertContext, n: Node, what: string): string | null {
  const t = ctx.floatType(n.input(0));
  if (t === undefined) return `the element type of its input cannot be told, and its ${what} input must have that type`;
  if (!floatScalar(t, 0)) return `its input is ${dtypeName(t)}, a type its ${what} input cannot be written in`;
  return null;
}

/** Clip-6 -> 11: min and max become optional scalar inputs of the input's type; an absent one stays absent. */
export const clipToInputs: Converter = (ctx, n) => {
  const min = attrFloat(n, 'min');
  const max = attrFloat(n, 'max');
  if (min === undefined && max === undefined) return null;
  const problem = floatInputProblem(ctx, n, 'min/max');
  if (problem) return problem;
  const t = ctx.floatType(n.input(0))!;
  return () => {
    takeAttr(n, 'min');
    takeAttr(n, 'max');
    if (min !== undefined) ctx.b.setInput(n, 1, scalarInput(ctx, n, 'min', t, min));
    if (max !== undefined) ctx.b.setInput(n, 2, scalarInput(ctx, n, 'max', t, max));
  };
};

/**
 * Pad-2 -> 11: pads becomes an int64 input; value becomes the optional constant_value input of the input's type (only
 * where mode is constant and the value is not +0, the new default; -0 is kept, it pads with a different bit pattern).
 */
export const padToInputs: Converter = (ctx, n) => {
  const pads = attrInts(n, 'pads');
  if (pads === undefined) return n.input(1) ? null : "has no 'pads' attribute";
  const mode = attrString(n, 'mode') ?? 'constant';
  const value = attrFloat(n, 'value') ?? 0;
  const withValue = mode === 'constant' && !Object.is(value, 0);
  if (withValue) {
    const problem = floatInputProblem(ctx, n, 'constant_value');
    if (problem) return problem;
  }
  const t = withValue ? ctx.floatType(n.input(0))! : 0;
  return () => {
    takeAttr(n, 'pads');
    takeAttr(n, 'value');
    ctx.b.setInput(n, 1, ctx.int64(pads));
    if (withValue) ctx.b.setInput(n, 2, scalarInput(ctx, n, 'constant_value', t, value));
  };
};

/**
 * Dropout's mask: its type is the input's before 10 and bool from 10, and onnxruntime fills it with zeros (false) in
 * inference before 12 but with true from 12. A model that reads the mask would see it change, so it is refused.
 */
function maskProblem(n: Node): string | null {
  const mask = n.outputs[1];
  if (!mask || mask.name === '' || (mask.uses.length === 0 && !mask.isGraphOutput)) return null;
  return `its mask output '${mask.name}' is used, and the mask changes type at opset 10 and value in inference at 12`;
}

/** Dropout-7 -> 10: same computation; refused only when the mask is read. */
export const dropoutMask: Converter = (_ctx, n) => maskProblem(n);

/**
 * Dropout-10 -> 12: ratio becomes an optional float input. Without a training_mode input Dropout-12 is inference:
 * the output is the input, whatever the ratio, as Dropout-10 in inference.
 */
export const dropoutToInputs: Converter = (ctx, n) => {
  const problem = maskProblem(n);
  if (problem) return problem;
  const ratio = attrFloat(n, 'ratio');
  if (ratio === undefined) return null;
  return () => {
    takeAttr(n, 'ratio');
    ctx.b.setInput(n, 1, ctx.b.initializer(ctx.b.uniqueName(`${n.name}/ratio`), [], { dtype: 'float32', data: [ratio] }));
  };
};

/**
 * Softmax, LogSoftmax and Hardmax before 13 coerce the input to 2-D at `axis` (default 1) and normalise each row;
 * from 13 they normalise along `axis` alone (default -1). The two agree when axis is the last axis (then nothing
 * changes; an absent axis on a 2-D input is 1 before and -1 after, the same axis). Otherwise the old meaning is written
 * out: Flatten at axis, the op on the last axis of the 2-D result, Reshape back to the input's shape. The original
 * output name moves to the Reshape, so consumers and the value_info that describes it stay right.
 */
export const softmaxFamily: Converter = (ctx, n) => {
  const a = attrInt(n, 'axis');
  const axis = a === undefined ? 1 : Number(a);
  if (axis === -1) return null;
  const rank = ctx.shapes.shape(n.input(0))?.length;
  if (rank !== undefined && axis === rank - 1) return null;
  // The axis is written into a Flatten: one outside the input's axes (or beyond 2^53, where int64 is not exact) cannot be.
  if (!Number.isSafeInteger(axis) || (rank !== undefined && (axis < -rank || axis >= rank))) return `has axis ${a} outside its input's axes`;
  const y = n.outputs[0];
  if (!y || !n.input(0)) return 'has no input or output';
  if (y.uses.some((u) => u.index === -1)) return `its output '${y.name}' is read inside a subgraph, which the upgrade does not edit`;
  return () => {
    const { b } = ctx;
    const x = n.input(0)!;
    const name = y.name;
    const info = y.info;
    const shape = b.op('Shape', [x], { name: `${n.name}/opset13_shape` });
    const flat = b.op('Flatten', [x], { name: `${n.name}/opset13_flatten`, attrs: { axis: attr.int(axis) } });
    b.setInput(n, 0, flat);
    b.setAttribute(n, 'axis', attr.int(-1));
    const back = b.op('Reshape', [y, shape], { name: `${n.name}/opset13_reshape` });
    if (y.isGraphOutput) {
      b.replaceAllUses(y, back, { graphOutputs: true });
    } else {
      b.replaceAllUses(y, back);
      b.renameValue(y, b.uniqueName(`${name}_2d`));
      b.renameValue(back, name).info = info;
    }
    // The op's own output is now the 2-D one: a declared shape carried over from the old name would be wrong.
    n.outputs[0].info = undefined;
  };
};

/** Scatter-9 -> 11: deprecated; ScatterElements is the same operator (inputs, axis, default 0) under its new name. */
export const scatterToElements: Converter = (_ctx, n) => () => {
  n.opType = 'ScatterElements';
};

/** Constant scale values of a Resize/Upsample, when known before running. */
function constantScales(ctx: ConvertContext, n: Node, index: number): number[] | undefined {
  const v = n.input(index);
  const c = v?.constant;
  if (c) return c.toNumbers();
  const vals = ctx.shapes.values(v);
  return vals && vals.every((x): x is number => typeof x === 'number') ? vals : undefined;
}

/**
 * Resize inputs from 11 on are [X, roi, scales]; roi only matters for tf_crop_and_resize, and is optional from 13
 * (before that an empty tensor stands for it).
 */
function scalesToThirdInput(ctx: ConvertContext, n: Node): void {
  const scales = n.input(1);
  ctx.b.setInput(n, 2, scales);
  const roi = ctx.target >= 13 ? null : ctx.b.initializer(ctx.b.uniqueName(`${n.name}/roi`), [0], { dtype: 'float32', data: [] });
  ctx.b.setInput(n, 1, roi);
}

/**
 * Which nearest_mode of Resize-11 picks the pixel that nearest Resize-10 and Upsample pick. Neither spec says how the
 * older ones round; onnxruntime (what every measurement here runs) truncates when an axis is enlarged and rounds up
 * when it is shrunk (its "simple" mode). With the asymmetric transform that is nearest_mode floor when no axis shrinks
 * and ceil when none grows; on an axis with scale 1 the source coordinate is whole and both agree.
 */
function nearestMode(scales: number[] | undefined, op: string): string {
  if (!scales) return `${op} in nearest mode rounds down when enlarging and up when shrinking, and its scales are only known at run time, so no nearest_mode is sure to match`;
  if (scales.every((s) => s >= 1)) return 'floor';
  if (scales.every((s) => s <= 1)) return 'ceil';
  return `its scales [${scales.join(', ')}] enlarge some axes and shrink others, and no single nearest_mode rounds both ways as ${op} does`;
}

/**
 * Resize-10 -> 11: Resize-10 has only the asymmetric transform (x_original = x_resized / scale); 11 defaults to
 * half_pixel, so asymmetric is written out, with the nearest_mode that rounds as Resize-10 did.
 */
export const resize10To11: Converter = (ctx, n) => {
  const mode = attrString(n, 'mode') ?? 'nearest';
  if (!n.input(1)) return 'has no scales input';
  let nearest: string | undefined;
  if (mode === 'nearest') {
    nearest = nearestMode(constantScales(ctx, n, 1), 'Resize-10');
    if (nearest !== 'floor' && nearest !== 'ceil') return nearest;
  } else if (mode !== 'linear') {
    return `mode '${mode}' is not one Resize-10 has`;
  }
  return () => {
    scalesToThirdInput(ctx, n);
    ctx.b.setAttribute(n, 'coordinate_transformation_mode', attr.string('asymmetric'));
    if (nearest) ctx.b.setAttribute(n, 'nearest_mode', attr.string(nearest));
  };
};

/** Resize-11 -> 13: same except that 13 drops the tf_half_pixel_for_nn transform, which is refused. */
export const resize11To13: Converter = (_ctx, n) =>
  attrString(n, 'coordinate_transformation_mode') === 'tf_half_pixel_for_nn'
    ? 'coordinate_transformation_mode tf_half_pixel_for_nn no longer exists at opset 13'
    : null;

/**
 * Upsample -> Resize (Upsample is deprecated at 10 and onnxruntime has no kernel for it after 9). Upsample's scales
 * are at least 1 (onnxruntime enforces it), its nearest mode takes floor(x_resized / scale) and its linear mode uses
 * the same asymmetric coordinates: Resize with asymmetric coordinates and nearest_mode floor. For a target of 10 the
 * Resize-10 form is the same node under the other name.
 */
export const upsampleToResize: Converter = (ctx, n) => {
  const mode = attrString(n, 'mode') ?? 'nearest';
  if (mode !== 'nearest' && mode !== 'linear') return `mode '${mode}' is not one Upsample has`;
  const fromAttr = n.attr('scales')?.floats;
  if (!n.input(1) && !fromAttr) return 'has no scales';
  const scales = fromAttr ? [...fromAttr] : constantScales(ctx, n, 1);
  if (scales?.some((s) => s < 1)) return `its scales [${scales.join(', ')}] go below 1, which Upsample does not allow`;
  return () => {
    if (fromAttr) {
      takeAttr(n, 'scales');
      ctx.b.setInput(n, 1, ctx.b.initializer(ctx.b.uniqueName(`${n.name}/scales`), [fromAttr.length], { dtype: 'float32', data: fromAttr }));
    }
    n.opType = 'Resize';
    ctx.b.setAttribute(n, 'mode', attr.string(mode));
    if (ctx.target < 11) return;
    scalesToThirdInput(ctx, n);
    ctx.b.setAttribute(n, 'coordinate_transformation_mode', attr.string('asymmetric'));
    if (mode === 'nearest') ctx.b.setAttribute(n, 'nearest_mode', attr.string('floor'));
  };
};
