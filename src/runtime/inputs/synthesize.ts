// Builds a complete, valid set of inputs for a model from its input descriptions alone, so that any model can be run,
// timed and profiled without the user supplying data.
//
// Symbolic dimensions are resolved by what each axis *means* for the input's role (axis 1 of input_ids is the new
// tokens, axis 1 of a 2-D attention mask is past + new tokens, axis 2 of a 4-D KV cache is the past length, ...), not
// by the symbol's name: exporters name them inconsistently (torch.export writes `s21` for the batch of one input and
// `s6` for the batch of another). Where the analysis read an input's layout off the graph (`InputInfo.axes`: a
// sequence-first [sequence, batch] model), that layout decides; the positional meanings are the fallback.
//
// Masks attend to every key: 1/true where the analysis found that true means attend, 0/false where it means padding
// (torch.nn's key_padding_mask), with a warning where it found neither.
import { ENCODER_INPUT_NAME } from '../../analysis/input-names';
import { DEFAULT_IMAGE_SIZE } from '../../analysis/report/units';
import type { Dim, InputInfo } from '../../analysis/report/types';
import { Rng, hashString } from '../../analysis/numeric/random';
import { floatToHalf } from '../../analysis/numeric/float16';
import { type Dtype, type HostTensor, allocate, elementCount, isDtype } from '../tensor';

export interface SynthesisOptions {
  /** Default 1. */
  batch?: number;
  /** New tokens per sequence. Default 16. */
  seq?: number;
  /** Tokens already in the KV cache. Default 0 (empty caches). */
  past?: number;
  /** Contents of a non-empty KV cache. Default `random` (standard normal). */
  kvCache?: 'random' | 'zeros';
  /** Default 0. */
  seed?: number;
  /** Token-id range for inputs whose InputInfo has no vocabSize. */
  vocabSize?: number;
  /** Symbolic image height/width. Default DEFAULT_IMAGE_SIZE (224). */
  imageSize?: number;
  /** Symbolic mel-bin count and frame count of audio features. Defaults 80 and 3000 (Whisper's). */
  melBins?: number;
  audioFrames?: number;
  /** Symbolic hidden/feature sizes of float inputs. Default 64. */
  hiddenSize?: number;
}

export interface ResolvedShape {
  batch: number;
  seq: number;
  past: number;
  /**
   * Whether any input has a sequence axis. A vision model's token count comes from its image size, not from `seq`:
   * there `seq` is only the unused default and must not be reported as the model's length.
   */
  hasSequence: boolean;
}

export interface SynthesizedInputs {
  tensors: Record<string, HostTensor>;
  shape: ResolvedShape;
  warnings: string[];
}

type AxisMeaning =
  | 'batch' | 'seq' | 'total' | 'past' | 'encoder' | 'channels' | 'height' | 'width' | 'mel' | 'frames' | 'samples' | 'hidden' | 'one';

/**
 * An encoder-decoder's decoder takes the encoder's keys and values as cache inputs and a mask over the encoder's
 * positions (optimum's `past_key_values.0.encoder.key`, `encoder_attention_mask`): their length is the encoder's, not
 * the decoder's past, and the two must agree (they are added together in the cross-attention).
 */
function axisMeaning(info: InputInfo, axis: number, sym: string): AxisMeaning {
  const m = positionalMeaning(info, axis, sym);
  return (m === 'past' || m === 'total') && ENCODER_INPUT_NAME.test(info.name) ? 'encoder' : m;
}

