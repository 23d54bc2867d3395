// Calibration data: what compare, maps, eval and head importance run a model on, one notion for the CLI and the
// extension. A file is one of
//   - an inputs file (see load.ts: a manifest, a folder of <input>.npy, a .json map of input names, name=path lists),
//     fed as it is;
//   - token ids: `.bytes` (one token per byte), a 1-D integer `.npy`, a `.json` array or { "ids": [...] };
//   - text (any other file): tokenised with the `tokenizer.json` beside the model (the usual layout of Hugging Face
//     exports) by @huggingface/tokenizers, or taken byte by byte for a byte-level model (a vocabulary of 256 ids).
// Token ids become the model's token-id input, a window of the first L tokens, and the rest (masks, positions, an
// empty KV cache) is synthesized to match. Text that cannot be tokenised is refused with the reason, never guessed.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import type { InputInfo } from '../../analysis/report/types';
import type { InputSource } from '../protocol';
import type { HostTensor } from '../tensor';
import { parseNpy } from './npy';
import type { SynthesisOptions } from './synthesize';

export type CalibrationKind = 'inputs' | 'tokens' | 'text';

export interface Calibration {
  file: string;
  kind: CalibrationKind;
  /** The token ids of a token file or of tokenised text; absent for an inputs file. */
  ids?: Int32Array;
  /** Each token as text, for axis labels: text and `.bytes` files (null for ids that carry no text). */
  pieces?: string[] | null;
  /** How the ids were made, in words, for the screen. */
  how: string;
}

/** Bad calibration data is the user's to fix: one line, shown as it is by the CLI and the extension. */
function refusal(message: string): Error {
  return Object.assign(new Error(message), { userError: true });
}

/** The byte-level vocabulary: a model whose token ids index 256 rows reads text as its bytes. */
const BYTE_VOCAB = 256;

/** The token-id input of a model, from the analysis' roles. */
export function tokenInput(infos: InputInfo[] | undefined): InputInfo | undefined {
  return infos?.find((i) => i.role === 'input_ids');
}

/**
 * Reads a calibration file for a model. `infos` are the model's inputs as the analysis describes them (roles and the
 * vocabulary size decide whether text can be read as bytes).
 */
export function readCalibration(file: string, modelPath: string, infos: InputInfo[] | undefined): Calibration {
  if (file.includes('=') && !existsSync(file)) return { file, kind: 'inputs', how: 'tensors named by input' };
  if (!existsSync(file)) throw refusal(`${file} does not exist`);
  if (statSync(file).isDirectory()) return { file, kind: 'inputs', how: 'a folder of inputs' };
  const ext = extname(file).toLowerCase();
  if (ext === '.onnx') throw refusal(`${file} is a model, not calibration data (give inputs, token ids or text)`);
  if (ext === '.bytes') {
    const bytes = readFileSync(file);
    return { file, kind: 'tokens', ids: Int32Array.from(bytes), pieces: Array.from(bytes, bytePiece), how: 'one token per byte' };
  }
  if (ext === '.npy') return readNpy(file);
  if (ext === '.json') return readJson(file, infos);
  return readText(file, modelPath, infos);
}

function readNpy(file: string): Calibration {
  const buf = readFileSync(file);
  const t = parseNpy(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), file);
  // A 1-D integer array is a sequence of token ids; anything else is one input's tensor.
  if (t.dims.length !== 1 || t.dtype.startsWith('float') || t.dtype === 'bool') return { file, kind: 'inputs', how: 'a .npy input' };
  return { file, kind: 'tokens', ids: Int32Array.from(t.data as ArrayLike<number | bigint>, Number), pieces: null, how: 'token ids from the file' };
}

function readJson(file: string, infos: InputInfo[] | undefined): Calibration {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw refusal(`${file}: not valid JSON (${(e as Error).message.replace(/\s+/g, ' ')})`);
  }
  const ids = Array.isArray(json) ? json : (json as { ids?: unknown } | null)?.ids;
  // A bare array is token ids for a model that takes them; for another model it is that model's one input.
  if (!Array.isArray(ids) || (Array.isArray(json) && !tokenInput(infos))) return { file, kind: 'inputs', how: 'inputs named in the file' };
  const flat = (ids as unknown[]).flat(Infinity);
  if (!flat.every((v) => Number.isInteger(v) && (v as number) >= 0)) throw refusal(`${file}: token ids must be non-negative integers`);
  return { file, kind: 'tokens', ids: Int32Array.from(flat as number[]), pieces: null, how: 'token ids from the file' };
}

/** The model's vocabulary: the rows its token ids index, when the analysis found them. */
function vocabOf(infos: InputInfo[] | undefined): number | undefined {
  return tokenInput(infos)?.vocabSize;
}

