// `attention-lens maps MODEL.onnx --site N`: the attention probabilities of chosen sites on given or synthesized inputs,
// with the per-head statistics of methods.md (entropy, first-token mass, mean distance, a sparse pattern's recall).
// A site whose probabilities' layout cannot be read is listed as unknown, with the reason, and no statistics.
import { exposeAttentionMaps } from '../runtime/maps-model';
import type { MapsResult } from '../runtime/protocol';
import type { HostTensor } from '../runtime/tensor';
import { UsageError, parseArgs } from './args';
import { formatTable } from './format';
import { type CommandHelp, SESSION_HELP, SYNTHESIS_HELP, specOf, usageLine } from './help';
import { modelLabel, analyzeForRuntime, fmt, intList, pct, runInputs, printJson, sessionSettings, withRuntime } from './runtime-args';

export const help: CommandHelp = {
  name: 'maps',
  summary: "Runs the model with the chosen sites' attention probabilities exposed as outputs and prints per-head statistics " +
    '(entropy, first-token mass, mean distance, diagonal mass, and a sparse pattern\'s recall); --json adds the probabilities.',
  synopsis: 'MODEL.onnx --site N[,N...]|all [options]',
  options: [
    { name: 'site', value: 'N[,N...]|all', help: 'sites to map, as `analyze` numbers them' },
    { name: 'pattern', value: '"window W"', help: "a sparse pattern whose recall (the attention mass it keeps) is measured: 'window 64', 'sink 4 + window 64', 'strided 8 + window 64', 'power + window 64'" },
    { name: 'no-probs', help: 'leave the probabilities out of the JSON' },
    { name: 'probs', help: 'print the probabilities in the JSON even when there are millions' },
    ...SYNTHESIS_HELP,
    ...SESSION_HELP,
  ],
  example: "attention-lens maps examples/demo-llama.onnx --site 0 --pattern 'window 64'",
};

/** Beyond this many probabilities the JSON would run to gigabytes; they are left out unless asked for explicitly. */
const MAX_PRINTED = 4_000_000;

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, specOf(help.options));
  const siteArg = args.options.get('site');
  if (args.positional.length !== 1 || typeof siteArg !== 'string') throw new UsageError(usageLine(help));
  const model = args.positional[0];
  const warnings: string[] = [];
  const report = analyzeForRuntime(model, warnings);
  if (!report) throw new UsageError(`${model}: maps need the analysis' sites, and the analysis failed`);
  if (report.sites.length === 0) throw new UsageError(`${model}: the analysis found no attention sites`);
  const ids = siteArg === 'all' ? report.sites.map((s) => s.id) : (intList(args, 'site', 0) ?? []);
  const missing = ids.filter((id) => !report.sites.some((s) => s.id === id));
  if (missing.length > 0) throw new UsageError(`--site ${missing.join(',')}: the model has sites 0..${report.sites.length - 1}`);
  const pattern = args.options.get('pattern');

  const { source, note, labels } = runInputs(args, model, report);
  const exposed = exposeAttentionMaps(model, report.sites.filter((s) => ids.includes(s.id)));
  let result: MapsResult;
  try {
    result = await withRuntime((client) =>
      client.maps({
        model: exposed.model,
        sites: exposed.sites,
        settings: sessionSettings(args),
        inputs: source,
        ...(typeof pattern === 'string' ? { pattern } : {}),
        includeProbabilities: !args.options.has('no-probs'),
      }),
    );
  } finally {
    exposed.cleanup();
  }
  // The runtime ran a temporary copy of the model; people know it by the path they gave.
  warnings.push(...[...result.provider.warnings, ...result.fed.warnings].map((w) => w.split(exposed.model).join(model)));
  const causal = new Map(exposed.sites.map((e) => [e.site, e.causal]));

  if (args.options.has('json')) {
    const total = result.sites.reduce((n, s) => n + ('unknown' in s ? 0 : s.probabilities?.data.length ?? 0), 0);
    const print = !args.options.has('no-probs') && (total <= MAX_PRINTED || args.options.has('probs'));
    if (!print && !args.options.has('no-probs')) warnings.push(`${total} probabilities left out of the JSON (more than ${MAX_PRINTED}); pass --probs to print them anyway`);
    printJson({
      model,
      ep: result.provider.used,
      inputs: result.fed.shapes,
      pattern: result.pattern ?? null,
      // The fed tokens as text, one per position, when the inputs were text (or a .bytes file).
      ...(labels ? { tokens: labels } : {}),
      sites: result.sites.map((s) => {
        const head = { site: s.site, output: s.output, causal: exposed.sites.find((e) => e.site === s.site)?.causal ?? null, dims: s.dims };
        if ('unknown' in s) return { ...head, unknown: s.unknown };
        return {
          ...head,
          layout: s.layout.form,
          heads: s.stats.heads,
          maxRowSumError: s.stats.maxRowSumError,
          // Future-key mass means something only where the site is causal (an encoder attends both ways).
          maxFutureMass: head.causal ? s.stats.maxFutureMass : null,
          ...(print && s.probabilities ? { probabilities: nested(s.probabilities) } : {}),
        };
      }),
      warnings,
    });
  } else {
    process.stdout.write(render(model, result, warnings, causal, note));
  }
  return 0;
}

/** Batch item 0 as nested arrays: [heads][queries][keys], or [windows][heads][queries][keys]. */
function nested(p: HostTensor): Nested {
  const data = p.data as Float32Array;
  const build = (axis: number, offset: number): Nested => {
    if (axis === p.dims.length - 1) return Array.from(data.subarray(offset, offset + p.dims[axis]));
    const stride = p.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
    return Array.from({ length: p.dims[axis] }, (_, i) => build(axis + 1, offset + i * stride));
  };
  return build(0, 0);
}

type Nested = number[] | Nested[];

function render(model: string, r: MapsResult, warnings: string[], causal: Map<number, boolean>, note: string | null): string {
  const lines = [`${modelLabel(model)} on ${r.provider.used}, inputs ${Object.entries(r.fed.shapes).map(([n, s]) => `${n}[${s.dims.join(',')}]`).join(' ')}`];
  if (note) lines.push(note);
  for (const s of r.sites) {
    lines.push('');
    if ('unknown' in s) {
      lines.push(`site ${s.site} (${s.output}, [${s.dims.join(',')}]): map unknown: ${s.unknown}`);
      continue;
    }
    // Mass on future keys checks a causal mask; an encoder's queries see every key, so it says nothing there.
    const future = causal.get(s.site) ? `, largest mass on future keys ${fmt(s.stats.maxFutureMass, 8)}` : ' (not causal: every query sees every key)';
    lines.push(`site ${s.site} (${s.output}, [${s.dims.join(',')}] read as ${s.layout.form}): rows sum to 1 within ${fmt(s.stats.maxRowSumError, 8)}${future}`);
    lines.push(
      formatTable(
        ['head', 'entropy (nats)', 'first-token mass', 'mean distance', 'diagonal mass', ...(r.pattern ? [`recall (${r.pattern})`] : [])],
        s.stats.heads.map((h) => [String(h.head), fmt(h.entropy), pct(h.firstTokenMass), fmt(h.meanDistance, 2), pct(h.diagonalMass), ...(r.pattern ? [pct(h.recall)] : [])]),
      ),
    );
  }
  for (const w of warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}
