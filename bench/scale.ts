// Benchmark: rewrites of models of real size, with their weights in external data (issue 12). Builds a 7B-shaped and a
// 70B-shaped Llama (synth --external: every weight in one sparse data file of zeros, 27 GB and 276 GB that take no
// disk blocks), then runs each rewrite as the CLI does, in a fresh process, and records its wall time and the peak
// resident memory of that whole process (the rewrite runs in its core thread; maxRSS covers every thread). After
// every rewrite: the output loads (every external reference is checked: file, folder, range), and the original data
// file is untouched (size, modification time, allocated blocks, and the SHA-256 of 64 slices of 1 MiB; with
// --full-hash, of the whole file when it is at most 64 GiB: the 7B one). Outputs are deleted as soon as they are checked.
//
// Targets: every 7B rewrite under 1.5 GB and 60 s; the 70B prune under 3 GB.
// Rewrites whose rule is not registered in the build are reported as skipped (`fuse` runs as `--fuse`: CPU target,
// the operator chosen automatically).
//
// Usage: npm run bench:scale [-- --dir DIR --keep --full-hash --only prune,gqa --sites70 8 --no-70b]
// Output: one JSON object on stdout; progress on stderr. Needs about 8.5 GB of free disk for the pruned 7B weights.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeModel } from '../src/analysis/analyze';
import { loadModel } from '../src/analysis/ir/load';
import { getRule } from '../src/rewriters/registry';
import type { RewriteReport } from '../src/rewriters/pipeline';
import '../src/rewriters/rules';
import { describeMachine } from './machine';

interface Shape {
  name: string;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
}

const LLAMA_7B: Shape = { name: '7B', layers: 32, hidden: 4096, heads: 32, kvHeads: 32, intermediate: 11008, vocab: 32000 };
const LLAMA_70B: Shape = { name: '70B', layers: 80, hidden: 8192, heads: 64, kvHeads: 8, intermediate: 28672, vocab: 32000 };

interface Variant {
  key: string;
  name: string;
  /** The rule that must be registered for the variant to run. */
  rule: string;
  args: string[];
  maxRssMB: number;
  maxSeconds: number | null;
}

/** One head per site, a different one at each (7·i mod heads), so the benchmark does not only cut the first head. */
function pruneOneHead(sites: number[], heads: number): string {
  return sites.map((i) => `${i}:${(7 * i) % heads}`).join(';');
}

function variants7b(sites: number[], heads: number): Variant[] {
  const target = { maxRssMB: 1536, maxSeconds: 60 };
  return [
    { key: 'prune', name: 'prune-heads: one head on every site', rule: 'prune-heads', args: ['--prune-heads', pruneOneHead(sites, heads)], ...target },
    { key: 'gqa', name: 'gqa 4', rule: 'gqa', args: ['--gqa', '4'], ...target },
    { key: 'dictionary', name: 'dictionary 4', rule: 'dictionary', args: ['--dictionary', '4'], ...target },
    { key: 'window', name: 'window 1024 --impl blocked', rule: 'window', args: ['--window', '1024', '--impl', 'blocked'], ...target },
    { key: 'fuse', name: 'fuse', rule: 'fuse', args: ['--fuse'], ...target },
  ];
}

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const flag = (name: string) => process.argv.includes(`--${name}`);
const log = (s: string) => process.stderr.write(`${s}\n`);

const CLI = path.join(__dirname, '..', 'cli.js');

/** Runs the CLI in a fresh process; its peak RSS comes from the process itself (process.resourceUsage at exit). */
function runCli(args: string[], cwd: string): Promise<{ code: number | null; seconds: number; maxRssMB: number; stdout: string; stderr: string }> {
  const probe =
    `const cli = require(${JSON.stringify(CLI)});` +
    `cli.main(process.argv.slice(1)).then((code) => {` +
    `  process.stderr.write('\\n@@rss ' + process.resourceUsage().maxRSS + '\\n'); process.exitCode = code; });`;
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['-e', probe, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      const rss = /@@rss (\d+)/.exec(stderr);
      resolve({ code, seconds: (performance.now() - started) / 1000, maxRssMB: rss ? Number(rss[1]) / 1024 : NaN, stdout, stderr: stderr.replace(/\n@@rss \d+\n/, '') });
    });
  });
}

interface Fingerprint {
  size: number;
  mtimeMs: number;
  blocks: number;
  sha256: string;
  hashed: 'sampled' | 'full';
}

/** Files above this are always hashed in slices: reading 276 GB of zeros takes minutes per check. */
const FULL_HASH_LIMIT = 64 * 2 ** 30;

