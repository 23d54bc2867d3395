// A fallback guess of each graph input's role from its name, dtype and rank, for when the caller has no analysis
// report (the analysis, which also follows where an input flows, is the better source and wins when given).
import { AUDIO_INPUT_NAME, cacheRole } from '../../analysis/input-names';
import type { Dim, InputInfo, InputRole } from '../../analysis/report/types';

export interface InputSignature {
  name: string;
  dtype: string;
  shape: Dim[];
}

export function guessRole(sig: InputSignature): InputRole {
  const n = sig.name.toLowerCase();
  const isInt = /int|uint/.test(sig.dtype);
  const isFloat = /float/.test(sig.dtype);
  const cache = cacheRole(sig.name);
  if (cache) return cache;
  if (/cache_position/.test(n)) return 'cache_position';
  if (/position_ids|pos_ids|positions/.test(n)) return 'position_ids';
  if (/token_type|segment_ids/.test(n)) return 'token_type_ids';
  if (/mask/.test(n)) return 'attention_mask';
  if (/pixel|image/.test(n) && isFloat) return 'pixel_values';
  if (AUDIO_INPUT_NAME.test(n) && isFloat) return 'audio_features';
  if (isInt && (/ids$|^ids|tokens?$|input$/.test(n) || sig.shape.length === 2)) return 'input_ids';
  if (isFloat && sig.shape.length === 3) return 'hidden_states';
  return 'other';
}

/**
 * Merges what onnxruntime reports about the inputs (authoritative for names, dtypes and shapes: it is what the session
 * will accept) with the analysis' roles, vocabulary sizes, layouts and mask meanings when those are given.
 */
export function mergeInputInfo(signatures: InputSignature[], analysis?: InputInfo[]): InputInfo[] {
  const byName = new Map((analysis ?? []).map((i) => [i.name, i]));
  return signatures.map((sig) => {
    const known = byName.get(sig.name);
    const role = known && known.role !== 'other' ? known.role : guessRole(sig);
    const info: InputInfo = { name: sig.name, dtype: sig.dtype, shape: sig.shape, role };
    if (known?.vocabSize !== undefined) info.vocabSize = known.vocabSize;
    // The analysis' layout holds axis indices: they apply only to the shape they were read from (same rank).
    if (known?.axes && known.shape.length === sig.shape.length && role === known.role) info.axes = { ...known.axes };
    if (known?.maskMeaning && role === known.role) info.maskMeaning = known.maskMeaning;
    return info;
  });
}
