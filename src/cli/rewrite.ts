// `attention-lens rewrite MODEL.onnx STEP [--then STEP]... -o OUT.onnx [--json]`: applies the steps in order and saves
// the rewritten model. A step is one or more rule flags with its own `--sites`; the rule flags, their values and their
// help come from the declarations in src/shared/rule-decls.ts, which the Rewrite studio uses too.
//
// Weights stream (see pipeline.ts): unchanged ones are referenced in the input's data file when the output sits in
// its folder (`--self-contained` copies them instead), changed ones go to `<OUT>.onnx.data`. Progress goes to stderr
// when it is a terminal (or with --progress); Ctrl-C stops at the next safe point and removes what was half written.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { WorkProgress } from '../analysis/onnx/progress';
import { FUSE_OPS, FUSE_TARGETS } from '../rewriters/fuse/choose';
import { CoreCancelled, CoreClient, CoreError } from './core-client';
import { rewriteModel, type RuleRequest, type RewriteReport } from '../rewriters/pipeline';
import { isRuleFlag, flagTakesValue } from '../shared/rule-decls';
import { analyzeModel } from '../analysis/analyze';
import { hasAutoImpl, resolveAutoImpl, type ImplChoice } from '../orchestrate/impl-auto';
import { RuntimeClient, RuntimeError } from '../runtime/client';
import { EXECUTION_PROVIDERS, type ExecutionProvider, isExecutionProvider } from '../runtime/protocol';
import { parseHeadPlan, planJson, PlanFormatError } from '../shared/head-plan';
import { oneLine } from '../analysis/onnx/errors';
import { THEN, parseStepFlags, rulesHelp } from '../shared/rule-steps';
import { UsageError } from './args';
import { checkLength } from './runtime-args';
import { formatTable, humanBytes, humanCount } from './format';
import { type CommandHelp, usageLine } from './help';

export const help: CommandHelp = {
  name: 'rewrite',
  summary: 'Rewrites attention sites into sparse, shared or pruned variants and saves the result (the input is only read). ' +
    'Steps apply in order; each step is one or more rule flags, narrowed to some sites with --sites; --then starts the next step.',
  synopsis: 'MODEL.onnx RULE-FLAGS [--sites LIST] [--then RULE-FLAGS [--sites LIST]]... -o OUT.onnx',
  options: [
    { name: 'output', value: 'OUT.onnx', help: 'where the rewritten model goes (also -o); never the input' },
    { name: 'sites', value: 'LIST', help: 'site numbers (as `analyze` prints them) the step\'s per-site rules apply to, e.g. 0,2', default: 'every site the rule applies to' },
    { name: 'then', help: 'ends a step and starts the next one' },
    { name: 'seq', value: 'N', help: 'sequence length of the analytic FLOP and memory figures, and of the timing for --impl auto', default: 'the model\'s own length where it is fixed (an image model\'s patches), else 1024' },
    { name: 'precision', value: 'fp32|fp16', help: 'fp16: float16 weights and computation after the rules, float32 inputs and outputs kept, softmax and normalisation in float32 (compare MODEL OUT shows the accuracy); may be given without a rule', default: 'fp32' },
    { name: 'ep', value: 'PROVIDER', help: '--impl auto: the execution provider the candidates are timed on (cpu, cuda, ...)', default: 'cpu' },
    { name: 'auto-runs', value: 'N', help: '--impl auto: timed runs per candidate (interleaved, after one warm-up)', default: '5' },
    { name: 'external-data', value: 'auto|embed|external', help: 'where the weights go: auto keeps large models\' weights in OUT.onnx.data', default: 'auto' },
    { name: 'self-contained', help: 'copy unchanged external weights into OUT.onnx.data instead of referencing the input\'s data file' },
    { name: 'progress', help: 'show progress on stderr', default: 'when stderr is a terminal' },
    { name: 'quiet', help: 'no progress on stderr' },
    { name: 'json', help: 'print the rewrite report as JSON' },
  ],
  more: `rules:\n${rulesHelp()}`,
  example: 'attention-lens rewrite examples/demo-llama.onnx --window 16 --impl blocked --sites 0 --then --prune-heads 1:0 -o demo.w16.onnx',
};

