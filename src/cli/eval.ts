// `attention-lens eval MODEL.onnx --tokens FILE`: the task score of a causal LM (methods.md): bits per token and
// perplexity over n evenly spaced windows of length L.
import { UsageError, intOption, parseArgs } from './args';
import { SESSION_OPTIONS, analyzeForRuntime, fmt, printJson, progressPrinter, sessionSettings, withRuntime } from './runtime-args';

const USAGE = 'usage: attention-lens eval MODEL.onnx --tokens FILE(.bytes|.npy|.json) [--seq L] [--windows N] [--batch N] [--logits NAME] [--ep ...] [--threads N] [--json]';

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { ...SESSION_OPTIONS, tokens: true, seq: true, windows: true, batch: true, logits: true });
  const tokens = args.options.get('tokens');
  if (args.positional.length !== 1 || typeof tokens !== 'string') throw new UsageError(USAGE);
  const model = args.positional[0];
  const warnings: string[] = [];
  const report = analyzeForRuntime(model, warnings);
  const logits = args.options.get('logits');
  const json = args.options.has('json');
  const r = await withRuntime((client) =>
    client.evaluate(
      {
        model,
        tokens,
        seq: intOption(args, 'seq', 512, 1),
        windows: intOption(args, 'windows', 64, 1),
        batch: intOption(args, 'batch', 1, 1),
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
      model, tokens, ep: r.provider.used, bitsPerToken: r.bitsPerToken, perplexity: r.perplexity, natsPerToken: r.nats,
      windows: r.windows, windowLength: r.windowLength, tokensScored: r.tokensScored, fileTokens: r.fileTokens,
      logitsOutput: r.logitsOutput, elapsedMs: r.elapsedMs, warnings,
    });
  } else {
    const lines = [
      `${model} on ${tokens} (${r.fileTokens} tokens), ${r.windows} windows of ${r.windowLength} on ${r.provider.used}:`,
      `  ${fmt(r.bitsPerToken, 4)} bits per token, perplexity ${fmt(r.perplexity, 3)} (${r.tokensScored} predictions, ${fmt(r.elapsedMs / 1000, 1)} s)`,
      ...warnings.map((w) => `warning: ${w}`),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  }
  return 0;
}
