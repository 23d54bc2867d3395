// How long the synthesized inputs are when nobody says, and how to speak of a model's length. A handful of tokens
// makes every sparse rewrite look lossless (a window of 16 covers all of 16 tokens), so the default is the model's own
// length where its inputs fix one or its position table (or causal buffer) bounds one, else 512 tokens; an image model's length is its
// patch grid, set by the image size, not a token count. Used by the CLI and the dashboards. Pure.
import { isImageModel, sequenceUnit } from '../analysis/report/units';
import type { InputInfo, ModelInfo } from '../analysis/report/types';

export const DEFAULT_TOKENS = 512;

/** An image model: pixels in, no token ids. Its sequence is its patches (plus any class token). */
export function isVision(model: Pick<ModelInfo, 'inputs'>): boolean {
  return isImageModel(model.inputs);
}

/** The token count a model exported with fixed shapes takes (its token ids' or mask's sequence axis), if fixed. */
export function fixedTokens(inputs: InputInfo[]): number | undefined {
  return fixedAxis(inputs, (i) => i.axes?.sequence ?? (i.axes?.batch === 1 ? 0 : 1));
}

/** The batch size a model exported with fixed shapes takes (its token ids' or mask's batch axis), if fixed. */
export function fixedBatch(inputs: InputInfo[]): number | undefined {
  return fixedAxis(inputs, (i) => i.axes?.batch ?? (i.axes?.sequence === 0 ? 1 : 0));
}

/**
 * The size of that axis of the first token-id or mask input that has it fixed. Without established axes only a 2-D
 * input is read ([batch, sequence]); a mask of another rank ([batch, 1, time]) says nothing this way.
 */
function fixedAxis(inputs: InputInfo[], axisOf: (i: InputInfo) => number): number | undefined {
  for (const i of inputs) {
    if (i.role !== 'input_ids' && i.role !== 'attention_mask') continue;
    if (!i.axes && i.shape.length !== 2) continue;
    const d = i.shape[axisOf(i)];
    if (typeof d === 'number') return d;
  }
  return undefined;
}

export interface DefaultLength {
  /** The `seq` to synthesize with (an image model ignores it). */
  seq: number;
  /** Why, in words, for the screen: "512 tokens (the default)", "64 tokens (the model's position table)". */
  reason: string;
}

export function defaultLength(model: Pick<ModelInfo, 'inputs' | 'maxPositions'> | undefined): DefaultLength {
  if (!model) return { seq: DEFAULT_TOKENS, reason: `${DEFAULT_TOKENS} tokens (the default)` };
  if (isVision(model)) return { seq: DEFAULT_TOKENS, reason: 'images of the model’s own size (its patch grid)' };
  const fixed = fixedTokens(model.inputs);
  if (fixed !== undefined) return { seq: fixed, reason: `${fixed} tokens (the model's fixed input length)` };
  if (model.maxPositions !== undefined && model.maxPositions < DEFAULT_TOKENS) {
    return { seq: model.maxPositions, reason: `${model.maxPositions} tokens (the longest its position table or causal buffer allows)` };
  }
  return { seq: DEFAULT_TOKENS, reason: `${DEFAULT_TOKENS} tokens (the default)` };
}

/** Sequence lengths a model can take: those beyond its position table are dropped (and named in `dropped`). */
export function usableLengths(model: Pick<ModelInfo, 'maxPositions'> | undefined, seqs: number[]): { kept: number[]; dropped: number[] } {
  const limit = model?.maxPositions;
  if (limit === undefined) return { kept: seqs, dropped: [] };
  return { kept: seqs.filter((s) => s <= limit), dropped: seqs.filter((s) => s > limit) };
}

/** "tokens" or "patches", for a model's sequence. */
export function unitOf(model: Pick<ModelInfo, 'inputs'> | undefined): 'tokens' | 'patches' {
  return model ? sequenceUnit(model.inputs) : 'tokens';
}
