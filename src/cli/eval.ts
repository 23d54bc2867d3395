// `attention-lens eval MODEL.onnx --tokens FILE`: the task score of a causal LM (methods.md): bits per token and
// perplexity over n evenly spaced windows of length L.
import { readCalibration } from '../runtime/inputs/calibration';
import { UsageError, intOption, parseArgs } from './args';
import { type CommandHelp, SESSION_HELP, specOf, usageLine } from './help';
import { analyzeForRuntime, checkBatch, checkLength, checkVocabulary, fmt, printJson, progressPrinter, sessionSettings, withRuntime } from './runtime-args';
import { fixedTokens } from '../shared/lengths';

export const help: CommandHelp = {
  name: 'eval',
  summary: 'Scores a causal language model on token ids or text: bits per token and perplexity over evenly spaced windows of L tokens.',
  synopsis: 'MODEL.onnx --tokens FILE [options]',
  options: [
    {
      name: 'tokens', value: 'FILE', help: 'token ids (.bytes: one token per byte; a 1-D .npy; a .json array) or text (any other file: ' +
        'tokenised with the tokenizer.json beside the model, or read as bytes by a byte-level model)',
    },
    { name: 'seq', value: 'L', help: 'tokens per window', default: 'the model\'s input length where its shapes fix one, else 512, or the longest the model takes (its position table or causal buffer) when shorter' },
    { name: 'windows', value: 'N', help: 'windows scored, evenly spaced over the file', default: '64' },
    { name: 'batch', value: 'N', help: 'windows per run', default: '1' },
    { name: 'logits', value: 'NAME', help: 'the output holding the logits', default: 'the output named logits, else the first' },
    ...SESSION_HELP,
  ],
  example: 'attention-lens eval model.onnx --tokens text.bytes --seq 256 --windows 16',
};

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, specOf(help.options));
  const tokens = args.options.get('tokens');
  if (args.positional.length !== 1 || typeof tokens !== 'string') throw new UsageError(usageLine(help));
  const model = args.positional[0];
  const warnings: string[] = [];
  const report = analyzeForRuntime(model, warnings);
  const cal = readCalibration(tokens, model, report?.model.inputs);
  if (!cal.ids) throw new UsageError(`--tokens ${tokens}: eval needs token ids or text, and this is an inputs file`);
  const ids = cal.ids;
  const fixed = report ? fixedTokens(report.model.inputs) : undefined;
  const seq = intOption(args, 'seq', fixed ?? Math.min(512, report?.model.maxPositions ?? 512), 1);
  checkLength(report, seq);
  const batch = intOption(args, 'batch', 1, 1);
  checkBatch(report, batch);
  checkVocabulary(ids, report?.model.inputs.find((i) => i.role === 'input_ids')?.vocabSize, tokens);
  const logits = args.options.get('logits');
  const json = args.options.has('json');
  const r = await withRuntime((client) =>
    client.evaluate(
      {
        model,
        tokens: ids,
        seq,
        windows: intOption(args, 'windows', 64, 1),
        batch,
        settings: sessionSettings(args),
        ...(typeof logits === 'string' ? { logitsOutput: logits } : {}),
        ...(report ? { infos: report.model.inputs } : {}),
      },
      { onProgress: progressPrinter(!json) },
    ),
  );
  warnings.push(...r.provider.warnings);
  if (json) {
    printJson({
      model, tokens, tokenizer: cal.how, ep: r.provider.used, bitsPerToken: r.bitsPerToken, perplexity: r.perplexity, natsPerToken: r.nats,
      windows: r.windows, windowLength: r.windowLength, tokensScored: r.tokensScored, fileTokens: r.fileTokens,
      logitsOutput: r.logitsOutput, elapsedMs: r.elapsedMs, warnings,
    });
  } else {
    const lines = [
      `${model} on ${tokens} (${r.fileTokens} tokens, ${cal.how}), ${r.windows} windows of ${r.windowLength} on ${r.provider.used}:`,
      `  ${fmt(r.bitsPerToken, 4)} bits per token, perplexity ${fmt(r.perplexity, 3)} (${r.tokensScored} predictions, ${fmt(r.elapsedMs / 1000, 1)} s)`,
      ...warnings.map((w) => `warning: ${w}`),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  }
  return 0;
}
