// Whole-model process CPU time per run of llama-long-eager-ts-op17's exact and sparse variants at 4096 tokens: the
// measure that other load on a shared machine disturbs least (wall time waits for the other jobs; CPU time mostly
// does not), for comparing realisations of the same rewrite. The models run in this process (onnxruntime-node, CPU
// provider, default threading), interleaved round by round after one untimed round; medians and the fastest run are
// reported. Variants that compute the same function are checked against each other on the untimed round (max |Δ| of
// the logits): fuse against the original, each window form against the first.
//
// This is not the attention cut of bench:rewrites (which needs the profiler's attention share): it is the whole
// model's CPU time, in which the MLP, norms and embedding are the same for every variant.
//
// Usage: npm run bench:rewrites-cpu [-- --seq 4096 --rounds 5 --only fuse,window]
// Output: one JSON object on stdout.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { rewriteModel, type RuleRequest } from '../src/rewriters/pipeline';
import '../src/rewriters/rules';
import { maxAbsDiff, median, timeRounds } from './cpu-rounds';
import { findFixture } from './fixture';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const FUSE: RuleRequest = { rule: 'fuse', params: {} };
const window = (rows: number): RuleRequest => ({ rule: 'window', params: { window: 256, impl: 'blocked', rows } });

/** Name, rules, and the variant whose logits it must reproduce (same function). */
const VARIANTS: [string, RuleRequest[], string | null][] = [
  ['original', [], null],
  ['fuse', [FUSE], 'original'],
  ['window 256, written out in 128-row blocks', [window(128)], null],
  ['window 256, written out in 256-row blocks', [window(256)], 'window 256, written out in 128-row blocks'],
  ['window 256, fuse + MultiHeadAttention per 128-row block', [FUSE, window(128)], 'window 256, written out in 128-row blocks'],
  ['window 256, fuse + MultiHeadAttention per 256-row block', [FUSE, window(256)], 'window 256, written out in 128-row blocks'],
  ['window 256, fuse + local_window_size', [FUSE, { rule: 'window', params: { window: 256, impl: 'blocked' } }], 'window 256, written out in 128-row blocks'],
  ['block-topk 64,8 gather', [{ rule: 'block-topk', params: { block: 64, k: 8, impl: 'gather' } }], null],
];

async function main(): Promise<void> {
  const seq = Number(option('seq', '4096'));
  const rounds = Number(option('rounds', '5'));
  const only = option('only', '').split(',').filter(Boolean);
  const model = findFixture('llama-long-eager-ts-op17');
  const dir = mkdtempSync(join(tmpdir(), 'al-bench-rewrites-cpu-'));
  try {
    const sessions: { name: string; sameAs: string | null; session: ort.InferenceSession }[] = [];
    for (const [i, [name, rules, sameAs]] of VARIANTS.entries()) {
      if (only.length && name !== 'original' && !only.some((o) => name.startsWith(o))) continue;
      const path = join(dir, `${i}.onnx`);
      rewriteModel(model, rules, path, { seqLen: seq });
      sessions.push({ name, sameAs, session: await ort.InferenceSession.create(path, { logSeverityLevel: 3 }) });
    }
    const ids = BigInt64Array.from({ length: seq }, (_, i) => BigInt((i * 7919) % 256));
    const feeds = { input_ids: new ort.Tensor('int64', ids, [1, seq]), attention_mask: new ort.Tensor('int64', new BigInt64Array(seq).fill(1n), [1, seq]) };
    const logits = new Map<string, Float32Array>();
    const { cpu, wall } = await timeRounds(sessions.map((x) => [x.name, x.session]), feeds, rounds, (name, out) => logits.set(name, out));
    process.stdout.write(`${JSON.stringify({
      benchmark: 'rewrites-cpu', model: 'llama-long-eager-ts-op17', seq, rounds, cores: cpus().length, cpu: cpus()[0]?.model, loadAverage: loadavg(),
      results: sessions.map(({ name, sameAs }) => ({
        variant: name,
        cpuMsMedian: Math.round(median(cpu.get(name)!)),
        cpuMsFastest: Math.round(Math.min(...cpu.get(name)!)),
        wallMsMedian: Math.round(median(wall.get(name)!)),
        cpuMsRuns: cpu.get(name)!.map(Math.round),
        ...(sameAs && logits.has(sameAs) ? { maxAbsDiffVs: { variant: sameAs, logits: maxAbsDiff(logits.get(name)!, logits.get(sameAs)!) } } : {}),
      })),
    })}\n`);
    for (const { session } of sessions) await session.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:rewrites-cpu: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
