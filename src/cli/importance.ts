// `attention-lens importance MODEL.onnx [--inputs FILE] --json`: per-site, per-head importance (methods.md): the change
// of the model's output when the head is zeroed (KL divergence for logits, else mean |Δ|), averaged over calibration
// inputs, next to the cheap scores from the attention maps (entropy, first-token mass, diagonal mass).
import { existsSync } from 'node:fs';
import { headImportance, type ImportanceResult } from '../orchestrate/importance';
import { UsageError, intOption, parseArgs } from './args';
import { formatTable } from './format';
import { type CommandHelp, SESSION_HELP, SYNTHESIS_HELP, specOf, usageLine } from './help';
import { analyzeForRuntime, checkLength, fmt, intList, pct, printJson, progressPrinter, runInputs, sessionSettings, synthesisOptions, withRuntime } from './runtime-args';

export const help: CommandHelp = {
  name: 'importance',
  summary: "Ranks each site's query heads by how much the model's output changes when the head is zeroed (KL divergence for " +
    'logits, else mean |Δ|), averaged over calibration inputs, beside cheap scores from the attention maps. ' +
    'The least important heads are the ones to try with `rewrite --prune-heads`.',
  synopsis: 'MODEL.onnx [options]',
  options: [
    { name: 'samples', value: 'N', help: 'synthesized input sets averaged over', default: '4' },
    { name: 'sites', value: 'LIST', help: 'sites to score, e.g. 0,2', default: 'every site' },
    { name: 'no-maps', help: 'skip the map scores (entropy, first-token mass, diagonal mass)' },
    ...SYNTHESIS_HELP,
    ...SESSION_HELP,
  ],
  example: 'attention-lens importance examples/demo-llama.onnx --sites 0 --samples 2',
};

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, specOf(help.options));
  if (args.positional.length !== 1) throw new UsageError(usageLine(help));
  const model = args.positional[0];
  if (!existsSync(model)) throw new UsageError(`${model}: no such file`);
  const json = args.options.has('json');
  const report = analyzeForRuntime(model, []);
  const inputs = args.options.get('inputs');
  if (typeof inputs === 'string' && args.options.has('samples')) throw new UsageError('--samples applies to synthesized inputs; --inputs gives one calibration set');
  const fed = typeof inputs === 'string' ? runInputs(args, model, report) : undefined;
  if (!fed && args.options.has('seq')) checkLength(report, intOption(args, 'seq', 0, 1));
  if (fed?.note && !json) process.stdout.write(`${fed.note}\n`);
  const progress = progressPrinter(!json);
  const result = await withRuntime((client) =>
    headImportance(client, model, {
      ...(fed ? { source: fed.source } : {}),
      samples: intOption(args, 'samples', 4, 1),
      synthesis: synthesisOptions(args, report),
      ...(args.options.has('sites') ? { sites: intList(args, 'sites', 0) } : {}),
      settings: sessionSettings(args),
      maps: !args.options.has('no-maps'),
      ...(progress ? { onProgress: (done: number, total: number) => progress({ phase: 'heads', done, total }) } : {}),
    }),
  );
  if (json) printJson(result);
  else process.stdout.write(render(result));
  return 0;
}

function render(r: ImportanceResult): string {
  const change = r.metric === 'kl' ? `KL of ${r.output} (nats)` : `mean |Δ ${r.output}|`;
  const lines = [`${r.model}: head importance over ${r.samples} calibration input set(s); zeroing a head changes ${change}`];
  for (const s of r.sites) {
    const ranked = [...s.heads].sort((a, b) => a.outputChange - b.outputChange).map((h) => h.head);
    lines.push('', `site ${s.site} (least important first: ${ranked.join(', ')})`);
    lines.push(
      formatTable(
        ['head', 'output change', 'entropy (nats)', 'first-token mass', 'diagonal mass'],
        s.heads.map((h) => [String(h.head), fmt(h.outputChange, 6), fmt(h.entropy), pct(h.firstTokenMass), pct(h.diagonalMass)]),
      ),
    );
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}
