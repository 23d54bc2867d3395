// Options and plumbing shared by the commands that run models (bench, compare, eval, maps): provider choice, input
// source, synthesis shape, a runtime client that is always stopped, and runtime failures reported as one line.
import { cpus, platform } from 'node:os';
import { analyzeModel } from '../analysis/analyze';
import type { AnalysisReport } from '../analysis/report/types';
import { ModelError } from '../analysis/onnx/errors';
import { RuntimeClient, RuntimeError } from '../runtime/client';
import { calibrationInputs, readCalibration } from '../runtime/inputs/calibration';
import type { SynthesisOptions } from '../runtime/inputs/synthesize';
import { type ExecutionProvider, type InputSource, type ProgressEvent, type SessionSettings, EXECUTION_PROVIDERS, isExecutionProvider } from '../runtime/protocol';
import { defaultLength, fixedBatch, fixedTokens, isVision } from '../shared/lengths';
import { type ParsedArgs, UsageError, intOption } from './args';
import { DEFAULT_IMAGE_SIZE, fixedImageSize } from '../analysis/report/units';

export function sessionSettings(args: ParsedArgs): SessionSettings {
  const raw = args.options.get('ep');
  const settings: SessionSettings = {};
  if (typeof raw === 'string') {
    const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = list.filter((s) => !isExecutionProvider(s));
    if (list.length === 0 || bad.length > 0) {
      throw new UsageError(`--ep: unknown provider '${bad[0] ?? raw}' (choose from ${EXECUTION_PROVIDERS.join(', ')}, or a comma-separated preference order)`);
    }
    settings.ep = list as ExecutionProvider[];
  }
  if (args.options.has('threads')) settings.intraOpThreads = intOption(args, 'threads', 0, 1);
  return settings;
}

/** The synthesis shape; without --seq, the model's default length (see src/shared/lengths.ts), never a handful of tokens. */
export function synthesisOptions(args: ParsedArgs, report?: AnalysisReport): SynthesisOptions {
  const o: SynthesisOptions = { seq: intOption(args, 'seq', defaultLength(report?.model).seq, 1) };
  if (args.options.has('past')) o.past = intOption(args, 'past', 0, 0);
  if (args.options.has('batch')) {
    o.batch = intOption(args, 'batch', 1, 1);
    checkBatch(report, o.batch);
  }
  if (args.options.has('seed')) o.seed = intOption(args, 'seed', 0, 0);
  const imageSize = imageSizeOption(args, report);
  if (imageSize !== undefined) o.imageSize = imageSize;
  return o;
}

/** `--image-size N`, refused for a model without an image input or one whose input fixes its size. */
export function imageSizeOption(args: ParsedArgs, report?: AnalysisReport): number | undefined {
  if (!args.options.has('image-size')) return undefined;
  const size = intOption(args, 'image-size', DEFAULT_IMAGE_SIZE, 1);
  const fixed = report ? fixedImageSize(report.model.inputs) : undefined;
  if (report && !report.model.inputs.some((i) => i.role === 'pixel_values')) throw new UsageError('--image-size: the model has no image input');
  if (fixed) throw new UsageError(`--image-size: the model was exported for ${fixed[0]}×${fixed[1]} images (its input has fixed sizes); leave it out`);
  return size;
}

/** What a command runs on: the source for the runtime, a line saying what it is, and the tokens' labels (text only). */
export interface RunInputs {
  source: InputSource;
  /** For the screen: where the inputs come from and how long they are; null when the user set both. */
  note: string | null;
  labels: string[] | null;
}

/**
 * `--inputs FILE` as calibration data (src/runtime/inputs/calibration.ts: inputs, token ids or text), its first
 * `--seq` tokens (default: the model's own length, or 512); without it, synthesized inputs of that length.
 */
export function runInputs(args: ParsedArgs, model: string, report?: AnalysisReport): RunInputs {
  const synthesis = synthesisOptions(args, report);
  const infos = report?.model.inputs;
  const file = args.options.get('inputs');
  const length = defaultLength(report?.model);
  const chosen = args.options.has('seq');
  if (chosen && synthesis.seq !== undefined) checkLength(report, synthesis.seq);
  if (typeof file !== 'string') {
    // An image model's length is its patch grid: --seq cannot change it, only other images (--inputs) can.
    const other = report && isVision(report.model) ? '--inputs gives real images' : '--seq sets another length, --inputs gives real ones (inputs, token ids or text)';
    const images = openImages(report, synthesis.imageSize);
    const tokens = chosen ? `${String(synthesis.seq)} tokens` : length.reason;
    const what = images && isVision(report!.model) ? images : images ? `${tokens} and ${images}` : tokens;
    const note = chosen && !images ? null : `synthesized inputs of ${what}; ${other}`;
    return { source: { synthesis, ...(infos ? { infos } : {}) }, note, labels: null };
  }
  const { seq, ...rest } = synthesis;
  const fed = calibrationInputs(readCalibration(file, model, infos), infos, seq ?? length.seq, rest);
  const how = fed.tokens === null || chosen ? '' : `; up to ${length.reason}, --seq sets another length`;
  return { source: fed.source, note: `inputs: ${fed.description}${how}`, labels: fed.labels };
}

