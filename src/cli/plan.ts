// `attention-lens plan MODEL.onnx (--tokens FILE | --inputs FILE) --budget KIND=VALUE`: the advisor (issue 10). Profiles
// the model on calibration data, chooses one option per query head under the budget (density, attention FLOPs or
// latency; an exact integer program), and measures the plans and the uniform rules at the same budgets by running the
// model. The work is src/orchestrate/advisor/advisor.ts; the budget forms are src/shared/budget.ts; this file parses,
// prints and writes the files asked for.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { readCalibration } from '../runtime/inputs/calibration';
import { type AdviceResult, writePlannedModel } from '../orchestrate/advisor/advisor';
import { adviseLengths } from '../orchestrate/advisor/lengths';
import { type Budget, BudgetFormatError, formatBudgetValue, parseBudget, withFurther } from '../shared/budget';
import { serializeHeadPlan } from '../shared/head-plan';
import { type ParsedArgs, UsageError, intOption, parseArgs } from './args';
import { formatTable } from './format';
import { type CommandHelp, SESSION_HELP, specOf, usageLine } from './help';
import { describeAcross, renderLengths, seqOption } from './plan-lengths';
import { PLAN_SPEED_HELP, renderSpeed, speedOptions } from './plan-speed';
import { analyzeForRuntime, checkVocabulary, fmt, printJson, progressPrinter, sessionSettings, withRuntime } from './runtime-args';

export const help: CommandHelp = {
  name: 'plan',
  summary: 'Finds a per-head attention plan under a budget (density, attention FLOPs or latency): profiles each head on ' +
    'calibration data (the attention recall of every candidate pattern, and its importance), picks one option per head by ' +
    'an exact integer program, and measures the plans and the uniform rules at the same budgets by running the model (bits ' +
    "per token on a token file's evaluation windows; otherwise the outputs against the original's). Under a latency budget " +
    'it times a few uniform plans first (the latency model the search uses), then times the plans it found; with ' +
    "--bench-seq L, also the plans' compute-reducing forms timed against the original and the fused model, as bench times them.",
  synopsis: 'MODEL.onnx (--tokens FILE | --inputs FILE) --budget KIND=VALUE [options]',
  options: [
    { name: 'tokens', value: 'FILE', help: "a language model's token ids (.bytes, .npy, .json) or text (any other file, tokenised as eval does): evaluation windows as eval takes them, calibration windows from the gaps between them" },
    { name: 'inputs', value: 'FILE', help: 'inputs for any other model (as compare takes them): they calibrate, and the outputs are compared on them' },
    {
      name: 'budget', value: 'KIND=VALUE',
      help: 'density=D: mean keys per query over all heads as a share of dense attention (causal counted as causal), D in (0, 1]; ' +
        "flops=F: attention FLOPs of the plan's compute-reducing form (as the rewrite report counts them) as a share of dense attention's, " +
        'or a count per sequence with a unit (1.5G); latency=S: the whole model\'s latency on the provider at the length, as a share of ' +
        "the dense model's measured latency, or a time (12ms); shares also as percentages (25%)",
    },
    { name: 'frontier', value: 'V,V,...', help: "further budgets of the same kind and unit to plan and measure for the frontier (bare values, e.g. 0.125,0.5 or 8ms,20ms)", default: 'half and double the budget' },
    { name: 'latency-runs', value: 'N', help: 'timed rounds of each latency bench run (a latency budget: the uniform plans of the latency model, then the plans found)', default: '20' },
    { name: 'seq', value: 'L[,L...]', help: 'tokens per window (--tokens); several lengths (e.g. 256,512, a density budget or a FLOP share): profile at each and search one plan over all, the budget holding at each, with span laws a + b·L (docs/advisor.md)', default: '512' },
    { name: 'eval-windows', value: 'N', help: 'evaluation windows, evenly spaced over the token file', default: '64' },
    { name: 'calib-windows', value: 'N', help: 'calibration windows, between the evaluation windows (attention maps, and the choice among candidate plans)', default: '4' },
    { name: 'importance-windows', value: 'N', help: 'calibration windows the head importance runs use (one run per head: profiling time grows with this)', default: '2' },
    { name: 'no-baselines', help: 'skip the uniform rules at the same densities' },
    { name: 'output', value: 'OUT.onnx', help: 'write the model rewritten by the chosen plan: the mask form under a density budget, the compute-reducing form (blocked) under a FLOP or latency budget' },
    { name: 'plan-out', value: 'PLAN.json', help: 'write the chosen plan (for rewrite --plan)' },
    ...PLAN_SPEED_HELP,
    ...SESSION_HELP,
  ],
  example: 'attention-lens plan model.onnx --tokens text.bytes --budget flops=0.3 --frontier 0.2,0.5 --plan-out plan.json --bench-seq 4096',
};

