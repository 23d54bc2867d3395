// What an input's name says of its role, where the name is all there is to go on: the analysis (inputs.ts) and the
// runtime's fallback without one (runtime/inputs/roles.ts) read names the same way. No imports: the runtime worker
// bundles it.

/**
 * Whether a cache input holds keys or values, by its name: `past_key_values.0.key` is a key (the container's name
 * holds both words, so it is set aside first), `past.1.value`, `cache_v` values. Undefined when the name says neither.
 */
export function cacheRole(name: string): 'past_key' | 'past_value' | undefined {
  const n = name.toLowerCase();
  if (!/past|cache/.test(n) || /position/.test(n)) return undefined;
  const rest = n.replace(/(past_)?key_values/g, '');
  if (/value|\.v\b|_v\b|\bv\b/.test(rest)) return 'past_value';
  if (/key|\.k\b|_k\b|\bk\b/.test(rest)) return 'past_key';
  return undefined;
}

/** A cache or mask of the encoder's positions in a decoder (optimum's `past_key_values.0.encoder.key`, `encoder_attention_mask`). */
export const ENCODER_INPUT_NAME = /encoder|cross/i;

/** Audio given as features (Whisper's `input_features`, log-mel spectrograms) or as raw samples (wav2vec 2.0's `input_values`). */
export const AUDIO_INPUT_NAME = /input_features|input_values|audio|mel|spectrogram/i;