function positionalMeaning(info: InputInfo, axis: number, sym: string): AxisMeaning {
  const rank = info.shape.length;
  const s = sym.toLowerCase();
  if (info.role === 'cache_position') return 'seq';
  if (info.axes && (info.axes.sequence !== undefined || info.axes.batch !== undefined)) {
    // A mask's sequence axis spans the keys: past + new tokens.
    if (axis === info.axes.sequence) return info.role === 'attention_mask' ? 'total' : 'seq';
    if (axis === info.axes.query) return 'seq';
    if (axis === info.axes.batch) return 'batch';
    // Any other axis is neither: a leading batch when only the sequence is known, else features (or a unit axis).
    if (info.axes.batch === undefined && info.axes.query === undefined && axis === 0) return 'batch';
    return info.role === 'hidden_states' ? 'hidden' : 'one';
  }
  if (axis === 0) return 'batch';
  switch (info.role) {
    case 'input_ids':
    case 'token_type_ids':
    case 'position_ids':
      return 'seq';
    case 'attention_mask':
      // [batch, past+seq] or the 4-D form [batch, 1, seq, past+seq].
      if (rank === 4) return axis === 1 ? 'one' : axis === 2 ? 'seq' : 'total';
      return 'total';
    case 'past_key':
    case 'past_value': {
      if (/past|seq|len|total|cache/.test(s)) return 'past';
      // The one symbolic axis besides the batch is the cache length in every layout exporters use; with no such axis
      // (a fully fixed shape) it is the second to last, as in [batch, heads, past, head_dim].
      const symbolic = info.shape.map((d, i) => (typeof d === 'number' ? -1 : i)).filter((i) => i > 0);
      if (symbolic.length === 1) return symbolic[0] === axis ? 'past' : 'hidden';
      return axis === rank - 2 ? 'past' : 'hidden';
    }
    case 'pixel_values':
      return rank === 4 ? (axis === 1 ? 'channels' : axis === 2 ? 'height' : 'width') : 'hidden';
    case 'audio_features':
      return rank === 2 ? 'samples' : axis === 1 ? 'mel' : 'frames';
    case 'hidden_states':
      return axis === 1 ? 'seq' : 'hidden';
    default:
      if (/past/.test(s)) return 'past';
      if (/total|all_seq/.test(s)) return 'total';
      return axis === 1 ? 'seq' : 'hidden';
  }
}

function resolveDim(dim: Dim, meaning: AxisMeaning, shape: ResolvedShape, o: SynthesisOptions): number {
  if (typeof dim === 'number') return dim;
  switch (meaning) {
    case 'batch': return shape.batch;
    case 'seq': return shape.seq;
    case 'past': return shape.past;
    case 'total': return shape.past + shape.seq;
    // The encoder's positions: as many as the tokens asked for (the decoder's own are `seq` new and `past` cached).
    case 'encoder': return shape.seq;
    case 'channels': return 3;
    case 'height': case 'width': return o.imageSize ?? DEFAULT_IMAGE_SIZE;
    case 'mel': return o.melBins ?? 80;
    case 'frames': return o.audioFrames ?? 3000;
    case 'samples': return 16000;
    case 'hidden': return o.hiddenSize ?? 64;
    case 'one': return 1;
  }
}

/**
 * Reads batch/seq/past off tensors: those the caller gave (so the synthesized rest agrees with them), and at the end
 * all of them (so the reported shape is what was fed, fixed dimensions included).
 */
function shapeFromGiven(infos: InputInfo[], given: Record<string, HostTensor>, base: ResolvedShape): ResolvedShape {
  const shape = { ...base };
  let total: number | null = null;
  let seqKnown = false;
  let pastKnown = false;
  for (const info of infos) {
    const t = given[info.name];
    if (!t) continue;
    for (let axis = 0; axis < t.dims.length; axis++) {
      const sym = typeof info.shape[axis] === 'string' ? (info.shape[axis] as string) : '';
      const m = axisMeaning(info, axis, sym);
      if (m === 'batch') shape.batch = t.dims[axis];
      else if (m === 'seq') { shape.seq = t.dims[axis]; seqKnown = true; shape.hasSequence = true; }
      else if (m === 'past') { shape.past = t.dims[axis]; pastKnown = true; }
      else if (m === 'total') { total = t.dims[axis]; shape.hasSequence = true; }
    }
  }
  if (total !== null) {
    if (seqKnown && !pastKnown) shape.past = Math.max(0, total - shape.seq);
    else if (!seqKnown) shape.seq = Math.max(1, total - shape.past);
  }
  return shape;
}

/** The index along `axis` of each flat (C-order) element index of a tensor of `dims`. */
function indexAlong(dims: number[], axis: number): (i: number) => number {
  if (axis < 0 || axis >= dims.length) return () => 0;
  const stride = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  return (i) => Math.floor(i / stride) % dims[axis];
}

/** The sequence axis of a position input: the analysis' when it has one, else the last. */
function sequenceAxis(info: InputInfo, dims: number[]): number {
  return info.axes?.sequence ?? dims.length - 1;
}

