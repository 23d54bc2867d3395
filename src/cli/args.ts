// A small argument parser shared by the subcommands: positional arguments, `--flag`, `--key value`, `--key=value`
// and short aliases such as `-o value`. Unknown options, long or short, are errors, so a typo never silently changes
// what runs.
export interface ParsedArgs {
  positional: string[];
  options: Map<string, string | true>;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * `spec` maps each option name to whether it takes a value; `short` maps one-letter aliases to option names
 * (`{ o: 'output' }` makes `-o FILE` mean `--output FILE`). A lone `-` and negative numbers stay positional.
 */
export function parseArgs(argv: string[], spec: Record<string, boolean>, short: Record<string, string> = {}): ParsedArgs {
  const positional: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (/^-[A-Za-z]/.test(a)) {
      const name = short[a.slice(1)];
      if (name === undefined || !(name in spec)) throw new UsageError(`unknown option ${a}`);
      if (spec[name]) {
        const value = argv[++i];
        if (value === undefined) throw new UsageError(`option ${a} needs a value`);
        options.set(name, value);
      } else {
        options.set(name, true);
      }
      continue;
    }
    if (!a.startsWith('--') || a === '--') {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq >= 0 ? eq : undefined);
    if (!(name in spec)) throw new UsageError(`unknown option --${name}`);
    if (spec[name]) {
      const value = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`option --${name} needs a value`);
      options.set(name, value);
    } else {
      if (eq >= 0) throw new UsageError(`option --${name} takes no value`);
      options.set(name, true);
    }
  }
  return { positional, options };
}

export function intOption(args: ParsedArgs, name: string, dflt: number, min = 1): number {
  const v = args.options.get(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v === true || !Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}
