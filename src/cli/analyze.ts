// `attention-lens analyze MODEL.onnx [--json] [--seq N]`: the sites of a model, as a table or as the report JSON.
import { analyzeModel } from '../analysis/analyze';
import type { AnalysisReport, SitePlan } from '../analysis/report/types';
import { sequenceUnit } from '../analysis/report/units';
import { intOption, parseArgs, UsageError } from './args';
import { formatTable, humanCount } from './format';
import { type CommandHelp, specOf, usageLine } from './help';

export const help: CommandHelp = {
  name: 'analyze',
  summary: 'Finds every attention block of an ONNX model and describes it: kind, causality, heads, KV heads, head size, scale, ' +
    'mask, positions, KV cache, how it is written, and its analytic cost. Softmaxes that are not attention are listed with the reason.',
  synopsis: '[MODEL.onnx] [--json] [--seq N]',
  options: [
    { name: 'json', help: 'print the report as one JSON object (schemaVersion, model, sites, unmatched)' },
    { name: 'seq', value: 'N', help: 'sequence length of the cost figures', default: 'the model\'s own length where it is fixed (an image model\'s patches), else 1024' },
  ],
  example: 'attention-lens analyze examples/demo-llama.onnx --json',
};

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, specOf(help.options));
  if (args.positional.length !== 1) throw new UsageError(usageLine(help));
  const report = analyzeModel(args.positional[0], args.options.has('seq') ? { seqLen: intOption(args, 'seq', 1024, 1) } : {});
  process.stdout.write(args.options.has('json') ? JSON.stringify(report) + '\n' : renderReport(report, args.positional[0]));
  return 0;
}

/** `given`: the path as the person typed it (the report holds the absolute one). */
export function renderReport(r: AnalysisReport, given = r.model.path): string {
  const m = r.model;
  const lines: string[] = [];
  lines.push(given);
  lines.push(
    `  IR ${m.irVersion}, opsets ${Object.entries(m.opsets).map(([d, v]) => `${d} ${v}`).join(', ')}; ${m.nodeCount} nodes, ` +
      `${humanCount(m.parameterCount)} parameters${m.producer ? `; made by ${m.producer}` : ''}`,
  );
  lines.push(`  inputs: ${m.inputs.map((i) => `${i.name} ${i.dtype}[${i.shape.map((d) => d ?? '?').join(',')}] (${i.role}${i.vocabSize ? `, vocab ${i.vocabSize}` : ''})`).join('; ')}`);
  lines.push('');
  const total = r.sites.reduce((a, s) => a + (s.flops ?? 0), 0);
  lines.push(`${r.sites.length} attention site(s); cost at ${r.costSeqLen} ${sequenceUnit(m.inputs)}:`);
  lines.push(
    formatTable(
      ['#', 'kind', 'causal', 'heads', 'kv', 'dim', 'scale', 'mask', 'position', 'cache', 'form', 'FLOPs', 'share', 'nodes'],
      r.sites.map((s) => [
        String(s.id), s.kind, s.causal ? 'yes' : 'no', String(s.heads ?? '?'), String(s.kvHeads ?? '?'), String(s.headDim ?? '?'),
        s.scale === null ? '?' : s.scale.toPrecision(4), s.maskType + (s.window ? ` ${s.window}` : ''), s.position,
        s.kvCache.reads || s.kvCache.writes ? `${s.kvCache.reads ? 'r' : ''}${s.kvCache.writes ? 'w' : ''}` : '-', s.form,
        s.flops === null ? '?' : humanCount(s.flops), total && s.flops ? `${((100 * s.flops) / total).toFixed(1)}%` : '-', String(s.nodes.length),
      ]),
    ),
  );
  const planned = r.sites.filter((s) => s.plan);
  if (planned.length) {
    lines.push('');
    lines.push(`${planned.length} site(s) with a per-head plan:`);
    for (const s of planned) lines.push(`  site ${s.id}: ${describePlan(s.plan!)}`);
  }
  if (r.unmatched.length) {
    lines.push('');
    lines.push(`${r.unmatched.length} softmax/attention node(s) not claimed:`);
    for (const u of r.unmatched) lines.push(`  ${u.node}: ${u.reason}`);
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}

/** "window 64, window 64, dense, pruned; computed in 2 head groups (heads 0, 1: window 64; head 2: dense)". */
function describePlan(p: SitePlan): string {
  const choices = p.choices ? p.choices.join(', ') : 'choices not recorded';
  if (!p.groups) return choices;
  const groups = p.groups.map((g) => `${g.heads.length === 1 ? 'head' : 'heads'} ${g.heads.join(', ')}: ${g.choice ?? '?'}`);
  return `${choices}; computed in ${p.groups.length} head groups (${groups.join('; ')})`;
}