function fingerprint(file: string, fullWanted: boolean): Fingerprint {
  const st = fs.statSync(file);
  const full = fullWanted && st.size <= FULL_HASH_LIMIT;
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const piece = Buffer.alloc(1 << 20);
    const step = full ? piece.length : Math.max(piece.length, Math.floor(st.size / 64));
    for (let at = 0; at < st.size; at += step) {
      const n = fs.readSync(fd, piece, 0, Math.min(piece.length, st.size - at), at);
      hash.update(piece.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return { size: st.size, mtimeMs: st.mtimeMs, blocks: st.blocks, sha256: hash.digest('hex'), hashed: full ? 'full' : 'sampled' };
}

function subdir(dir: string, name: string): string {
  const d = path.join(dir, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** The model in `dir`, synthesized unless an earlier run left it there (--dir with --keep). */
function synth(shape: Shape, dir: string): { model: string; data: string } {
  const model = path.join(dir, `llama-${shape.name}.onnx`);
  if (!fs.existsSync(model)) {
    log(`synthesizing the ${shape.name}-shaped model in ${dir}`);
    execFileSync(process.execPath, [
      CLI, 'synth', '--output', model, '--layers', String(shape.layers), '--hidden', String(shape.hidden), '--heads', String(shape.heads),
      '--kv-heads', String(shape.kvHeads), '--intermediate', String(shape.intermediate), '--vocab', String(shape.vocab), '--external',
    ], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return { model, data: `${model}.data` };
}

interface Result {
  model: string;
  variant: string;
  status: 'ok' | 'failed' | 'skipped';
  note?: string;
  seconds?: number;
  peakRssMB?: number;
  targets?: { maxRssMB: number; maxSeconds: number | null; met: boolean };
  output?: { onnxBytes: number; dataBytes: number; written: number; copied: number; referenced: number; embedded: number; decision: string };
  loads?: boolean;
  originalUntouched?: boolean;
}

async function runVariant(v: Variant, model: { model: string; data: string }, label: string, before: Fingerprint, fullHash: boolean): Promise<Result> {
  const base = { model: label, variant: v.name };
  if (!getRule(v.rule)) return { ...base, status: 'skipped', note: `rule '${v.rule}' is not registered in this build` };
  const dir = path.dirname(model.model);
  const out = path.join(dir, `out-${v.key}.onnx`);
  log(`${label}: ${v.name}`);
  const r = await runCli(['rewrite', model.model, ...v.args, '-o', out, '--json', '--quiet'], dir);
  const result: Result = { ...base, status: r.code === 0 ? 'ok' : 'failed', seconds: r.seconds, peakRssMB: r.maxRssMB };
  try {
    if (r.code !== 0) {
      result.note = r.stderr.trim().split('\n').slice(-3).join(' | ');
      return result;
    }
    const report = JSON.parse(r.stdout) as RewriteReport;
    const w = report.output!.weights;
    result.output = {
      onnxBytes: fs.statSync(out).size,
      dataBytes: report.output!.dataFile ? fs.statSync(report.output!.dataFile).size : 0,
      written: w.written.bytes,
      copied: w.copied.bytes,
      referenced: w.referenced.reduce((a, x) => a + x.bytes, 0),
      embedded: w.embedded.bytes,
      decision: w.decision,
    };
    // Loading checks every external reference (exists, inside the folder, range within the file); the analysis
    // reads the graph back as a whole.
    const loaded = loadModel(out);
    result.loads = loaded.graph.nodes.length > 0 && analyzeModel(out).sites.length > 0;
    result.targets = { maxRssMB: v.maxRssMB, maxSeconds: v.maxSeconds, met: r.maxRssMB < v.maxRssMB && (v.maxSeconds === null || r.seconds < v.maxSeconds) };
    return result;
  } finally {
    for (const f of [out, `${out}.data`]) fs.rmSync(f, { force: true });
    const after = fingerprint(model.data, fullHash);
    result.originalUntouched = JSON.stringify(after) === JSON.stringify(before);
    log(`  ${result.status} in ${r.seconds.toFixed(1)} s, peak ${r.maxRssMB.toFixed(0)} MB, original untouched: ${result.originalUntouched}`);
  }
}

async function main(): Promise<void> {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing; run npm run build`);
  const dir = option('dir') ?? fs.mkdtempSync(path.join(os.tmpdir(), 'al-bench-scale-'));
  fs.mkdirSync(dir, { recursive: true });
  const only = option('only')?.split(',');
  const fullHash = flag('full-hash');
  const started = performance.now();
  const results: Result[] = [];
  const loadBefore = os.loadavg();
  try {
    const m7 = synth(LLAMA_7B, subdir(dir, '7b'));
    const fp7 = fingerprint(m7.data, fullHash);
    const sites7 = Array.from({ length: LLAMA_7B.layers }, (_, i) => i);
    for (const v of variants7b(sites7, LLAMA_7B.heads)) {
      if (only && !only.includes(v.key)) continue;
      results.push(await runVariant(v, m7, '7B', fp7, fullHash));
    }
    if (!flag('no-70b')) {
      const m70 = synth(LLAMA_70B, subdir(dir, '70b'));
      const fp70 = fingerprint(m70.data, fullHash);
      const n = Number(option('sites70') ?? 8);
      const sites = Array.from({ length: n }, (_, i) => Math.floor((i * LLAMA_70B.layers) / n));
      const prune: Variant = { key: 'prune70', name: `prune-heads: one head on ${n} of 80 sites`, rule: 'prune-heads', args: ['--prune-heads', pruneOneHead(sites, LLAMA_70B.heads)], maxRssMB: 3072, maxSeconds: null };
      const window: Variant = { key: 'window70', name: 'window 4096 --impl blocked', rule: 'window', args: ['--window', '4096', '--impl', 'blocked'], maxRssMB: 3072, maxSeconds: null };
      for (const v of [prune, window]) if (!only || only.includes(v.key)) results.push(await runVariant(v, m70, '70B', fp70, fullHash));
    }
  } finally {
    if (!flag('keep')) fs.rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify({
    benchmark: 'scale',
    machine: describeMachine(),
    loadAverage: { before: loadBefore, after: os.loadavg() },
    results,
    totalSeconds: (performance.now() - started) / 1000,
  })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:scale: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
