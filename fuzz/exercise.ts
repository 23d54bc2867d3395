// Runs the product's entry points on one mutant written to its own folder: load + analyze, a rewrite (load, analyze,
// rules, invariants, save) whose output must load again, and, for a sample, `attention-lens analyze` as a child
// process. Afterwards the input files must be unchanged and the folder must hold nothing but the input and the output.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeModel } from '../src/analysis/analyze';
import { rewriteModel, type RuleRequest } from '../src/rewriters/pipeline';
import { judgeError } from './judge';
import type { Mutant } from './mutate';

export type Outcome = 'success' | 'user-error' | 'internal' | 'hang' | 'memory' | 'harness-error';

export interface Failure {
  stage: string;
  reason: string;
  message: string;
  stack?: string;
}

export interface MutantResult {
  fixture: string;
  seed: number;
  outcome: Outcome;
  mutations: string[];
  /** 'ok' or the user error's class ('ModelError:truncated', 'RuleError'). */
  analyze?: string;
  rewrite?: string;
  cli?: string;
  failure?: Failure;
  ms: number;
}

export interface ExerciseOptions {
  /** The mutant's own folder (created empty by the caller, removed by the caller). */
  dir: string;
  /** Rules for the rewrite stage; none: no rewrite. */
  rules?: RuleRequest[];
  externalData?: 'auto' | 'embed' | 'external';
  /** The bundled CLI (dist/cli.js) to run `analyze` with; none: no CLI check. */
  cliFile?: string;
  cliTimeoutMs?: number;
}

export const MODEL_NAME = 'model.onnx';

/** Writes the mutant and its extra files into `dir`; returns the model's path. */
export function writeMutant(mutant: Mutant, dir: string): string {
  for (const [name, data] of mutant.extra) {
    const p = path.join(dir, name);
    fs.mkdirSync(data === 'dir' ? p : path.dirname(p), { recursive: true });
    if (data !== 'dir') fs.writeFileSync(p, data);
  }
  const file = path.join(dir, MODEL_NAME);
  fs.writeFileSync(file, mutant.bytes);
  return file;
}

type Partial = Omit<MutantResult, 'fixture' | 'seed' | 'mutations' | 'ms'>;

export function exercise(mutant: Mutant, opts: ExerciseOptions): Partial {
  const dir = path.resolve(opts.dir);
  const file = writeMutant(mutant, dir);
  const inputs = snapshot(dir);
  const fail = (stage: string, reason: string, message = '', stack?: string): Partial => ({ outcome: 'internal', failure: { stage, reason, message, stack } });

  // 1. Load and analyse, as the CLI, the extension and the rewrite pipeline do first.
  let analyze: string;
  try {
    analyzeModel(file);
    analyze = 'ok';
  } catch (e) {
    const v = judgeError(e, dir);
    if ('internal' in v) return fail('analyze', v.internal, v.message, v.stack);
    analyze = v.user;
  }
  const result: Partial = { outcome: analyze === 'ok' ? 'success' : 'user-error', analyze };

  // 2. Rewrite and save into out/; what was saved must load again.
  if (opts.rules && analyze === 'ok') {
    const outDir = path.join(dir, 'out');
    fs.mkdirSync(outDir);
    const out = path.join(outDir, 'out.onnx');
    try {
      rewriteModel(file, opts.rules, out, { seqLen: 64, save: { externalData: opts.externalData ?? 'auto' } });
      result.rewrite = 'ok';
    } catch (e) {
      const v = judgeError(e, dir);
      if ('internal' in v) return { ...fail('rewrite', v.internal, v.message, v.stack), analyze };
      result.rewrite = v.user;
    }
    if (result.rewrite === 'ok') {
      try {
        analyzeModel(out);
      } catch (e) {
        return { ...fail('reload', `the rewritten model does not load: ${(e as Error).name}`, (e as Error).message?.slice(0, 500), (e as Error).stack), analyze };
      }
    }
  }

  // 3. The command line, end to end: exit 0, or exit 1 with one line on stderr that names the file.
  if (opts.cliFile) {
    // Well inside the pool's limit per mutant, so a hung CLI is reported from here rather than orphaned by a kill.
    const cli = runCli(opts.cliFile, file, analyze, opts.cliTimeoutMs ?? 15_000);
    if (cli.internal) return { ...fail('cli', cli.internal, cli.message), analyze, rewrite: result.rewrite };
    result.cli = cli.summary;
  }

  // 4. Nothing written where it should not be, and the input untouched.
  const problem = checkFolder(dir, inputs);
  if (problem) return { ...fail('files', problem), analyze, rewrite: result.rewrite, cli: result.cli };
  return result;
}

function runCli(cliFile: string, file: string, analyze: string, timeout: number): { summary?: string; internal?: string; message?: string } {
  const r = spawnSync(process.execPath, [cliFile, 'analyze', file, '--json'], { encoding: 'utf8', timeout, killSignal: 'SIGKILL', maxBuffer: 256 << 20 });
  const stderr = r.stderr ?? '';
  if (r.error) return { internal: `the CLI did not finish (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})`, message: stderr.slice(0, 500) };
  if (r.status === 0) {
    if (analyze !== 'ok') return { internal: `the CLI succeeded where the library failed with ${analyze}` };
    return { summary: 'exit 0' };
  }
  const lines = stderr.replace(/\n$/, '').split('\n');
  if (r.status !== 1) return { internal: `the CLI exited with ${r.status ?? r.signal}`, message: lines.slice(0, 12).join('\n') };
  if (lines.length !== 1) return { internal: `the CLI printed ${lines.length} lines on stderr`, message: lines.slice(0, 12).join('\n') };
  if (!lines[0].startsWith('attention-lens analyze: ') || !lines[0].includes(file)) return { internal: 'the CLI error does not name the file', message: lines[0] };
  if (analyze === 'ok') return { internal: 'the CLI failed where the library succeeded', message: lines[0] };
  return { summary: 'exit 1' };
}

/** Every file under `dir` (relative path -> bytes); folders as 'dir'. */
function snapshot(dir: string): Map<string, Buffer | 'dir'> {
  const out = new Map<string, Buffer | 'dir'>();
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) {
        out.set(r, 'dir');
        walk(r);
      } else out.set(r, fs.readFileSync(path.join(dir, r)));
    }
  };
  walk('');
  return out;
}

const OUTPUTS = new Set(['out', path.join('out', 'out.onnx'), path.join('out', 'out.onnx.data')]);

function checkFolder(dir: string, before: Map<string, Buffer | 'dir'>): string | null {
  const after = snapshot(dir);
  for (const [name, data] of before) {
    const now = after.get(name);
    if (now === undefined) return `input file '${name}' was deleted`;
    if (data !== 'dir' && (now === 'dir' || !data.equals(now))) return `input file '${name}' was modified`;
  }
  for (const name of after.keys()) if (!before.has(name) && !OUTPUTS.has(name)) return `unexpected file '${name}' was written`;
  return null;
}
