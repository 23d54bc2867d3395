// Benchmark: load and analyse a Llama-7B-shaped model whose weights are never read.
//
// Step 1 (this process) builds the graph (32 layers, hidden 4096, 32 heads, 8 KV heads of 128, intermediate 11008,
// vocabulary 32000), points all 6.7 billion float32 weights into one sparse file (26 GB that take no disk blocks),
// and saves the model next to it. Step 2 runs in a fresh child process, so the build's memory does not count: it
// times loadModel + analysis and reads its own peak RSS. The output is one JSON line:
//   {"seconds": ..., "rssMB": ..., "nodes": ..., "sites": ...}
// Usage: npm run bench:analyze -- --json     (the output is always that JSON line; --json is accepted for symmetry
// with the CLI). Progress and checks go to stderr.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { analyzeModel } from '../src/analysis/analyze';
import { saveModel } from '../src/analysis/ir/save';
import { buildLlama, type LlamaConfig } from '../src/synth/llama';

const LLAMA_7B: LlamaConfig = {
  layers: 32,
  hidden: 4096,
  heads: 32,
  kvHeads: 8,
  headDim: 128,
  intermediate: 11008,
  vocab: 32000,
};

interface Measurement {
  seconds: number;
  rssMB: number;
  nodes: number;
  sites: number;
}

/**
 * Counts every open of `file` from now on. Loading validates external data with stat alone, so an open of the weight
 * file means some weight was read. (fs.openSync is patched on Node's own module object, which the bundled code reads
 * its functions from at call time; readFileSync goes through it too.)
 */
function watchOpens(file: string): () => number {
  const nodeFs = createRequire(process.argv[1])('node:fs') as typeof fs;
  const original = nodeFs.openSync;
  let opens = 0;
  nodeFs.openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
    if (path.resolve(String(p)) === file) opens++;
    return (original as (...a: unknown[]) => number)(p, ...rest);
  }) as typeof fs.openSync;
  return () => opens;
}

/** Child: load + analyse, then report time and the process's peak resident memory. */
function measure(modelFile: string, dataFile: string): void {
  const weightOpens = watchOpens(path.resolve(dataFile));
  const start = performance.now();
  const report = analyzeModel(modelFile);
  const seconds = (performance.now() - start) / 1000;
  // maxRSS is the high-water mark of the whole process (in KiB), so a transient peak inside the analysis counts.
  const rssMB = process.resourceUsage().maxRSS / 1024;
  const gqaOk = report.sites.every((s) => s.heads === LLAMA_7B.heads && s.kvHeads === LLAMA_7B.kvHeads && s.headDim === LLAMA_7B.headDim);
  const problems = [
    ...(report.sites.length === LLAMA_7B.layers && gqaOk ? [] : [describeMismatch(report.sites)]),
    ...(weightOpens() > 0 ? [`the weight file was opened ${weightOpens()} time(s); analysis must not read weights`] : []),
  ];
  const result: Measurement & { check: string } = {
    seconds: round(seconds, 3),
    rssMB: round(rssMB, 1),
    nodes: report.model.nodeCount,
    sites: report.sites.length,
    check: problems.length ? problems.join('; ') : 'ok',
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function describeMismatch(sites: { heads: number | null; kvHeads: number | null; headDim: number | null }[]): string {
  const first = sites[0];
  return `expected ${LLAMA_7B.layers} sites of ${LLAMA_7B.heads}/${LLAMA_7B.kvHeads} heads of ${LLAMA_7B.headDim}; ` +
    `found ${sites.length}${first ? ` (first: ${first.heads}/${first.kvHeads} of ${first.headDim})` : ''}`;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Parent: build and save in a temp folder, measure in a child, print the line, remove the folder. */
function main(): number {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-bench-'));
  try {
    const t0 = performance.now();
    const synth = buildLlama({ ...LLAMA_7B, externalData: { file: path.join(dir, 'model.weights') } });
    const modelFile = path.join(dir, 'model.onnx');
    const saved = saveModel(synth.model, modelFile);
    const buildSeconds = (performance.now() - t0) / 1000;
    process.stderr.write(
      `built ${synth.model.graph.nodes.length} nodes, ${(synth.parameters / 1e9).toFixed(2)}B parameters ` +
      `(${((synth.dataBytes ?? 0) / 2 ** 30).toFixed(1)} GiB sparse data, ${(saved.bytes / 1024).toFixed(0)} KiB model) in ${buildSeconds.toFixed(2)} s\n`,
    );
    const out = execFileSync(process.execPath, [...process.execArgv, process.argv[1], '--measure', modelFile, synth.dataFile!], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const { check, ...result } = JSON.parse(out.trim()) as Measurement & { check: string };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    if (check !== 'ok') {
      process.stderr.write(`analysis check failed: ${check}\n`);
      return 2;
    }
    return 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
if (args[0] === '--measure' && args[1] && args[2]) {
  measure(args[1], args[2]);
} else {
  const unknown = args.filter((a) => a !== '--json');
  if (unknown.length > 0) {
    process.stderr.write(`bench:analyze: unknown argument ${unknown[0]} (accepted: --json)\n`);
    process.exit(64);
  }
  process.exitCode = main();
}