export async function run(argv: string[]): Promise<number> {
  const parsed = parseRewriteArgs(argv);
  if (fs.existsSync(parsed.output) && path.resolve(parsed.output) === path.resolve(parsed.input)) {
    throw new UsageError('the output must not be the input model');
  }
  const showProgress = parsed.progress ?? process.stderr.isTTY === true;
  const progress = showProgress ? progressPrinter(process.stderr) : undefined;
  let report: RewriteReport & { implChoices?: ImplChoice[] };
  try {
    const auto = hasAutoImpl(parsed.requests) ? await chooseImpl(parsed, showProgress) : null;
    report = await rewrite(auto ? { ...parsed, requests: auto.requests } : parsed, progress?.show);
    if (auto) report = { ...report, implChoices: auto.choices };
  } finally {
    progress?.end();
  }
  process.stdout.write(parsed.json ? JSON.stringify(report) + '\n' : renderRewrite(report, parsed.input, parsed.output) + renderImplChoices(report.implChoices ?? []));
  return 0;
}

/** `--impl auto`: times the exact forms of each such step on the provider (src/orchestrate/impl-auto.ts). */
async function chooseImpl(parsed: ParsedRewrite, showProgress: boolean): Promise<{ requests: RuleRequest[]; choices: ImplChoice[] }> {
  const model = analyzeModel(parsed.input);
  // Without --seq, the length the rewrite report's figures use (the model's own where it is fixed), within the longest
  // the model takes; a --seq it cannot run is refused with its limit, as the runtime commands do.
  const seq = parsed.seqLen ?? Math.min(model.costSeqLen, model.model.maxPositions ?? Infinity);
  checkLength(model, seq, `--seq ${seq} (the length --impl auto times at)`);
  const client = new RuntimeClient();
  try {
    return await resolveAutoImpl(client, parsed.input, parsed.requests, {
      seq, ep: parsed.ep, runs: parsed.autoRuns, precision: parsed.precision,
      ...(showProgress ? { onProgress: (m: string) => process.stderr.write(`impl auto: ${m}\n`) } : {}),
    });
  } catch (e) {
    if (e instanceof RuntimeError) throw Object.assign(new Error(`--impl auto: ${e.message}`), { userError: true });
    throw e;
  } finally {
    await client.dispose();
  }
}

/** What --impl auto measured: per step, each candidate's median with its interval and its speedup over the mask form. */
export function renderImplChoices(choices: ImplChoice[]): string {
  const d = (x: number) => x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2);
  const lines: string[] = [];
  for (const c of choices) {
    const where = `${c.ranOn ?? c.ep}${c.ranOn && c.ranOn !== c.ep ? ` (asked for ${c.ep})` : ''}${c.precision === 'fp16' ? ', in float16' : ''}`;
    lines.push(`impl auto for step ${c.step + 1} (${c.rule}) at ${c.seq} tokens on ${where}: chose ${c.chosen.label}`);
    lines.push(formatTable(
      ['form', 'p50 ms [95% CI]', 'runs', 'vs mask [95% CI]'],
      c.measured.map((m) => [
        m.label + (m.label === c.chosen.label ? ' *' : ''),
        `${d(m.latencyMs.p50)} [${d(m.latencyMs.ci95[0])}–${d(m.latencyMs.ci95[1])}]`,
        String(m.latencyMs.runs),
        `${d(m.speedupVsMask.ratio)}× [${d(m.speedupVsMask.ci95[0])}–${d(m.speedupVsMask.ci95[1])}]${m.speedupVsMask.significant ? '' : ' ≈1'}`,
      ]),
    ));
    for (const n of c.notMeasured) lines.push(`not measured: ${n.label}: ${n.reason}`);
    for (const m of c.measured) for (const w of m.warnings) lines.push(`timing warning (${m.label}): ${w}`);
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

/**
 * In the core thread when the build has one next to this file (dist/), so that Ctrl-C can reach the rewrite: the
 * main thread stays free to take the signal and sets the thread's cancel flag. From sources (tests), in this thread.
 */
async function rewrite(parsed: ParsedRewrite, onProgress?: (p: WorkProgress) => void): Promise<RewriteReport> {
  const save = { externalData: parsed.externalData, copyExternal: parsed.selfContained };
  const script = path.join(__dirname, 'core-thread.js');
  const precision = parsed.precision === 'fp16' ? { precision: parsed.precision } : {};
  if (!fs.existsSync(script)) return rewriteModel(parsed.input, parsed.requests, parsed.output, { seqLen: parsed.seqLen, save, ...precision, ...(onProgress ? { onProgress } : {}) });
  const core = new CoreClient(script);
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    process.stderr.write('\nstopping at the next safe point and removing what was written (Ctrl-C again to quit at once)\n');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    return await core.request(
      { type: 'write', file: parsed.input, steps: [], requests: parsed.requests, output: parsed.output, seqLen: parsed.seqLen, ...save, ...precision },
      controller.signal,
      onProgress,
    );
  } catch (e) {
    if (e instanceof CoreCancelled) {
      await core.settled();
      throw Object.assign(new Error('rewrite cancelled; nothing was written'), { userError: true, exitCode: 130 });
    }
    // A bug in the thread: show where it happened there, not where the reply arrived.
    if (e instanceof CoreError && !e.userError && e.threadStack) e.stack = e.threadStack;
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    core.dispose();
  }
}

