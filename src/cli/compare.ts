// `attention-lens compare A.onnx B.onnx`: the variant B against the reference A on the same inputs, output by output.
import type { CompareResult } from '../runtime/protocol';
import { UsageError, parseArgs } from './args';
import { formatTable } from './format';
import { type CommandHelp, SESSION_HELP, SYNTHESIS_HELP, specOf, usageLine } from './help';
import { modelLabel, analyzeForRuntime, fmt, pct, runInputs, printJson, sessionSettings, withRuntime } from './runtime-args';

export const help: CommandHelp = {
  name: 'compare',
  summary: 'Runs a variant B and its reference A on the same inputs and compares them output by output: max and mean |diff|, ' +
    'relative difference, cosine, and for logits KL divergence, top-1 agreement and top-5 overlap.',
  synopsis: 'A.onnx B.onnx [options]',
  options: [...SYNTHESIS_HELP, ...SESSION_HELP],
  example: 'attention-lens compare examples/demo-llama.onnx demo.w16.onnx --seq 512',
};

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, specOf(help.options));
  if (args.positional.length !== 2) throw new UsageError(usageLine(help));
  const [a, b] = args.positional;
  const warnings: string[] = [];
  const report = analyzeForRuntime(a, warnings);
  const { source, note } = runInputs(args, a, report);
  const result = await withRuntime((client) => client.compare({ a, b, settings: sessionSettings(args), inputs: source }));
  for (const w of [...result.providerA.warnings, ...result.providerB.warnings, ...result.fed.warnings]) if (!warnings.includes(w)) warnings.push(w);
  if (result.outputs.length === 0) {
    const why = result.mismatched.length > 0
      ? `every shared output differs in shape (${result.mismatched.map((m) => `${m.name}: ${m.reason}`).join('; ')})`
      : `they share no output name (A: ${result.onlyInA.join(', ')}; B: ${result.onlyInB.join(', ')})`;
    throw new UsageError(`nothing to compare: ${why}`);
  }
  if (args.options.has('json')) {
    printJson({
      a, b,
      epA: result.providerA.used,
      epB: result.providerB.used,
      inputs: result.fed.shapes,
      outputs: result.outputs,
      mismatched: result.mismatched,
      onlyInA: result.onlyInA,
      onlyInB: result.onlyInB,
      warnings,
    });
  } else {
    process.stdout.write(render(a, b, result, warnings, note));
  }
  return 0;
}

function render(a: string, b: string, r: CompareResult, warnings: string[], note: string | null): string {
  const lines = [`${modelLabel(b)} against ${modelLabel(a)} (${r.providerA.used}), inputs ${Object.entries(r.fed.shapes).map(([n, s]) => `${n}[${s.dims.join(',')}]`).join(' ')}`];
  if (note) lines.push(note);
  lines.push(
    formatTable(
      ['output', 'shape', 'max |diff|', 'mean |diff|', 'relative', 'cosine', 'KL', 'top-1', 'top-5'],
      r.outputs.map((o) => [
        o.name, o.shape.join('x'), fmt(o.maxAbsDiff, 6), fmt(o.meanAbsDiff, 6), fmt(o.relativeDiff, 6), fmt(o.cosine, 6),
        o.logits ? fmt(o.logits.klDivergence, 6) : '-', o.logits ? pct(o.logits.top1Agreement) : '-', o.logits ? pct(o.logits.top5Overlap) : '-',
      ]),
    ),
  );
  for (const m of r.mismatched) lines.push(`not compared: ${m.name}: ${m.reason}`);
  if (r.onlyInA.length) lines.push(`only in ${modelLabel(a)}: ${r.onlyInA.join(', ')}`);
  if (r.onlyInB.length) lines.push(`only in ${modelLabel(b)}: ${r.onlyInB.join(', ')}`);
  for (const w of warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}