/** The value that lets every query attend to every key, per what the mask means (see the header). */
function attendValue(info: InputInfo, rank: number, warnings: string[]): number {
  if (info.maskMeaning === 'keep') return 1;
  if (info.maskMeaning === 'pad') return 0;
  // Float masks of rank 4 are additive biases in every exporter we know (0 = attend).
  if (info.dtype.startsWith('float') && rank === 4) return 0;
  if (!info.dtype.startsWith('float')) {
    warnings.push(`${info.name}: whether ${info.dtype === 'bool' ? 'true' : '1'} means attend or padding is not known; filled with ${info.dtype === 'bool' ? 'true' : '1'} (attend)`);
  }
  return 1;
}

function fill(dtype: Dtype, dims: number[], value: (i: number) => number): HostTensor {
  const n = elementCount(dims);
  const data = allocate(dtype, n);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) data[i] = BigInt(value(i));
  } else if (dtype === 'float16') {
    for (let i = 0; i < n; i++) data[i] = floatToHalf(value(i));
  } else {
    for (let i = 0; i < n; i++) data[i] = value(i);
  }
  return { dtype, dims, data };
}

export function synthesizeInputs(
  infos: InputInfo[],
  options: SynthesisOptions = {},
  given: Record<string, HostTensor> = {},
): SynthesizedInputs {
  const warnings: string[] = [];
  const base: ResolvedShape = { batch: options.batch ?? 1, seq: options.seq ?? 16, past: options.past ?? 0, hasSequence: false };
  for (const [k, v] of Object.entries({ batch: base.batch, seq: base.seq, past: base.past })) {
    if (!Number.isInteger(v) || v < (k === 'past' ? 0 : 1)) throw new Error(`synthesis: ${k} must be an integer >= ${k === 'past' ? 0 : 1}, got ${v}`);
  }
  const shape = shapeFromGiven(infos, given, base);
  const seed = options.seed ?? 0;
  const tensors: Record<string, HostTensor> = {};

  for (const info of infos) {
    if (given[info.name]) {
      tensors[info.name] = given[info.name];
      continue;
    }
    if (!isDtype(info.dtype)) throw new Error(`synthesis: input ${info.name} has dtype ${info.dtype}, which cannot be synthesized`);
    const dtype = info.dtype;
    const dims = info.shape.map((d, axis) => resolveDim(d, axisMeaning(info, axis, typeof d === 'string' ? d : ''), shape, options));
    const rng = new Rng(hashString(info.name) ^ seed);
    const isFloatInput = dtype === 'float32' || dtype === 'float16' || dtype === 'float64';

    switch (info.role) {
      case 'input_ids': {
        let vocab = info.vocabSize ?? options.vocabSize;
        if (vocab === undefined) {
          // Ids 0 and 1 are valid in every vocabulary; anything larger could index past the embedding table.
          vocab = 2;
          warnings.push(`${info.name}: vocabulary size unknown, token ids drawn from [0, 2)`);
        }
        const v = vocab;
        tensors[info.name] = fill(dtype, dims, () => rng.int(v));
        break;
      }
      case 'attention_mask': {
        const attend = attendValue(info, dims.length, warnings);
        tensors[info.name] = fill(dtype, dims, () => attend);
        break;
      }
      case 'position_ids': {
        const position = indexAlong(dims, sequenceAxis(info, dims));
        tensors[info.name] = fill(dtype, dims, (i) => shape.past + position(i));
        break;
      }
      case 'cache_position':
        tensors[info.name] = fill(dtype, dims, (i) => shape.past + i);
        break;
      case 'token_type_ids':
        tensors[info.name] = fill(dtype, dims, () => 0);
        break;
      case 'past_key':
      case 'past_value':
        tensors[info.name] = fill(dtype, dims, () => (options.kvCache === 'zeros' ? 0 : rng.normal()));
        break;
      case 'pixel_values':
      case 'audio_features':
      case 'hidden_states':
        tensors[info.name] = fill(dtype, dims, () => rng.normal());
        break;
      default:
        if (isFloatInput) tensors[info.name] = fill(dtype, dims, () => rng.normal());
        else if (dtype === 'bool') tensors[info.name] = fill(dtype, dims, () => 1);
        else {
          tensors[info.name] = fill(dtype, dims, () => 0);
          warnings.push(`${info.name}: role unknown, filled with zeros`);
        }
    }
  }
  return { tensors, shape: shapeFromGiven(infos, tensors, { ...shape, hasSequence: false }), warnings };
}