/** One status line, rewritten in place on a terminal and printed at most once a second otherwise. */
function progressPrinter(out: NodeJS.WriteStream): { show: (p: WorkProgress) => void; end: () => void } {
  const tty = out.isTTY === true;
  let last = 0;
  let phase = '';
  let shown = false;
  return {
    show(p) {
      const now = Date.now();
      if (!tty && p.phase === phase && now - last < 1000) return;
      last = now;
      phase = p.phase;
      const amount = p.phase === 'save' && p.total > 0 ? ` ${humanBytes(p.done)} of ${humanBytes(p.total)} (${Math.round((100 * p.done) / p.total)}%)` : '';
      const line = `${p.phase}: ${p.message}${amount}`;
      out.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
      shown = true;
    },
    end() {
      if (tty && shown) out.write('\n');
    },
  };
}

export interface ParsedRewrite {
  input: string;
  output: string;
  requests: RuleRequest[];
  json: boolean;
  /** Unset: the analysis's default length. */
  seqLen?: number;
  externalData: 'auto' | 'embed' | 'external';
  /** Copy unchanged weights into the output's data file instead of referencing the input's. */
  selfContained: boolean;
  /** Show progress on stderr (default: when stderr is a terminal). */
  progress?: boolean;
  precision: 'fp32' | 'fp16';
  /** --impl auto: the provider and the timed runs per candidate. */
  ep: ExecutionProvider;
  autoRuns: number;
}

export function parseRewriteArgs(argv: string[]): ParsedRewrite {
  const positional: string[] = [];
  const steps: { flags: string[]; sites?: number[] }[] = [{ flags: [] }];
  let output: string | undefined;
  let json = false;
  let seqLen: number | undefined;
  let externalData: ParsedRewrite['externalData'] = 'auto';
  let selfContained = false;
  let progress: boolean | undefined;
  let ep: ExecutionProvider = 'cpu';
  let autoRuns = 5;
  let precision: ParsedRewrite['precision'] = 'fp32';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    const step = steps[steps.length - 1];
    switch (a) {
      case '-o': case '--output': output = value(); break;
      case '--json': json = true; break;
      case '--self-contained': selfContained = true; break;
      case '--progress': progress = true; break;
      case '--quiet': progress = false; break;
      case '--seq': seqLen = positiveInt(value(), a); break;
      case '--auto-runs': autoRuns = positiveInt(value(), a); break;
      case '--precision': precision = choice(value(), a, ['fp32', 'fp16'] as const); break;
      case '--ep': {
        const v = value();
        if (!isExecutionProvider(v)) throw new UsageError(`--ep: unknown provider '${v}' (choose from ${EXECUTION_PROVIDERS.join(', ')})`);
        ep = v;
        break;
      }
      case '--sites': {
        if (step.sites) throw new UsageError(`--sites is given twice in one step; start another step with ${THEN}`);
        step.sites = list(value(), a);
        break;
      }
      case THEN: steps.push({ flags: [] }); break;
      case '--external-data': {
        const v = value();
        if (v !== 'auto' && v !== 'embed' && v !== 'external') throw new UsageError('--external-data must be auto, embed or external');
        externalData = v;
        break;
      }
      default:
        if (a === PLAN_FLAG) step.flags.push(a, readPlan(value()));
        else if (isRuleFlag(a)) step.flags.push(a, ...(flagTakesValue(a) ? [value()] : []));
        else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}\n${usageLine(help)}`);
        else positional.push(a);
    }
  }
  if (positional.length !== 1) throw new UsageError(usageLine(help));
  if (!output) throw new UsageError('rewrite needs -o OUT.onnx');
  const requests: RuleRequest[] = [];
  for (const [n, step] of steps.entries()) {
    // `--precision fp16` alone converts without a rule.
    if (step.flags.length === 0 && steps.length === 1 && precision === 'fp16' && !step.sites) continue;
    if (step.flags.length === 0) throw new UsageError(steps.length > 1 ? `step ${n + 1} has no rule (${THEN} must be followed by rule flags)` : `no rule given\n${usageLine(help)}`);
    try {
      requests.push(...parseStepFlags(step.flags, step.sites));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  if (selfContained && externalData === 'embed') throw new UsageError('--self-contained applies to external data; --external-data embed already puts every weight in the .onnx');
  return { input: positional[0], output, requests, json, seqLen, externalData, selfContained, precision, ep, autoRuns, ...(progress !== undefined ? { progress } : {}) };
}

const PLAN_FLAG = '--plan';

/**
 * The plan after `--plan`: a file (or the JSON itself, as a printed command line gives it), read and checked here so
 * that a problem names the file; the step then carries the plan's canonical JSON.
 */
function readPlan(arg: string): string {
  let text = arg;
  const where = arg.trimStart().startsWith('{') ? 'the plan given' : arg;
  if (where === arg) {
    try {
      text = fs.readFileSync(arg, 'utf8');
    } catch (e) {
      throw new UsageError(`${PLAN_FLAG} ${arg}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${PLAN_FLAG} ${where}: not JSON (${oneLine((e as Error).message)})`);
  }
  try {
    return JSON.stringify(planJson(parseHeadPlan(json)));
  } catch (e) {
    if (e instanceof PlanFormatError) throw new UsageError(`${PLAN_FLAG} ${where}: ${oneLine(e.message)}`);
    throw e;
  }
}

function choice<T extends string>(v: string, flag: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}
function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got '${v}'`);
  return n;
}
function list(v: string, flag: string): number[] {
  const out = v.split(',').map((x) => Number(x.trim()));
  if (out.some((n) => !Number.isInteger(n) || n < 0)) throw new UsageError(`${flag} takes site numbers like 0,2, got '${v}'`);
  return out;
}