function parseBudgetOption(args: ParsedArgs): Budget {
  const raw = args.options.get('budget');
  if (typeof raw !== 'string') throw new UsageError(`--budget is required (${usageLine(help)})`);
  try {
    return parseBudget(raw);
  } catch (e) {
    if (e instanceof BudgetFormatError) throw new UsageError(`--budget: ${e.message}`);
    throw e;
  }
}

/** The budget, then the frontier's further values (same kind and unit), sorted; by default half and double the budget. */
function frontierBudgets(args: ParsedArgs, budget: Budget): Budget[] {
  const raw = args.options.get('frontier');
  if (raw === true) throw new UsageError(`--frontier needs values of the budget's kind, comma-separated (e.g. ${formatBudgetValue({ ...budget, value: budget.value / 2 })})`);
  let more: string[];
  if (raw === undefined) {
    const double = budget.unit === 'share' ? Math.min(1, budget.value * 2) : budget.value * 2;
    more = [budget.value / 2, double].map((v) => formatBudgetValue({ ...budget, value: v }));
  } else more = String(raw).split(',').map((x) => x.trim()).filter((x) => x !== '');
  let all: Budget[];
  try {
    all = withFurther(budget, more);
  } catch (e) {
    if (e instanceof BudgetFormatError) throw new UsageError(`--frontier: ${e.message}`);
    throw e;
  }
  return [all[0], ...all.slice(1).sort((a, b) => a.value - b.value)];
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
  const budget = parseBudgetOption(args);
  const budgets = frontierBudgets(args, budget);
  const latencyRuns = intOption(args, 'latency-runs', 20, 2);
  if (args.options.has('latency-runs') && budget.kind !== 'latency') throw new UsageError('--latency-runs applies to a latency budget');
  const seq = typeof tokens === 'string' ? seqOption(args, 512) : 0;
  if (Array.isArray(seq) && seq.length > 1) {
    if (budget.kind === 'latency') throw new UsageError('a latency budget plans one length; give one --seq (several lengths take a density or a FLOP budget)');
    if (budget.unit === 'flops') throw new UsageError('a FLOP count is the budget of one length; with several lengths give FLOPs as a share of dense attention (e.g. flops=0.25), which holds at each');
  }
  const output = args.options.get('output');
  const planOut = args.options.get('plan-out');
  for (const out of [output, planOut]) if (typeof out === 'string' && resolve(out) === resolve(model)) throw new UsageError(`${out} is the input model; the input is never overwritten`);
  const speed = speedOptions(args);
  const json = args.options.has('json');
  const show = progressPrinter(!json);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.on('SIGINT', onSigint);
  const scratch = mkdtempSync(join(tmpdir(), 'attention-lens-plan-'));
  try {
    const ids = typeof tokens === 'string' ? tokenIds(tokens, model, scratch) : undefined;
    const found = await withRuntime((client) =>
      adviseLengths(client, model, {
        data: ids
          ? { kind: 'tokens', file: ids, seq, evalWindows: intOption(args, 'eval-windows', 64, 1), calibrationWindows: intOption(args, 'calib-windows', 4, 1), importanceWindows: intOption(args, 'importance-windows', 2, 1) }
          : { kind: 'inputs', file },
        budgets,
        latencyRuns,
        baselines: !args.options.has('no-baselines'),
        ...(speed ? { speed } : {}),
        settings: sessionSettings(args),
        onProgress: show,
        signal: controller.signal,
      }),
    );
    // What the advisor says of its token file, said of the user's.
    const result = ids && ids !== file ? renamed(found, ids, file) : found;
    const chosen = result.frontier[0];
    if (typeof planOut === 'string') writeFileSync(planOut, serializeHeadPlan(chosen.plan));
    if (typeof output === 'string') writePlannedModel(model, chosen.plan, output, result.seq, budget.kind === 'density' ? 'mask' : 'blocked');
    if (json) printJson(result);
    else process.stdout.write(render(result));
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The token file the advisor splits: `--tokens` itself when it is one (.bytes, .npy, .json), else the ids of the text
 * as eval reads it (tokenised with the model's tokenizer.json, or bytes for a byte-level model) in a file in `dir`.
 */
function tokenIds(tokens: string, model: string, dir: string): string {
  const report = analyzeForRuntime(model, []);
  const cal = readCalibration(tokens, model, report?.model.inputs);
  if (!cal.ids) throw new UsageError(`--tokens ${tokens}: this is an inputs file; give it as --inputs`);
  checkVocabulary(cal.ids, report?.model.inputs.find((i) => i.role === 'input_ids')?.vocabSize, tokens);
  if (TOKEN_FILES.has(extname(tokens).toLowerCase())) return tokens;
  const file = join(dir, 'tokens.json');
  writeFileSync(file, JSON.stringify(Array.from(cal.ids)));
  return file;
}

const TOKEN_FILES = new Set(['.bytes', '.npy', '.json']);

function renamed<T>(result: T, from: string, to: string): T {
  const quoted = (x: string) => JSON.stringify(x).slice(1, -1);
  return JSON.parse(JSON.stringify(result).split(quoted(from)).join(quoted(to))) as T;
}

function render(r: AdviceResult): string {
  const p = r.profile;
  const chosen = r.frontier[0];
  const heads = p.sites.reduce((a, s) => a + s.heads, 0);
  const unit = { kind: r.budget.kind, unit: r.budget.unit };
  const value = (v: number) => formatBudgetValue({ ...unit, value: v });
  const density = r.budget.kind === 'density';
  const lines = [
    `${r.model}: per-head plan at ${r.lengths ? r.lengths.map((l) => l.seq).join(', ') : r.seq} tokens, ${r.budget.description} (${heads} heads in ${p.sites.length} sites)`,
    `calibration: ${p.calibration}${r.objective.startsWith('bits') ? `; head importance on ${p.importanceWindows} of them` : ''}`,
    `score: ${r.objective}`,
    `loss estimate: ${chosen.candidates.map((c) => c.proxy).join(' and ')}, head importance from zeroing (${p.metric === 'kl' ? 'KL' : 'mean |Δ|'} of ${p.output})`,
    ...(r.latencyModel ? latencyModelLines(r) : []),
    '',
    `chosen plan: ${density ? '' : `${costText(r, chosen.cost)}, `}density ${fmt(chosen.density, 4)}, ` +
      `${chosen.evaluation.metric} ${fmt(chosen.evaluation.value, 4)} (original ${fmt(r.dense?.value, 4)})`,
    ...(chosen.latency ? [`  measured latency: ${measuredText(chosen.latency)}`] : []),
    ...Object.entries(chosen.plan.sites).map(([site, hs]) => `  site ${site}: ${hs.map((c) => describeAcross(c, r.lengths)).join(' | ')}`),
  ];
  for (const s of p.skipped) lines.push(`  site ${s.site} stays dense: ${s.reason}`);
  lines.push(...renderLengths(r));
  lines.push('', `frontier${r.lengths ? ` at ${r.seq} tokens` : ''} (${chosen.evaluation.metric}, lower is better; original ${fmt(r.dense?.value, 4)}${density ? '' : `; uniform rules as (rule, ${r.budget.kind}, density)`}):`);
  const families = [...new Set(r.baselines.filter((b) => (b.seq ?? r.seq) === r.seq).map((b) => b.family))];
  const costHeads = density ? [] : [`plan ${r.budget.kind}`, ...(r.budget.kind === 'latency' ? ['measured'] : [])];
  lines.push(
    formatTable(
      ['budget', ...costHeads, 'plan density', 'plan', ...families],
      r.frontier
        .slice()
        .sort((a, b) => a.budget - b.budget)
        .map((f) => [
          value(f.budget), ...(density ? [] : [costText(r, f.cost)]), ...(f.latency ? [measuredText(f.latency)] : []), fmt(f.density, 4), fmt(f.evaluation.value, 4),
          ...families.map((fam) => {
            const b = r.baselines.find((x) => x.budget === f.budget && x.family === fam && (x.seq ?? r.seq) === r.seq);
            if (!b || !b.evaluation) return '-';
            return `${fmt(b.evaluation.value, 4)} (${b.rule}, ${density ? '' : `${value(b.cost!)}, `}${fmt(b.density, 3)})`;
          }),
        ]),
    ),
  );
  lines.push(...renderSpeed(r));
  const t = r.timings;
  lines.push('', `time: profile ${fmt(t.profileMs / 1000, 1)} s (maps ${fmt(p.timings.mapsMs / 1000, 1)} s, importance ${fmt(p.timings.importanceMs / 1000, 1)} s), search ${fmt(t.searchMs / 1000, 1)} s, validation ${fmt(t.validateMs / 1000, 1)} s` +
    `${t.latencyMs === undefined ? '' : `, latency benches ${fmt(t.latencyMs / 1000, 1)} s`}${t.speedMs === undefined ? '' : `, speed ${fmt(t.speedMs / 1000, 1)} s`}`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}

/** A plan's cost in words: "attention FLOPs 0.29 of dense", "latency estimated 0.8 of dense (157.4 ms)". */
function costText(r: AdviceResult, cost: number): string {
  const b = r.budget;
  if (b.kind === 'flops') {
    return b.unit === 'share' ? `attention FLOPs ${fmt(cost, 4)} of dense` : `attention FLOPs ${formatBudgetValue({ kind: 'flops', unit: 'flops', value: cost })}`;
  }
  const dense = r.latencyModel!.dense.p50;
  const ms = b.unit === 'ms' ? cost : cost * dense;
  return `latency estimated ${fmt(ms, 2)} ms (${fmt(ms / dense, 3)} of dense)`;
}

/** The latency model: what was timed, where, and the fitted cost per head of each form. */
function latencyModelLines(r: AdviceResult): string[] {
  const m = r.latencyModel!;
  const ci = (t: { ci95: [number, number] }) => `[${fmt(t.ci95[0], 2)}, ${fmt(t.ci95[1], 2)}]`;
  return [
    `latency model (${m.ep}, ${m.machine}; inputs ${m.inputs}): dense ${fmt(m.dense.p50, 2)} ms ${ci(m.dense)} + Σ per head Δ of its choice, fitted per form from uniform plans:`,
    ...m.points.map((pt) => `  ${pt.label} (${pt.form}, ${pt.heads} heads): ${fmt(pt.latencyMs.p50, 2)} ms ${ci(pt.latencyMs)}, Δ ${fmt(pt.deltaPerHeadMs, 4)} ms per head`),
    ...m.fits.map((f) => `  fit ${f.family}: Δ = ${fmt(f.a, 4)} ms + ${(f.b * 1e6).toPrecision(3)} ms per MFLOP (${f.points} point${f.points === 1 ? '' : 's'}` +
      `${f.slope === 'window' ? ", the windows' slope" : ''}, largest residual ${fmt(f.maxResidualMs, 3)} ms)`),
    m.groups
      ? `  head groups: ${m.groups.label}: ${fmt(m.groups.latencyMs.p50, 2)} ms ${ci(m.groups.latencyMs)} against ${fmt(m.groups.predictedMs, 2)} ms by the lines, ` +
        `${fmt(m.groups.perGroupMs, 3)} ms per group beyond a site's first (${m.groups.extraGroups} such groups)${m.groups.perGroupMs > 0 ? '' : ': not above 0, so not charged'}`
      : '  head groups: fewer than two windows timed, so splitting a site into groups is not charged',
  ];
}

function measuredText(l: NonNullable<AdviceResult['frontier'][number]['latency']>): string {
  const ms = `${fmt(l.measuredMs.p50, 2)} ms [${fmt(l.measuredMs.ci95[0], 2)}, ${fmt(l.measuredMs.ci95[1], 2)}]`;
  const share = `${fmt(l.share.value, 3)} of dense [${fmt(l.share.ci95[0], 3)}, ${fmt(l.share.ci95[1], 3)}]`;
  const verdict = l.verdict === 'met' ? 'budget met' : l.verdict === 'exceeded' ? 'OVER the budget' : 'budget not shown met';
  return `${ms}, ${share}: ${verdict}`;
}
