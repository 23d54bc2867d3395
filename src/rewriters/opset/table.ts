// Every default-domain (ai.onnx) operator that got a new version at opsets 10 to 13, and what raising a model past
// that version takes: `same` (the version bump alone keeps the meaning of every node an older model can hold) or a
// converter (convert.ts). Read from the ONNX operator changelog (docs/Changelog.md of onnx/onnx), version by version;
// docs/opsets.md summarises it. Operators first defined at 10 to 13 are not listed: a model that declares an older
// opset cannot hold them. No operator is refused as such: a converter refuses only a node it cannot convert exactly
// (and says why).
import {
  clipToInputs, dropoutMask, dropoutToInputs, listToInput, padToInputs, resize10To11, resize11To13, scatterToElements,
  sliceToInputs, softmaxFamily, topkToInput, upsampleToResize, type Converter,
} from './convert';

export interface OpChange {
  op: string;
  /** The opset that introduced the new version. */
  at: number;
  how: 'same' | Converter;
  why: string;
}

/** The oldest opset the table converts from, and the newest it converts to. */
export const OLDEST_SOURCE = 9;
export const NEWEST_TARGET = 13;

const TYPES = 'more element types (bfloat16 at 13); same meaning';
const NEG_AXES = 'negative axes (or indices) accepted; the same meaning for every value an older version accepts';
const DEFAULTS = (what: string) => `${what}; its default is the old behaviour`;

const same = (op: string, at: number, why: string): OpChange => ({ op, at, how: 'same', why });
const conv = (op: string, at: number, how: Converter, why: string): OpChange => ({ op, at, how, why });
/** Ops whose only change between 9 and 13 is the element types of version 13. */
const types13 = (...ops: string[]) => ops.map((op) => same(op, 13, TYPES));
/** Reduce ops other than ReduceSum: negative axes at 11, types at 13; axes stay an attribute until 18. */
const reduce = (op: string, ...more: OpChange[]) => [same(op, 11, NEG_AXES), ...more, same(op, 13, `${TYPES}; axes stay an attribute until 18`)];

