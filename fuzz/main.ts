// `npm run fuzz -- [N] [options]`: a campaign of N mutants (default 1000) over the shared fixtures, printing one JSON
// summary (outcome counts, and every failure with the seed that reproduces it). Progress goes to stderr.
//   --seed S            first seed (default: from the clock; printed in the summary)
//   --fixtures a,b      fixture names (default: all of them)
//   --fixtures-dir DIR  default ../shared/fixtures next to the repository
//   --jobs J            worker processes (default: the number of cores)
//   --timeout MS        per mutant (default 30000)
//   --cli-every K       also run `attention-lens analyze` on every K-th mutant (default 10; 0: never)
//   --replay FIX:SEED   run that one mutant (in a worker, with the same limits) and print its result with the stack
//   --keep DIR          with --replay: also write the mutant (and its data files) into DIR to look at
// Exit status: 0 when every mutant ended in success or a user error, 1 otherwise.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { campaignTmpRoot, planJobs, summarize } from './campaign';
import { writeMutant } from './exercise';
import { makeMutant } from './mutate';
import { runJobs } from './pool';

const DIST = __dirname; // dist/fuzz
const REPO = path.resolve(DIST, '..', '..');

function option(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  argv.splice(i, 2);
  return v;
}

function intOf(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got '${v}'`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write('usage: npm run fuzz -- [N] [--seed S] [--fixtures a,b] [--fixtures-dir DIR] [--jobs J] [--timeout MS] [--cli-every K]\n' +
      '       npm run fuzz -- --replay FIXTURE:SEED [--keep DIR]\n');
    return 0;
  }
  const fixturesDir = path.resolve(option(argv, '--fixtures-dir') ?? process.env.ATTENTION_LENS_FIXTURES ?? path.join(REPO, '..', 'shared', 'fixtures'));
  const model = (name: string) => {
    const file = path.join(fixturesDir, name, 'model.onnx');
    if (!fs.existsSync(file)) throw new Error(`no fixture '${name}' in ${fixturesDir}`);
    return file;
  };
  const replay = option(argv, '--replay');
  const keep = option(argv, '--keep');
  const seed = intOf(option(argv, '--seed'), '--seed', Date.now() % 1_000_000_000);
  const names = option(argv, '--fixtures')?.split(',').filter(Boolean)
    ?? fs.readdirSync(fixturesDir).filter((d) => fs.existsSync(path.join(fixturesDir, d, 'manifest.json'))).sort();
  const jobs = intOf(option(argv, '--jobs'), '--jobs', os.availableParallelism());
  const timeoutMs = intOf(option(argv, '--timeout'), '--timeout', 30_000);
  const cliEvery = intOf(option(argv, '--cli-every'), '--cli-every', 10);
  const cliFile = path.join(DIST, '..', 'cli.js');
  const tmpRoot = campaignTmpRoot();

  const limits = {
    workerFile: path.join(DIST, 'worker.js'),
    timeoutMs,
    heapMb: 2048,
    // A few hundred MB is what the largest fixture needs; the limit is for runaway allocations, not big models.
    rssLimitMb: Math.min(4096, Math.floor(os.totalmem() / 2 ** 20 / 4)),
  };

  if (replay) {
    // In a worker process like any mutant: a hang is reported (and its folder removed) instead of hanging this one.
    const [fixture, s] = replay.split(':');
    const job = { fixture, model: model(fixture), seed: intOf(s, '--replay seed', 0), tmpRoot, rewrite: true, cliFile };
    const mutant = makeMutant(new Uint8Array(fs.readFileSync(job.model)), job.seed);
    process.stderr.write(`${fixture}:${job.seed}: ${mutant.mutations.join('; ')}\n`);
    if (keep) {
      fs.mkdirSync(keep, { recursive: true });
      writeMutant(mutant, keep);
    }
    try {
      const [r] = await runJobs([job], { ...limits, concurrency: 1 });
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      return r.outcome === 'success' || r.outcome === 'user-error' ? 0 : 1;
    } finally {
      fs.rmSync(tmpRoot, { recursive: true, force: true });
    }
  }

  if (argv.length > 1 || (argv[0] !== undefined && !/^\d+$/.test(argv[0]))) throw new Error(`unexpected arguments: ${argv.join(' ')}`);
  const count = intOf(argv[0], 'N', 1000);
  const planned = planJobs({ fixtures: names.map((name) => ({ name, model: model(name) })), count, seed, tmpRoot, cliEvery, cliFile, rewriteEvery: 1 });
  const t0 = Date.now();
  let done = 0;
  try {
    const results = await runJobs(planned, {
      ...limits,
      concurrency: jobs,
      onResult: (r) => {
        done++;
        const bad = r.outcome !== 'success' && r.outcome !== 'user-error';
        if (bad) process.stderr.write(`${r.outcome}: ${r.fixture}:${r.seed} ${r.failure?.stage}: ${r.failure?.reason}\n`);
        if (done % 50 === 0) process.stderr.write(`${done}/${count} mutants, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
      },
    });
    const summary = summarize(results, seed, (Date.now() - t0) / 1000);
    process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
    return summary.failures.length ? 1 : 0;
  } finally {
    fs.rmSync(tmpRoot, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: Error) => {
    process.stderr.write(`fuzz: ${e.message}\n`);
    process.exitCode = 2;
  },
);
