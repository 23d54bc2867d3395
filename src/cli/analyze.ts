// `attention-lens analyze MODEL.onnx [--json] [--seq N]`: the sites of a model, as a table or as the report JSON.
import { analyzeModel } from '../analysis/analyze';
import type { AnalysisReport } from '../analysis/report/types';
import { intOption, parseArgs, UsageError } from './args';
import { formatTable, humanCount } from './format';

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { json: false, seq: true });
  if (args.positional.length !== 1) throw new UsageError('usage: attention-lens analyze MODEL.onnx [--json] [--seq N]');
  const report = analyzeModel(args.positional[0], { seqLen: intOption(args, 'seq', 1024) });
  process.stdout.write(args.options.has('json') ? JSON.stringify(report) + '\n' : renderReport(report));
  return 0;
}

export function renderReport(r: AnalysisReport): string {
  const m = r.model;
  const lines: string[] = [];
  lines.push(`${m.path}`);
  lines.push(
    `  IR ${m.irVersion}, opsets ${Object.entries(m.opsets).map(([d, v]) => `${d} ${v}`).join(', ')}; ${m.nodeCount} nodes, ` +
      `${humanCount(m.parameterCount)} parameters${m.producer ? `; made by ${m.producer}` : ''}`,
  );
  lines.push(`  inputs: ${m.inputs.map((i) => `${i.name} ${i.dtype}[${i.shape.map((d) => d ?? '?').join(',')}] (${i.role}${i.vocabSize ? `, vocab ${i.vocabSize}` : ''})`).join('; ')}`);
  lines.push('');
  const total = r.sites.reduce((a, s) => a + (s.flops ?? 0), 0);
  lines.push(`${r.sites.length} attention site(s); cost at ${r.costSeqLen} tokens:`);
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
  if (r.unmatched.length) {
    lines.push('');
    lines.push(`${r.unmatched.length} softmax/attention node(s) not claimed:`);
    for (const u of r.unmatched) lines.push(`  ${u.node}: ${u.reason}`);
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}