/** "224×224 images (…)" where the model's image input leaves its size open: the size synthesis picks is then news. */
function openImages(report: AnalysisReport | undefined, chosen: number | undefined): string | undefined {
  const inputs = report?.model.inputs ?? [];
  if (!inputs.some((i) => i.role === 'pixel_values' && i.shape.length === 4) || fixedImageSize(inputs)) return undefined;
  const size = chosen ?? DEFAULT_IMAGE_SIZE;
  return `${size}×${size} images (the model leaves their size open; --image-size sets it)`;
}

/**
 * Refuses a length beyond the model's position table or causal buffer (`maxPositions`): past it the model fails deep
 * inside, in a Gather past its table or a broadcast against its buffer.
 */
export function checkLength(report: AnalysisReport | undefined, positions: number, what = `--seq ${positions}`, newTokens = positions): void {
  if (!report || isVision(report.model)) return;
  const fixed = fixedTokens(report.model.inputs);
  if (fixed !== undefined && newTokens !== fixed) throw new UsageError(`${what}: the model was exported for exactly ${fixed} tokens (its inputs have fixed shapes); give --seq ${fixed} or leave it out`);
  const limit = report.model.maxPositions;
  if (limit === undefined || positions <= limit) return;
  throw new UsageError(`${what}: the model takes at most ${limit} positions (its position table or causal buffer); keep within it`);
}

/** Refuses a batch size other than the one a model exported with fixed shapes takes. */
export function checkBatch(report: AnalysisReport | undefined, batch: number): void {
  const fixed = report ? fixedBatch(report.model.inputs) : undefined;
  if (fixed !== undefined && batch !== fixed) throw new UsageError(`--batch ${batch}: the model was exported for a batch of exactly ${fixed} (its inputs have fixed shapes)`);
}

/** A list of integers: `512`, `512,2048,4096`. */
export function intList(args: ParsedArgs, name: string, min: number): number[] | undefined {
  const raw = args.options.get(name);
  if (raw === undefined) return undefined;
  const values = String(raw).split(',').map((s) => Number(s.trim()));
  if (raw === true || values.length === 0 || values.some((v) => !Number.isInteger(v) || v < min)) {
    throw new UsageError(`--${name} must be integers >= ${min}, comma-separated; got '${raw}'`);
  }
  return values;
}

/**
 * The analysis report, for input roles, vocabulary sizes and the sites' nodes. A model that cannot be read is the
 * user's error (ModelError); an analysis that fails on a readable model only costs the attention attribution.
 */
export function analyzeForRuntime(path: string, warnings: string[]): AnalysisReport | undefined {
  try {
    return analyzeModel(path);
  } catch (e) {
    if (e instanceof ModelError) throw e;
    warnings.push(`${path}: analysis failed (${(e as Error).message.split('\n')[0]}); running without attention sites`);
    return undefined;
  }
}

/** Runs `fn` with a runtime client that is stopped afterwards; runtime failures become one-line user errors. */
export async function withRuntime<T>(fn: (client: RuntimeClient) => Promise<T>): Promise<T> {
  const client = new RuntimeClient();
  try {
    return await fn(client);
  } catch (e) {
    if (e instanceof RuntimeError) {
      const err = new Error(e.message.split('\n')[0]);
      (err as Error & { userError: boolean }).userError = true;
      throw err;
    }
    throw e;
  } finally {
    await client.dispose();
  }
}

/** Progress on stderr for people watching a terminal; silent when stderr is not one (CI logs, pipes). */
export function progressPrinter(enabled: boolean): ((p: ProgressEvent) => void) | undefined {
  if (!enabled || !process.stderr.isTTY) return undefined;
  return (p) => {
    const total = p.total > 0 ? `/${Math.round(p.total)}` : '';
    process.stderr.write(`\r\x1b[K${p.phase} ${Math.round(p.done)}${total}${p.message ? ` ${p.message}` : ''}`);
    if (p.done >= p.total) process.stderr.write('\r\x1b[K');
  };
}

export function environment(): { platform: string; cpu: string; cores: number; node: string } {
  const cpu = cpus();
  return { platform: `${platform()} ${process.arch}`, cpu: cpu[0]?.model.trim() ?? 'unknown', cores: cpu.length, node: process.version };
}

/** A model's name for tables: the file name, with its folder when the file name alone says nothing (model.onnx). */
export function modelLabel(path: string): string {
  const parts = path.split(/[\\/]/).filter(Boolean);
  const file = parts[parts.length - 1] ?? path;
  return /^model\.onnx$/i.test(file) && parts.length > 1 ? `${parts[parts.length - 2]}/${file}` : file;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function fmt(n: number | null | undefined, digits = 3): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '-';
  if (n !== 0 && (Math.abs(n) < 1e-3 || Math.abs(n) >= 1e6)) return n.toExponential(2);
  return n.toFixed(digits);
}

export function pct(n: number | null | undefined): string {
  return n === null || n === undefined ? '-' : `${(100 * n).toFixed(1)}%`;
}

/** A token id the embedding table does not have fails in its Gather: said here, with where it is. */
export function checkVocabulary(ids: ArrayLike<number>, vocab: number | undefined, file: string): void {
  if (vocab === undefined) return;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] >= vocab || ids[i] < 0) throw new UsageError(`--tokens ${file}: token ${ids[i]} at position ${i} is outside the model's vocabulary of ${vocab}`);
  }
}