export const OPSET_CHANGES: readonly OpChange[] = [
  ...types13('Abs', 'Add', 'Ceil', 'Div', 'Erf', 'Exp', 'Expand', 'Floor', 'GatherElements', 'Greater', 'Identity', 'IsNaN',
    'LRN', 'Less', 'Log', 'MatMul', 'Mean', 'MeanVarianceNormalization', 'Mod', 'Mul', 'Neg', 'NegativeLogLikelihoodLoss',
    'NonZero', 'Reciprocal', 'Relu', 'Reshape', 'ScatterElements', 'ScatterND', 'Shape', 'Sigmoid', 'Sign', 'Size',
    'SoftmaxCrossEntropyLoss', 'SpaceToDepth', 'Sqrt', 'Sub', 'Sum', 'Tanh', 'Tile', 'Transpose'),

  same('ArgMax', 11, NEG_AXES), same('ArgMax', 12, DEFAULTS('select_last_index added (0: the first maximum)')), same('ArgMax', 13, TYPES),
  same('ArgMin', 11, NEG_AXES), same('ArgMin', 12, DEFAULTS('select_last_index added (0: the first minimum)')), same('ArgMin', 13, TYPES),
  same('AveragePool', 10, DEFAULTS('ceil_mode added (0: floor)')),
  same('AveragePool', 11, 'auto_pad and the default strides documented more precisely; same computation'),
  same('Cast', 13, `${TYPES}; conversion rules written down, as onnxruntime already applied them`),
  conv('Clip', 11, clipToInputs, 'min and max move from float attributes to optional scalar inputs of the input type'),
  same('Clip', 12, 'integer types'), same('Clip', 13, `${TYPES}; min > max documented`),
  same('Compress', 11, NEG_AXES),
  same('Concat', 11, NEG_AXES), same('Concat', 13, TYPES),
  same('Constant', 11, 'sparse_value added'), same('Constant', 12, 'value_float(s), value_int(s), value_string(s) added'),
  same('Constant', 13, TYPES),
  same('Conv', 11, 'auto_pad and default strides/dilations documented more precisely; same computation'),
  same('ConvTranspose', 11, 'auto_pad (whose SAME_UPPER/LOWER text was swapped before), output_padding and defaults documented; same computation'),
  same('DepthToSpace', 11, DEFAULTS('mode added (DCR)')), same('DepthToSpace', 13, TYPES),
  same('DequantizeLinear', 13, 'per-axis scales added; a scalar scale, all 10 allows, means the same'),
  conv('Dropout', 10, dropoutMask, 'mask becomes bool; the output is unchanged (a used mask is refused)'),
  conv('Dropout', 12, dropoutToInputs, 'ratio moves to an optional input; without training_mode the output is the input, as in inference before (a used mask is refused: onnxruntime gives false before 12, true from 12)'),
  same('Dropout', 13, TYPES),
  same('Equal', 11, 'more element types'), same('Equal', 13, TYPES),
  same('Flatten', 11, NEG_AXES), same('Flatten', 13, TYPES),
  same('Gather', 11, 'negative indices count from the back (out of bounds, an error, before)'), same('Gather', 13, TYPES),
  same('GatherND', 12, DEFAULTS('batch_dims added (0)')), same('GatherND', 13, TYPES),
  same('Gemm', 11, 'C becomes optional'), same('Gemm', 13, TYPES),
  same('Hardmax', 11, NEG_AXES),
  conv('Hardmax', 13, softmaxFamily, 'works on one axis instead of the input coerced to 2-D at axis (default 1 -> -1): same on the last axis, written out as Flatten, Hardmax, Reshape otherwise'),
  same('If', 11, 'branches may produce different shapes'), same('If', 13, 'sequence types'),
  same('LogSoftmax', 11, NEG_AXES),
  conv('LogSoftmax', 13, softmaxFamily, 'works on one axis instead of the input coerced to 2-D at axis (default 1 -> -1): same on the last axis, written out as Flatten, LogSoftmax, Reshape otherwise'),
  same('Loop', 11, 'trip count and condition may both be omitted'), same('Loop', 13, 'sequence types'),
  same('LpPool', 11, 'auto_pad and default strides documented more precisely; same computation'),
  same('Max', 12, 'integer types'), same('Max', 13, TYPES),
  same('MaxPool', 10, DEFAULTS('ceil_mode and dilations added (floor, 1)')),
  same('MaxPool', 11, 'default strides and dilations documented'), same('MaxPool', 12, 'int8 and uint8'),
  same('MaxUnpool', 11, 'default strides documented'),
  same('Min', 12, 'integer types'), same('Min', 13, TYPES),
  same('NonMaxSuppression', 11, 'the IoU threshold documented as strict'),
  same('OneHot', 11, 'negative indices count from the back where 9 turned them into all off_value; onnxruntime runs OneHot 9 to 11 with one kernel that already counts them from the back, so its results do not change'),
  conv('Pad', 11, padToInputs, 'pads and value move from attributes to inputs (pads int64, constant_value of the input type)'),
  same('Pad', 13, TYPES),
  same('Pow', 12, 'integer types'), same('Pow', 13, TYPES),
  same('QuantizeLinear', 13, 'per-axis scales added; a scalar scale, all 10 allows, means the same'),
  ...reduce('ReduceL1'), ...reduce('ReduceL2'), ...reduce('ReduceLogSum'), ...reduce('ReduceLogSumExp'),
  ...reduce('ReduceMax', same('ReduceMax', 12, 'int8 and uint8')), ...reduce('ReduceMean'),
  ...reduce('ReduceMin', same('ReduceMin', 12, 'int8 and uint8')), ...reduce('ReduceProd'), ...reduce('ReduceSumSquare'),
  same('ReduceSum', 11, NEG_AXES),
  conv('ReduceSum', 13, listToInput('axes', false), 'axes move to an optional input (no axes: all, as before, since noop_with_empty_axes defaults to 0)'),
  conv('Resize', 11, resize10To11, 'roi input and coordinate_transformation_mode added with a new default (half_pixel): the asymmetric transform of 10 and its rounding are written out'),
  conv('Resize', 13, resize11To13, 'roi and scales optional; the tf_half_pixel_for_nn transform is dropped (refused)'),
  same('Scan', 11, NEG_AXES),
  conv('Scatter', 11, scatterToElements, 'deprecated: the same operator is ScatterElements'),
  conv('Slice', 10, sliceToInputs, 'starts, ends and axes move from attributes to inputs (and steps are added)'),
  same('Slice', 11, NEG_AXES), same('Slice', 13, TYPES),
  same('Softmax', 11, NEG_AXES),
  conv('Softmax', 13, softmaxFamily, 'works on one axis instead of the input coerced to 2-D at axis (default 1 -> -1): same on the last axis, written out as Flatten, Softmax, Reshape otherwise'),
  same('Split', 11, NEG_AXES),
  conv('Split', 13, listToInput('split', false), 'split moves from an attribute to an optional input'),
  same('Squeeze', 11, NEG_AXES),
  conv('Squeeze', 13, listToInput('axes', false), 'axes move from an attribute to an optional input'),
  same('ThresholdedRelu', 10, 'moved from the experimental set; same formula'),
  conv('TopK', 10, topkToInput, 'k moves from an attribute to the input K'),
  same('TopK', 11, DEFAULTS('largest and sorted added (1, 1); negative axis accepted')),
  same('Unsqueeze', 11, NEG_AXES),
  conv('Unsqueeze', 13, listToInput('axes', true), 'axes move from an attribute to an input'),
  conv('Upsample', 10, upsampleToResize, 'deprecated (onnxruntime has no kernel after 9): written as Resize with the same coordinates and rounding'),
];

const byOp = new Map<string, OpChange[]>();
for (const c of OPSET_CHANGES) byOp.set(c.op, [...(byOp.get(c.op) ?? []), c].sort((a, b) => a.at - b.at));

/** The changes a default-domain node of `op` goes through from opset `from` to `to`, oldest first. */
export function changesFor(op: string, from: number, to: number): OpChange[] {
  return (byOp.get(op) ?? []).filter((c) => c.at > from && c.at <= to);
}
