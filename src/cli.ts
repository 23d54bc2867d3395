// `attention-lens`: the core from a terminal. Every subcommand lives in src/cli/<name>.ts and exports
// `run(argv): Promise<exitCode>`. Errors a user can cause (bad files, bad options) print one line on stderr and exit
// non-zero; anything else is a bug and prints its stack.
import * as path from 'node:path';
import { ModelError } from './analysis/onnx/errors';
import { UsageError } from './cli/args';
import { type CommandHelp, renderHelp, wantsHelp } from './cli/help';

type Command = { run(argv: string[]): Promise<number>; help: CommandHelp };

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  analyze: { summary: 'find and describe every attention block', load: () => import('./cli/analyze') },
  bench: { summary: 'time models: latency, tokens/s, memory, attention share', load: () => import('./cli/bench') },
  compare: { summary: 'compare a variant with its original, output by output', load: () => import('./cli/compare') },
  eval: { summary: 'bits per token and perplexity on token ids or text', load: () => import('./cli/eval') },
  importance: { summary: 'per-head importance: output change when a head is zeroed, map scores', load: () => import('./cli/importance') },
  maps: { summary: 'attention probabilities and per-head statistics', load: () => import('./cli/maps') },
  rewrite: { summary: 'rewrite attention sites into sparse, shared or pruned variants', load: () => import('./cli/rewrite') },
  synth: { summary: 'build a Llama-style model of any size for speed work', load: () => import('./cli/synth') },
};

/** The small model shipped with the project, used when `analyze` is given no model. */
export const DEMO_MODEL = path.resolve(__dirname, '..', 'examples', 'demo-llama.onnx');

function usage(): string {
  const names = Object.keys(commands);
  const width = Math.max(...names.map((n) => n.length));
  return [
    'usage: attention-lens COMMAND [options]',
    '',
    'commands:',
    ...names.map((n) => `  ${n.padEnd(width)}  ${commands[n].summary}`),
    '',
    "'attention-lens COMMAND --help' (or -h, or 'attention-lens help COMMAND') lists the command's options with their defaults and an example.",
    `'attention-lens analyze' with no model analyses the bundled demo model (${DEMO_MODEL}).`,
    '',
    'example:',
    '  attention-lens analyze examples/demo-llama.onnx',
  ].join('\n') + '\n';
}

export async function main(argv: string[]): Promise<number> {
  const [first, ...afterFirst] = argv;
  // `help COMMAND` is `COMMAND --help`.
  const [name, ...rest] = first === 'help' && afterFirst.length ? [afterFirst[0], '--help'] : argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const entry = commands[name];
  if (!entry) {
    process.stderr.write(`attention-lens: unknown command '${name}'\n${usage()}`);
    return 2;
  }
  try {
    const cmd = await entry.load();
    if (wantsHelp(rest)) {
      process.stdout.write(renderHelp(cmd.help));
      return 0;
    }
    const args = name === 'analyze' && !rest.some((a) => !a.startsWith('--')) ? [...rest, DEMO_MODEL] : rest;
    return await cmd.run(args);
  } catch (e) {
    if (e instanceof ModelError || e instanceof UsageError || isUserError(e)) {
      process.stderr.write(`attention-lens ${name}: ${(e as Error).message.split('\n')[0]}\n`);
      // A command may name its own exit status (130 for an interrupted rewrite, as shells expect after Ctrl-C).
      const own = (e as { exitCode?: unknown }).exitCode;
      return e instanceof UsageError ? 2 : typeof own === 'number' ? own : 1;
    }
    process.stderr.write(`attention-lens ${name}: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 70;
  }
}

/** Errors raised by commands for bad input they detect themselves (files, options). */
function isUserError(e: unknown): boolean {
  return e instanceof Error && (e as { userError?: boolean }).userError === true;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