/** `input` and `output` as the person typed them (the report holds absolute paths). */
export function renderRewrite(r: RewriteReport, input = r.input, output = r.output?.file): string {
  const lines = [`${input} -> ${output ?? '(not saved)'}`];
  for (const a of r.applied) {
    if (a.rule === 'plan') {
      // A plan's parameters are the whole plan: show it per site, head by head, instead.
      const impl = (a.params as { impl?: string }).impl ?? 'mask';
      lines.push(`plan (${impl}) on sites ${a.sites.join(', ')}`);
      for (const c of a.changes) lines.push(`  site ${c.site}: ${String(c.after.plan)}`);
    } else {
      lines.push(`${a.rule} ${JSON.stringify(a.params)} on sites ${a.sites.join(', ')}`);
    }
    lines.push(
      formatTable(
        ['site', 'before', 'after', 'FLOPs before', 'FLOPs after', 'nodes +/-'],
        a.changes.map((c) => [
          String(c.site), JSON.stringify(c.before), JSON.stringify(c.after),
          c.flopsBefore === null ? '?' : humanCount(c.flopsBefore), c.flopsAfter === null ? '?' : humanCount(c.flopsAfter),
          `+${c.nodesAdded}/-${c.nodesRemoved}`,
        ]),
      ),
    );
  }
  const ratio = r.flopsAfter > 0 ? (r.flopsBefore / r.flopsAfter).toFixed(2) : 'inf';
  lines.push(`attention FLOPs at ${r.seqLen} ${r.seqUnit ?? 'tokens'}: ${humanCount(r.flopsBefore)} -> ${humanCount(r.flopsAfter)} (bound ${ratio}x)`);
  if (r.precision) {
    const kept = Object.entries(r.precision.keptFloat32).map(([op, n]) => `${n} ${op}`).join(', ') || 'none';
    lines.push(`float16: ${r.precision.convertedConstants} constants converted (${humanBytes(r.precision.bytesBefore)} -> ${humanBytes(r.precision.bytesAfter)}), kept in float32: ${kept}; ${r.precision.castsAdded} casts added${r.precision.clampedElements ? `; ${r.precision.clampedElements} constant elements clamped to ±65504` : ''}; inputs and outputs stay float32 (compare shows the accuracy)`);
  }
  const placed = r.output?.weights;
  if (placed) lines.push(`weights: ${describePlacement(placed, r.output!)}`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}

/** Where the saved model's weights are, in one line. */
export function describePlacement(w: NonNullable<RewriteReport['output']>['weights'], out: NonNullable<RewriteReport['output']>): string {
  const parts: string[] = [];
  if (w.embedded.tensors) parts.push(`${humanBytes(w.embedded.bytes)} embedded`);
  if (w.written.tensors) parts.push(`${humanBytes(w.written.bytes)} written to ${path.basename(out.dataFile ?? '')}`);
  if (w.copied.tensors) parts.push(`${humanBytes(w.copied.bytes)} copied to ${path.basename(out.dataFile ?? '')}`);
  for (const r of w.referenced) parts.push(`${humanBytes(r.bytes)} read in place from ${r.location}`);
  return `${parts.join(', ') || 'none'} (${w.decision})`;
}
