// `attention-lens synth -o OUT.onnx [--layers N] [--hidden H] [--heads N] [--kv-heads N] [--head-dim D]
//  [--intermediate I] [--vocab V] [--seed S] [--external]`: a Llama-style decoder written the way the TorchScript
// exporter writes eager attention, for speed work at realistic sizes without downloads. Small configs get random
// weights embedded; `--external` (required above 64 M parameters) points every weight into one sparse data file of
// zeros next to the model, which runs at full cost but says nothing about accuracy.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { saveModel } from '../analysis/ir/save';
import { buildLlama, llamaParameterCount, type LlamaConfig } from '../synth/llama';
import { intOption, parseArgs, UsageError } from './args';
import { humanCount } from './format';

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, {
    output: true, layers: true, hidden: true, heads: true, 'kv-heads': true, 'head-dim': true, intermediate: true,
    vocab: true, seed: true, external: false, json: false,
  });
  const out = args.options.get('output');
  if (typeof out !== 'string' || args.positional.length > 0) {
    throw new UsageError('usage: attention-lens synth --output OUT.onnx [--layers N] [--hidden H] [--heads N] [--kv-heads N] [--head-dim D] [--intermediate I] [--vocab V] [--seed S] [--external] [--json]');
  }
  const hidden = intOption(args, 'hidden', 1024);
  const heads = intOption(args, 'heads', 16);
  const config: LlamaConfig = {
    layers: intOption(args, 'layers', 2),
    hidden,
    heads,
    kvHeads: intOption(args, 'kv-heads', heads),
    headDim: intOption(args, 'head-dim', Math.floor(hidden / heads)),
    intermediate: intOption(args, 'intermediate', hidden * 4),
    vocab: intOption(args, 'vocab', 256),
    seed: intOption(args, 'seed', 0, 0),
  };
  const file = path.resolve(out);
  if (fs.existsSync(file)) throw new UsageError(`${out} exists; synth does not overwrite files`);
  if (args.options.has('external')) config.externalData = { file: `${file}.data` };
  let synth;
  try {
    synth = buildLlama(config);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const saved = saveModel(synth.model, file);
  const summary = { file: saved.file, bytes: saved.bytes, parameters: llamaParameterCount(config), config, dataFile: synth.dataFile ?? null };
  process.stdout.write(args.options.has('json') ? JSON.stringify(summary) + '\n' :
    `${saved.file}: ${config.layers} layers, hidden ${hidden}, ${heads} heads (${config.kvHeads} KV) of ${config.headDim}, ${humanCount(summary.parameters)} parameters${synth.dataFile ? `, zero weights in ${synth.dataFile}` : ''}\n`);
  return 0;
}
