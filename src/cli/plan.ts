// `attention-lens plan MODEL.onnx (--tokens FILE | --inputs FILE) --budget density=D`: the advisor (issue 10). Profiles
// the model on calibration data, chooses one option per query head under the density budget (an exact integer
// program), and measures the plans and the uniform rules at the same densities by running the model. The work is
// src/orchestrate/advisor/advisor.ts; this file parses, prints and writes the files asked for.
import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type AdviceResult, writePlannedModel } from '../orchestrate/advisor/advisor';
import { adviseLengths } from '../orchestrate/advisor/lengths';
import { serializeHeadPlan } from '../shared/head-plan';
import { type ParsedArgs, UsageError, intOption, parseArgs } from './args';
import { formatTable } from './format';
import { type CommandHelp, SESSION_HELP, specOf, usageLine } from './help';
import { describeAcross, renderLengths, seqOption } from './plan-lengths';
import { PLAN_SPEED_HELP, renderSpeed, speedOptions } from './plan-speed';
import { fmt, printJson, progressPrinter, sessionSettings, withRuntime } from './runtime-args';

export const help: CommandHelp = {
  name: 'plan',
  summary: 'Finds a per-head attention plan under a density budget: profiles each head on calibration data (the attention ' +
    'recall of every candidate pattern, and its importance), picks one option per head by an exact integer program, ' +
    'and measures the plans and the uniform rules at the same densities by running the model (bits per token on a token ' +
    "file's evaluation windows; otherwise the outputs against the original's); with --bench-seq L, also the plans' " +
    'compute-reducing forms timed against the original and the fused model, as bench times them.',
  synopsis: 'MODEL.onnx (--tokens FILE | --inputs FILE) --budget density=D [options]',
  options: [
    { name: 'tokens', value: 'FILE', help: "a language model's token file (.bytes, .npy, .json): evaluation windows as eval takes them, calibration windows from the gaps between them" },
    { name: 'inputs', value: 'FILE', help: 'inputs for any other model (as compare takes them): they calibrate, and the outputs are compared on them' },
    { name: 'budget', value: 'density=D', help: 'mean keys per query over all heads, as a share of dense attention (causal counted as causal); D in (0, 1]' },
    { name: 'frontier', value: 'D,D,...', help: 'further densities to plan and measure for the frontier', default: 'half and double the budget' },
    { name: 'seq', value: 'L[,L...]', help: 'tokens per window (--tokens); several lengths (e.g. 256,512): profile and search at each, and give heads whose window grows with the length a span law a + b·L (docs/advisor.md)', default: '512' },
    { name: 'eval-windows', value: 'N', help: 'evaluation windows, evenly spaced over the token file', default: '64' },
    { name: 'calib-windows', value: 'N', help: 'calibration windows, between the evaluation windows (attention maps, and the choice among candidate plans)', default: '4' },
    { name: 'importance-windows', value: 'N', help: 'calibration windows the head importance runs use (one run per head: profiling time grows with this)', default: '2' },
    { name: 'no-baselines', help: 'skip the uniform rules at the same densities' },
    { name: 'output', value: 'OUT.onnx', help: 'write the model rewritten by the chosen plan (mask form)' },
    { name: 'plan-out', value: 'PLAN.json', help: 'write the chosen plan (for rewrite --plan)' },
    ...PLAN_SPEED_HELP,
    ...SESSION_HELP,
  ],
  example: 'attention-lens plan model.onnx --tokens text.bytes --budget density=0.25 --plan-out plan.json --bench-seq 4096',
};

function parseBudget(args: ParsedArgs): number {
  const raw = args.options.get('budget');
  if (typeof raw !== 'string') throw new UsageError(`--budget is required (${usageLine(help)})`);
  const m = /^density=(.+)$/.exec(raw.trim());
  const d = m ? Number(m[1]) : NaN;
  if (!m || !(d > 0 && d <= 1)) throw new UsageError(`--budget must be density=D with D in (0, 1], got '${raw}'`);
  return d;
}

