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
import { type CommandHelp, specOf, usageLine } from './help';

export const help: CommandHelp = {
  name: 'synth',
  summary: 'Builds a Llama-style decoder written the way the TorchScript exporter writes eager attention, for speed work at ' +
    'realistic sizes without downloads. Small models get random weights; --external points every weight into one data file of zeros.',
  synopsis: '--output OUT.onnx [options]',
  options: [
    { name: 'output', value: 'OUT.onnx', help: 'the model to write (never over an existing file); also -o' },
    { name: 'layers', value: 'N', help: 'decoder layers', default: '2' },
    { name: 'hidden', value: 'H', help: 'hidden size', default: '1024' },
    { name: 'heads', value: 'N', help: 'query heads', default: '16' },
    { name: 'kv-heads', value: 'N', help: 'key/value heads (fewer than --heads: grouped-query attention)', default: 'the query heads' },
    { name: 'head-dim', value: 'D', help: 'head size', default: 'hidden / heads' },
    { name: 'intermediate', value: 'I', help: 'MLP size', default: '4 × hidden' },
    { name: 'vocab', value: 'V', help: 'vocabulary size', default: '256' },
    { name: 'seed', value: 'S', help: 'seed of the random weights', default: '0' },
    { name: 'external', help: 'weights in OUT.onnx.data, all zeros (required above 64 M parameters)' },
    { name: 'json', help: 'print a JSON summary' },
  ],
  example: 'attention-lens synth --output llama-4l.onnx --layers 4 --hidden 512 --heads 8 --kv-heads 2',
};

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, specOf(help.options), { o: 'output' });
  const out = args.options.get('output');
  if (typeof out !== 'string' || args.positional.length > 0) throw new UsageError(usageLine(help));
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
