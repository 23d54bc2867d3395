// `plan --bench-seq L`: the options of the advisor's speed step (bench's own timing options) and its table: each
// frontier plan's blocked form against the original and the best dense baseline, as `bench` states speedups.
import type { AdviceResult } from '../orchestrate/advisor/advisor';
import type { SpeedOptions, SpeedVs, TimedModel } from '../orchestrate/advisor/speed';
import { type ParsedArgs, UsageError, intOption } from './args';
import { BENCH_TIMING_HELP, BENCH_TIMING_OPTIONS, timingOptions } from './bench-options';
import { speedupCell } from './bench-speedups';
import { formatTable } from './format';
import type { OptionHelp } from './help';
import { fmt, pct } from './runtime-args';

export const PLAN_SPEED_HELP: OptionHelp[] = [
  { name: 'bench', help: "time each frontier plan's compute-reducing form (rewrite --plan --impl blocked) against the original and the fused model, in one interleaved bench run (as bench times them); at the window length, or on the --inputs file" },
  { name: 'bench-seq', value: 'L', help: 'the same at L tokens, on inputs the runtime synthesizes (as bench --seq L); implies --bench' },
  ...BENCH_TIMING_HELP.map((o) => ({ ...o, help: `speed step: ${o.help}` })),
];

/** The speed options asked for, or undefined when the plans are not timed. */
export function speedOptions(args: ParsedArgs): SpeedOptions | undefined {
  const on = args.options.has('bench') || args.options.has('bench-seq');
  if (!on) {
    const stray = BENCH_TIMING_OPTIONS.find((o) => args.options.has(o));
    if (stray) throw new UsageError(`--${stray} applies to the speed step; add --bench or --bench-seq L`);
    return undefined;
  }
  return { ...(args.options.has('bench-seq') ? { seq: intOption(args, 'bench-seq', 0, 1) } : {}), ...timingOptions(args) };
}

function vsCell(v: SpeedVs): string {
  const bound = v.modelBound !== null ? `, bound ${fmt(v.modelBound, 2)}×` : v.boundNote ? ', no bound (other kernels)' : '';
  return `${speedupCell(v)}${v.boundExceeded ? ' ! above bound' : ''}${bound}`;
}

const gflop = (n: number | null) => (n === null ? null : n / 1e9);

function latencyCell(t: TimedModel): string {
  const l = t.latencyMs;
  return `${fmt(l.p50, 1)} [${fmt(l.ci95[0], 1)}–${fmt(l.ci95[1], 1)}]`;
}

/** The speed section of `plan`'s output; empty without the speed step. */
export function renderSpeed(r: AdviceResult): string[] {
  const s = r.speed;
  if (!s) return [];
  const base = s.baseline === 'fused' ? s.fused! : s.original;
  const lines = ['', `speed: blocked plans against the dense models, ${s.inputs}, ${s.ep}, one interleaved bench run (${s.machine}):`];
  const dense = [s.original, ...(s.fused ? [s.fused] : [])].map((t) => [
    t.label, latencyCell(t), String(t.latencyMs.runs), 'vsOriginal' in t ? vsCell(t.vsOriginal as SpeedVs) : '1', t === base ? 'baseline' : '–', pct(t.attentionCoreShare), fmt(gflop(t.attentionFlops), 2),
  ]);
  const plans = r.frontier
    .filter((f) => f.speed)
    .sort((a, b) => a.budget - b.budget)
    .map((f) => {
      const p = f.speed!;
      return [`${p.label}, ${p.blockedSites}/${p.plannedSites} sites split`, latencyCell(p), String(p.latencyMs.runs), vsCell(p.vsOriginal), vsCell(p.vsBaseline), pct(p.attentionCoreShare), fmt(gflop(p.attentionFlops), 2)];
    });
  // The uniform rules at the same budgets, in their fast forms, timed in the same run.
  const uniform = [...s.uniform]
    .sort((a, b) => a.budget - b.budget)
    .map((u) => [u.label, latencyCell(u), String(u.latencyMs.runs), vsCell(u.vsOriginal), vsCell(u.vsBaseline), pct(u.attentionCoreShare), fmt(gflop(u.attentionFlops), 2)]);
  lines.push(formatTable(['model', 'p50 ms [95% CI]', 'runs', 'vs original [95% CI]', `vs ${base.label} (best dense)`, 'score share', 'attn GFLOP'], [...dense, ...plans, ...uniform]));
  if (!s.fused) lines.push(`the fused model could not be made: ${s.fusedReason ?? 'unknown reason'}`);
  lines.push(
    'speedup: the reference\'s median over the plan\'s, paired-bootstrap 95% interval; "≈1" marks a speedup not distinguishable from 1; ' +
      "bound: what the removed attention FLOPs allow at most (Amdahl, on the reference's measured score-path share).",
    `load average ${s.loadAverage.before.map((x) => fmt(x, 1)).join(' ')} before, ${s.loadAverage.after.map((x) => fmt(x, 1)).join(' ')} after; other processes' CPU during the timed runs: ${s.otherCpuShare === null ? 'unknown' : pct(s.otherCpuShare)}`,
  );
  // A busy machine is the same line for every model: each warning once, with the models it concerns.
  const byText = new Map<string, string[]>();
  for (const t of [s.original, ...(s.fused ? [s.fused] : []), ...r.frontier.flatMap((f) => (f.speed ? [f.speed] : [])), ...s.uniform]) {
    for (const w of t.warnings) byText.set(w, [...(byText.get(w) ?? []), t.label]);
  }
  for (const [w, labels] of byText) lines.push(`warning: ${labels.join(', ')}: ${w}`);
  return lines;
}