function frontierBudgets(args: ParsedArgs, budget: number): number[] {
  const raw = args.options.get('frontier');
  let more: number[];
  if (raw === undefined) more = [budget / 2, Math.min(1, budget * 2)];
  else {
    more = String(raw).split(',').map((s) => Number(s.trim()));
    if (raw === true || more.some((d) => !(d > 0 && d <= 1))) throw new UsageError(`--frontier must be densities in (0, 1], comma-separated; got '${raw}'`);
  }
  const round = (d: number) => Number(d.toPrecision(6));
  return [budget, ...[...new Set(more.map(round))].filter((d) => d !== round(budget)).sort((a, b) => a - b)];
}

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, specOf(help.options), { o: 'output' });
  if (args.positional.length !== 1) throw new UsageError(usageLine(help));
  const model = args.positional[0];
  if (!existsSync(model)) throw new UsageError(`${model}: no such file`);
  const tokens = args.options.get('tokens');
  const inputs = args.options.get('inputs');
  if ((typeof tokens === 'string') === (typeof inputs === 'string')) throw new UsageError('give exactly one of --tokens FILE (a language model) and --inputs FILE (any other model)');
  const file = (tokens ?? inputs) as string;
  if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
  if (typeof inputs === 'string') for (const o of ['seq', 'eval-windows', 'calib-windows', 'importance-windows']) if (args.options.has(o)) throw new UsageError(`--${o} applies to --tokens`);
  const budget = parseBudget(args);
  const budgets = frontierBudgets(args, budget);
  const output = args.options.get('output');
  const planOut = args.options.get('plan-out');
  for (const out of [output, planOut]) if (typeof out === 'string' && resolve(out) === resolve(model)) throw new UsageError(`${out} is the input model; the input is never overwritten`);
  const speed = speedOptions(args);
  const json = args.options.has('json');
  const show = progressPrinter(!json);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.on('SIGINT', onSigint);
  try {
    const result = await withRuntime((client) =>
      adviseLengths(client, model, {
        data: typeof tokens === 'string'
          ? { kind: 'tokens', file, seq: seqOption(args, 512), evalWindows: intOption(args, 'eval-windows', 64, 1), calibrationWindows: intOption(args, 'calib-windows', 4, 1), importanceWindows: intOption(args, 'importance-windows', 2, 1) }
          : { kind: 'inputs', file },
        budgets,
        baselines: !args.options.has('no-baselines'),
        ...(speed ? { speed } : {}),
        settings: sessionSettings(args),
        onProgress: show,
        signal: controller.signal,
      }),
    );
    const chosen = result.frontier[0];
    if (typeof planOut === 'string') writeFileSync(planOut, serializeHeadPlan(chosen.plan));
    if (typeof output === 'string') writePlannedModel(model, chosen.plan, output, result.seq);
    if (json) printJson(result);
    else process.stdout.write(render(result));
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

function render(r: AdviceResult): string {
  const p = r.profile;
  const chosen = r.frontier[0];
  const heads = p.sites.reduce((a, s) => a + s.heads, 0);
  const lines = [
    `${r.model}: per-head plan at ${r.lengths ? r.lengths.map((l) => l.seq).join(', ') : r.seq} tokens, density ≤ ${chosen.budget} (${heads} heads in ${p.sites.length} sites)`,
    `calibration: ${p.calibration}${r.objective.startsWith('bits') ? `; head importance on ${p.importanceWindows} of them` : ''}`,
    `score: ${r.objective}`,
    `loss estimate: ${chosen.candidates.map((c) => c.proxy).join(' and ')}, head importance from zeroing (${p.metric === 'kl' ? 'KL' : 'mean |Δ|'} of ${p.output})`,
    '',
    `chosen plan: density ${fmt(chosen.density, 4)}, ${chosen.evaluation.metric} ${fmt(chosen.evaluation.value, 4)} (original ${fmt(r.dense?.value, 4)})`,
    ...Object.entries(chosen.plan.sites).map(([site, hs]) => `  site ${site}: ${hs.map((c) => describeAcross(c, r.lengths)).join(' | ')}`),
  ];
  for (const s of p.skipped) lines.push(`  site ${s.site} stays dense: ${s.reason}`);
  lines.push(...renderLengths(r));
  lines.push('', `frontier${r.lengths ? ` at ${r.seq} tokens` : ''} (${chosen.evaluation.metric}, lower is better; original ${fmt(r.dense?.value, 4)}):`);
  const families = [...new Set(r.baselines.filter((b) => (b.seq ?? r.seq) === r.seq).map((b) => b.family))];
  lines.push(
    formatTable(
      ['budget', 'plan density', 'plan', ...families],
      r.frontier
        .slice()
        .sort((a, b) => a.budget - b.budget)
        .map((f) => [
          String(f.budget), fmt(f.density, 4), fmt(f.evaluation.value, 4),
          ...families.map((fam) => {
            const b = r.baselines.find((x) => x.budget === f.budget && x.family === fam && (x.seq ?? r.seq) === r.seq);
            return !b || !b.evaluation ? '-' : `${fmt(b.evaluation.value, 4)} (${b.rule}, ${fmt(b.density, 3)})`;
          }),
        ]),
    ),
  );
  lines.push(...renderSpeed(r));
  const t = r.timings;
  lines.push('', `time: profile ${fmt(t.profileMs / 1000, 1)} s (maps ${fmt(p.timings.mapsMs / 1000, 1)} s, importance ${fmt(p.timings.importanceMs / 1000, 1)} s), search ${fmt(t.searchMs / 1000, 1)} s, validation ${fmt(t.validateMs / 1000, 1)} s${t.speedMs === undefined ? '' : `, speed ${fmt(t.speedMs / 1000, 1)} s`}`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}
