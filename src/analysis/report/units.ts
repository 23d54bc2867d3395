// What a model's sequence positions are, in words: a text model's are tokens, an image model's are patches (set by the
// image size, not chosen per run). Pure and free of I/O, so the CLI, the rewriters and the dashboard share it.
import type { InputInfo } from './types';

export type SequenceUnit = 'tokens' | 'patches';

/** An image model: pixels in, no token ids. Its sequence is its patches (plus any class token). */
export function isImageModel(inputs: Pick<InputInfo, 'role'>[]): boolean {
  const roles = new Set(inputs.map((i) => i.role));
  return roles.has('pixel_values') && !roles.has('input_ids') && !roles.has('hidden_states');
}

export function sequenceUnit(inputs: Pick<InputInfo, 'role'>[]): SequenceUnit {
  return isImageModel(inputs) ? 'patches' : 'tokens';
}
