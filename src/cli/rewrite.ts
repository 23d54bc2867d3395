// `attention-lens rewrite MODEL.onnx STEP [--then STEP]... -o OUT.onnx [--json]`: applies the steps in order and saves
// the rewritten model. A step is one or more rule flags with its own `--sites`; the rule flags, their values and their
// help come from the declarations in src/shared/rule-decls.ts, which the Rewrite studio uses too.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FUSE_OPS, FUSE_TARGETS } from '../rewriters/fuse/choose';
import { rewriteModel, type RuleRequest, type RewriteReport } from '../rewriters/pipeline';
import { isRuleFlag, flagTakesValue } from '../shared/rule-decls';
import { THEN, parseStepFlags, rulesHelp } from '../shared/rule-steps';
import { UsageError } from './args';
import { formatTable, humanCount } from './format';
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
    { name: 'seq', value: 'N', help: 'sequence length of the analytic FLOP and memory figures', default: '1024' },
    { name: 'external-data', value: 'auto|embed|external', help: 'where the weights go: auto keeps large models\' weights in OUT.onnx.data', default: 'auto' },
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
  const report = rewriteModel(parsed.input, parsed.requests, parsed.output, {
    seqLen: parsed.seqLen,
    save: { externalData: parsed.externalData },
  });
  process.stdout.write(parsed.json ? JSON.stringify(report) + '\n' : renderRewrite(report, parsed.input, parsed.output));
  return 0;
}

export interface ParsedRewrite {
  input: string;
  output: string;
  requests: RuleRequest[];
  json: boolean;
  seqLen: number;
  externalData: 'auto' | 'embed' | 'external';
}

export function parseRewriteArgs(argv: string[]): ParsedRewrite {
  const positional: string[] = [];
  const steps: { flags: string[]; sites?: number[] }[] = [{ flags: [] }];
  let output: string | undefined;
  let json = false;
  let seqLen = 1024;
  let externalData: ParsedRewrite['externalData'] = 'auto';
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
      case '--seq': seqLen = positiveInt(value(), a); break;
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
        if (isRuleFlag(a)) step.flags.push(a, ...(flagTakesValue(a) ? [value()] : []));
        else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}\n${usageLine(help)}`);
        else positional.push(a);
    }
  }
  if (positional.length !== 1) throw new UsageError(usageLine(help));
  if (!output) throw new UsageError('rewrite needs -o OUT.onnx');
  const requests: RuleRequest[] = [];
  for (const [n, step] of steps.entries()) {
    if (step.flags.length === 0) throw new UsageError(steps.length > 1 ? `step ${n + 1} has no rule (${THEN} must be followed by rule flags)` : `no rule given\n${usageLine(help)}`);
    try {
      requests.push(...parseStepFlags(step.flags, step.sites));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  return { input: positional[0], output, requests, json, seqLen, externalData };
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
    lines.push(`${a.rule} ${JSON.stringify(a.params)} on sites ${a.sites.join(', ')}`);
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
  lines.push(`attention FLOPs at ${r.seqLen} tokens: ${humanCount(r.flopsBefore)} -> ${humanCount(r.flopsAfter)} (bound ${ratio}x)`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}
