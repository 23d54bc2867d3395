// A campaign: which mutants to make (fixtures in turn, consecutive seeds), and the summary of what they did.
import * as os from 'node:os';
import * as path from 'node:path';
import type { MutantResult, Outcome } from './exercise';
import type { Job } from './job';

export interface PlanOptions {
  /** Fixture name -> model file. */
  fixtures: { name: string; model: string }[];
  count: number;
  seed: number;
  tmpRoot: string;
  /** Run `attention-lens analyze` on every k-th mutant (0: never). */
  cliEvery: number;
  cliFile?: string;
  /** Run the rewrite stage on every k-th mutant (1: all, 0: never). */
  rewriteEvery: number;
}

export function planJobs(o: PlanOptions): Job[] {
  if (!o.fixtures.length) throw new Error('no fixtures to mutate');
  return Array.from({ length: o.count }, (_, i) => ({
    fixture: o.fixtures[i % o.fixtures.length].name,
    model: o.fixtures[i % o.fixtures.length].model,
    seed: (o.seed + i) >>> 0,
    tmpRoot: o.tmpRoot,
    rewrite: o.rewriteEvery > 0 && i % o.rewriteEvery === 0,
    cliFile: o.cliFile && o.cliEvery > 0 && i % o.cliEvery === 0 ? o.cliFile : undefined,
  }));
}

/** A fresh folder name under the system's temporary folder (created by the first job). */
export function campaignTmpRoot(): string {
  return path.join(os.tmpdir(), `attention-lens-fuzz-${process.pid}-${Date.now().toString(36)}`);
}

export interface Summary {
  seed: number;
  mutants: number;
  seconds: number;
  outcomes: Record<Outcome, number>;
  /** How the analysis ended, by class ('ok', 'ModelError:truncated', ...). */
  analyze: Record<string, number>;
  rewrite: Record<string, number>;
  cli: Record<string, number>;
  /** The slowest mutants (near-hangs are worth a look even when they finish). */
  slowest: { fixture: string; seed: number; ms: number }[];
  /** Every mutant that was not a success or a user error, with what reproduces it. */
  failures: (MutantResult & { replay: string })[];
}

export function summarize(results: MutantResult[], seed: number, seconds: number): Summary {
  const outcomes: Record<Outcome, number> = { success: 0, 'user-error': 0, internal: 0, hang: 0, memory: 0, 'harness-error': 0 };
  const count = (m: Record<string, number>, k: string | undefined) => {
    if (k !== undefined) m[k] = (m[k] ?? 0) + 1;
  };
  const analyze: Record<string, number> = {};
  const rewrite: Record<string, number> = {};
  const cli: Record<string, number> = {};
  for (const r of results) {
    outcomes[r.outcome]++;
    count(analyze, r.analyze);
    count(rewrite, r.rewrite);
    count(cli, r.cli);
  }
  const failures = results
    .filter((r) => r.outcome !== 'success' && r.outcome !== 'user-error')
    .sort((a, b) => a.seed - b.seed)
    .map((r) => ({ ...r, replay: `npm run fuzz -- --replay ${r.fixture}:${r.seed}` }));
  const slowest = [...results].sort((a, b) => b.ms - a.ms).slice(0, 5).map(({ fixture, seed: s, ms }) => ({ fixture, seed: s, ms }));
  return {
    seed, mutants: results.length, seconds: Math.round(seconds * 10) / 10, outcomes,
    analyze: sorted(analyze), rewrite: sorted(rewrite), cli: sorted(cli), slowest, failures,
  };
}

function sorted(m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).sort((a, b) => b[1] - a[1]));
}
