// Each command's options, declared once: `parseArgs` gets its spec from the same list that `COMMAND --help` prints,
// so an option cannot be accepted without being documented (or documented without being accepted).
export interface OptionHelp {
  /** Without dashes: `seq`, `budget-ms`. */
  name: string;
  /** What the value is called (`N`, `FILE`); absent: a flag without a value. */
  value?: string;
  help: string;
  /** The default in words, when there is one. */
  default?: string;
}

export interface CommandHelp {
  name: string;
  summary: string;
  /** Positional arguments and the shape of the command, e.g. `MODEL.onnx [MORE.onnx ...]`. */
  synopsis: string;
  options: OptionHelp[];
  /** One command that runs as shown (from the repository root, on the bundled demo model where possible). */
  example: string;
  /** Further sections (the rewrite rules). */
  more?: string;
}

/** The `parseArgs` spec: option name → whether it takes a value. */
export function specOf(options: OptionHelp[]): Record<string, boolean> {
  return Object.fromEntries(options.map((o) => [o.name, o.value !== undefined]));
}

export function wantsHelp(argv: string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

export function renderHelp(h: CommandHelp): string {
  const rows = h.options.map((o) => [`--${o.name}${o.value ? ` ${o.value}` : ''}`, `${o.help}${o.default !== undefined ? ` (default: ${o.default})` : ''}`]);
  const width = Math.min(28, Math.max(0, ...rows.map(([l]) => l.length)));
  const lines = [
    `usage: attention-lens ${h.name} ${h.synopsis}`,
    '',
    h.summary,
    '',
    'options:',
    ...rows.map(([l, r]) => (l.length > width ? `  ${l}\n  ${' '.repeat(width)}  ${r}` : `  ${l.padEnd(width)}  ${r}`)),
    '  -h, --help'.padEnd(width + 4) + 'this help',
  ];
  if (h.more) lines.push('', h.more);
  lines.push('', 'example:', `  ${h.example}`);
  return lines.join('\n') + '\n';
}

/** The usage line an error repeats: the synopsis and where the full help is. */
export function usageLine(h: CommandHelp): string {
  return `usage: attention-lens ${h.name} ${h.synopsis} (see attention-lens ${h.name} --help)`;
}

// Options several runtime commands share.
export const SESSION_HELP: OptionHelp[] = [
  { name: 'ep', value: 'EP[,EP...]', help: 'execution providers in order of preference: cpu, cuda, webgpu, dml, coreml; one that fails to load is reported and the next runs', default: 'cpu' },
  { name: 'threads', value: 'N', help: 'intra-op threads', default: "onnxruntime's choice" },
  { name: 'json', help: 'print one JSON object instead of tables' },
];

export const IMAGE_SIZE_HELP: OptionHelp = {
  name: 'image-size', value: 'N', help: "height and width of synthesized images, where the model leaves them open (a UNet's latents, a detector's images)", default: '224',
};

export const SYNTHESIS_HELP: OptionHelp[] = [
  {
    name: 'inputs', value: 'FILE', help: 'calibration data instead of synthesized inputs: inputs (a manifest.json, a .json map of input names, a .npy, ' +
      'a folder of <input>.npy), token ids (.bytes: one per byte; a 1-D .npy; a .json array), or text (any other file: tokenised with the ' +
      "tokenizer.json beside the model, or read as bytes by a byte-level model); token ids and text feed their first --seq tokens",
  },
  {
    name: 'seq', value: 'N', help: 'new tokens per sequence: of the synthesized inputs, or taken from token ids and text',
    default: "the model's own length where its inputs fix one; an image model's patch grid; else 512",
  },
  IMAGE_SIZE_HELP,
  { name: 'past', value: 'N', help: 'tokens already in the KV cache (decoders with a cache)', default: '0' },
  { name: 'batch', value: 'N', help: 'batch size', default: '1' },
  { name: 'seed', value: 'N', help: 'seed of the synthesized values', default: '0' },
];