function readText(file: string, modelPath: string, infos: InputInfo[] | undefined): Calibration {
  const tokenizerFile = join(dirname(modelPath), 'tokenizer.json');
  const vocab = vocabOf(infos);
  if (existsSync(tokenizerFile)) return tokenizeText(file, tokenizerFile, vocab);
  if (vocab === BYTE_VOCAB) {
    // Bytes as they are in the file: decoding and re-encoding would change any byte that is not valid UTF-8.
    const bytes = readFileSync(file);
    return { file, kind: 'text', ids: Int32Array.from(bytes), pieces: Array.from(bytes, bytePiece), how: 'bytes (a byte-level model)' };
  }
  const why = vocab === undefined ? 'its vocabulary is unknown' : `it is not byte-level (vocabulary ${vocab})`;
  throw refusal(`${basename(file)} is read as text, but ${basename(modelPath)} has no tokenizer.json beside it and ${why}; put the model's tokenizer.json in ${dirname(modelPath)}, or give token ids (.npy, .json)`);
}

function tokenizeText(file: string, tokenizerFile: string, vocab: number | undefined): Calibration {
  const configFile = join(dirname(tokenizerFile), 'tokenizer_config.json');
  let tokenizer: Tokenizer;
  try {
    const json: unknown = JSON.parse(readFileSync(tokenizerFile, 'utf8'));
    const config: unknown = existsSync(configFile) ? JSON.parse(readFileSync(configFile, 'utf8')) : {};
    tokenizer = new Tokenizer(json as object, config as object);
  } catch (e) {
    throw refusal(`${tokenizerFile}: not a tokenizer this tool can read (${(e as Error).message.split('\n')[0]})`);
  }
  // Windows are cut from anywhere in the text, so no special tokens (a BOS in front of the whole file) are added.
  const encoded = tokenizer.encode(readFileSync(file, 'utf8'), { add_special_tokens: false });
  // A token the tokenizer has no id for (an unknown word without a usable unk token) must not become id 0 silently.
  const missing = encoded.ids.findIndex((id) => !Number.isInteger(id) || id < 0);
  if (missing >= 0) throw refusal(`${tokenizerFile} gives no token id for ${JSON.stringify(encoded.tokens[missing])} in ${basename(file)}`);
  const beyond = vocab === undefined ? undefined : encoded.ids.find((id: number) => id >= vocab);
  if (beyond !== undefined) {
    throw refusal(`${tokenizerFile} gives token id ${beyond}, beyond the model's vocabulary of ${vocab}: it is not this model's tokenizer`);
  }
  return { file, kind: 'text', ids: Int32Array.from(encoded.ids), pieces: encoded.tokens, how: `tokenised with ${basename(tokenizerFile)}` };
}

/** A byte as a readable label: printable ASCII as itself, space, newline and tab as symbols, the rest in hex. */
export function bytePiece(b: number): string {
  if (b === 0x20) return '␣';
  if (b === 0x0a) return '⏎';
  if (b === 0x09) return '⇥';
  if (b > 0x20 && b < 0x7f) return String.fromCharCode(b);
  return `\\x${b.toString(16).padStart(2, '0')}`;
}

/** Calibration data made into a request's inputs: what to feed, what it is in words, and the tokens' labels. */
export interface CalibrationInputs {
  source: InputSource;
  /** "the first 512 of 262,144 tokens of eval.py (bytes (a byte-level model))". */
  description: string;
  /** One label per fed token position (text only); null otherwise. */
  labels: string[] | null;
  /** Tokens fed per sequence; null for an inputs file (its shapes decide). */
  tokens: number | null;
}

/**
 * The inputs of one run: an inputs file as it is, or the first `length` tokens of token ids as the model's token-id
 * input (with everything else synthesized to match, caches empty).
 */
export function calibrationInputs(cal: Calibration, infos: InputInfo[] | undefined, length: number, synthesis: SynthesisOptions = {}): CalibrationInputs {
  if (cal.kind === 'inputs' || !cal.ids) {
    return { source: { file: cal.file, synthesis, ...(infos ? { infos } : {}) }, description: basename(cal.file), labels: null, tokens: null };
  }
  const input = tokenInput(infos);
  if (!input) {
    const names = infos?.map((i) => i.name).join(', ') ?? 'unknown';
    throw refusal(`${basename(cal.file)} holds tokens, but the model takes no token ids (its inputs: ${names})`);
  }
  if (cal.ids.length === 0) throw refusal(`${cal.file} holds no tokens`);
  const n = Math.min(length, cal.ids.length);
  const ids = cal.ids.subarray(0, n);
  return {
    source: { tensors: { [input.name]: idTensor(input, ids) }, synthesis: { ...synthesis, past: 0 }, ...(infos ? { infos } : {}) },
    description: `${n < length ? 'all' : `the first ${n} of`} ${cal.ids.length.toLocaleString('en-US')} tokens of ${basename(cal.file)} (${cal.how})`,
    labels: cal.pieces ? cal.pieces.slice(0, n) : null,
    tokens: n,
  };
}

/** Token ids shaped as the model takes them: [1, n], or [n, 1] where the analysis found the sequence first. */
function idTensor(input: InputInfo, ids: Int32Array): HostTensor {
  const dims = input.axes?.sequence === 0 ? [ids.length, 1] : [1, ids.length];
  if (input.dtype === 'int32') return { dtype: 'int32', dims, data: Int32Array.from(ids) };
  return { dtype: 'int64', dims, data: BigInt64Array.from(ids, (v) => BigInt(v)) };
}
