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

/** The height and width synthesized images get where the model leaves them open (ViT's 224). */
export const DEFAULT_IMAGE_SIZE = 224;

/**
 * The [height, width] an image input fixes, or undefined where either is open (a UNet's latents, a detector's images
 * of any size): the image size is then a choice, like a text model's length.
 */
export function fixedImageSize(inputs: Pick<InputInfo, 'role' | 'shape'>[]): [number, number] | undefined {
  const px = inputs.find((i) => i.role === 'pixel_values' && i.shape.length === 4);
  if (!px) return undefined;
  const [h, w] = [px.shape[2], px.shape[3]];
  return typeof h === 'number' && typeof w === 'number' ? [h, w] : undefined;
}
