// The timing options of `bench`, declared once: `bench` and `plan --bench-seq` (the advisor's speed step) take the
// same stop rule, warm-up and profile, with the same defaults and the same checks.
import type { BenchRequest } from '../runtime/protocol';
import { type ParsedArgs, UsageError, intOption } from './args';
import type { OptionHelp } from './help';

/** Defaults of the stop rule: hyperfine's 10 runs, and a second of timing per point so that fast models get many runs. */
const MIN_RUNS = 10;
const MIN_TIME_MS = 1000;
const WARMUP = 2;
const PROFILE_RUNS = 3;

export const BENCH_TIMING_HELP: OptionHelp[] = [
  { name: 'min-runs', value: 'N', help: 'time at least N rounds per point (models interleaved run by run)', default: String(MIN_RUNS) },
  { name: 'min-time', value: '1s|500ms', help: 'and at least this long per point', default: `${MIN_TIME_MS / 1000}s` },
  { name: 'max-runs', value: 'N', help: 'at most N rounds per point', default: '1000' },
  { name: 'iters', value: 'N', help: 'exactly N timed rounds instead of the stop rule' },
  { name: 'warmup', value: 'N', help: 'untimed runs first', default: String(WARMUP) },
  { name: 'profile-runs', value: 'N', help: "profiled runs for attention's share of the time (0: no profile)", default: String(PROFILE_RUNS) },
];

/** The names of BENCH_TIMING_HELP, for commands that accept them only together with another option. */
export const BENCH_TIMING_OPTIONS = BENCH_TIMING_HELP.map((o) => o.name);

/** `--min-time`: `2s`, `500ms`, or a bare number of seconds (as hyperfine's --min-benchmarking-time). */
function durationMs(args: ParsedArgs, name: string): number | undefined {
  const raw = args.options.get(name);
  if (raw === undefined) return undefined;
  const m = raw === true ? null : /^(\d+(?:\.\d+)?)\s*(ms|s)?$/.exec(raw.trim());
  if (!m) throw new UsageError(`--${name} must be a duration such as 2s or 500ms, got '${raw}'`);
  return Number(m[1]) * (m[2] === 'ms' ? 1 : 1000);
}

/** How many timed rounds: exactly `--iters`, or until both `--min-runs` and `--min-time` are met (capped by `--max-runs`). */
export function stopOptions(args: ParsedArgs): Pick<BenchRequest, 'iters' | 'minRuns' | 'minTimeMs' | 'maxRuns'> {
  const rule = ['min-runs', 'min-time', 'max-runs'].filter((o) => args.options.has(o));
  if (args.options.has('iters')) {
    if (rule.length > 0) throw new UsageError(`--iters fixes the number of runs; drop --${rule.join(', --')}`);
    return { iters: intOption(args, 'iters', MIN_RUNS, 1) };
  }
  const minRuns = intOption(args, 'min-runs', MIN_RUNS, 1);
  const maxRuns = args.options.has('max-runs') ? intOption(args, 'max-runs', minRuns, 1) : undefined;
  if (maxRuns !== undefined && maxRuns < minRuns) throw new UsageError(`--max-runs (${maxRuns}) is below --min-runs (${minRuns})`);
  return { minRuns, minTimeMs: durationMs(args, 'min-time') ?? MIN_TIME_MS, ...(maxRuns !== undefined ? { maxRuns } : {}) };
}

/** The stop rule, warm-up and profile runs of a bench request. */
export function timingOptions(args: ParsedArgs): Pick<BenchRequest, 'iters' | 'minRuns' | 'minTimeMs' | 'maxRuns' | 'warmup' | 'profileRuns'> {
  return { ...stopOptions(args), warmup: intOption(args, 'warmup', WARMUP, 0), profileRuns: intOption(args, 'profile-runs', PROFILE_RUNS, 0) };
}
