// `attention-lens`: the core from a terminal. Every subcommand lives in src/cli/<name>.ts and exports
// `run(argv): Promise<exitCode>`. Errors a user can cause (bad files, bad options) print one line on stderr and exit
// non-zero; anything else is a bug and prints its stack.
import * as path from 'node:path';
import { ModelError } from './analysis/onnx/errors';
import { UsageError } from './cli/args';

type Command = { run(argv: string[]): Promise<number>; summary: string };

const commands: Record<string, () => Promise<Command>> = {
  analyze: async () => ({ ...(await import('./cli/analyze')), summary: 'find and describe every attention block' }),
  bench: async () => ({ ...(await import('./cli/bench')), summary: 'time models: latency, tokens/s, memory, attention share' }),
  compare: async () => ({ ...(await import('./cli/compare')), summary: 'compare a variant with its original, output by output' }),
  eval: async () => ({ ...(await import('./cli/eval')), summary: 'bits per token and perplexity on a token file' }),
  importance: async () => ({ ...(await import('./cli/importance')), summary: 'per-head importance: output change when a head is zeroed, map scores' }),
  maps: async () => ({ ...(await import('./cli/maps')), summary: 'attention probabilities and per-head statistics' }),
  rewrite: async () => ({ ...(await import('./cli/rewrite')), summary: 'rewrite attention sites into sparse, shared or pruned variants' }),
  synth: async () => ({ ...(await import('./cli/synth')), summary: 'build a Llama-style model of any size for speed work' }),
};

/** The small model shipped with the project, used when `analyze` is given no model. */
export const DEMO_MODEL = path.resolve(__dirname, '..', 'examples', 'demo-llama.onnx');

function usage(): string {
  const names = Object.keys(commands);
  return `usage: attention-lens <command> [options]\ncommands: ${names.join(', ')}\n` +
    `run 'attention-lens analyze' with no model to analyse the bundled demo model (${path.relative(process.cwd(), DEMO_MODEL)})\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`attention-lens: unknown command '${name}'\n${usage()}`);
    return 2;
  }
  try {
    const cmd = await load();
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
