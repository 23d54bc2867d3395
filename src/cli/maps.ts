// `attention-lens maps MODEL.onnx --site N`: the attention probabilities of chosen sites on given or synthesized inputs,
// with the per-head statistics of methods.md (entropy, first-token mass, mean distance, a sparse pattern's recall).
// A site whose probabilities' layout cannot be read is listed as unknown, with the reason, and no statistics.
import { exposeAttentionMaps } from '../runtime/maps-model';
import type { MapsResult } from '../runtime/protocol';
import type { HostTensor } from '../runtime/tensor';
import { UsageError, parseArgs } from './args';
import { formatTable } from './format';
import { SESSION_OPTIONS, modelLabel, SYNTHESIS_OPTIONS, analyzeForRuntime, fmt, inputSource, intList, pct, printJson, sessionSettings, withRuntime } from './runtime-args';

const USAGE =
  'usage: attention-lens maps MODEL.onnx --site N[,N...]|all [--inputs FILE] [--seq N] [--past N] [--batch N] [--pattern "window 64"] ' +
  '[--no-probs] [--ep ...] [--json]';

/** Beyond this many probabilities the JSON would run to gigabytes; they are left out unless asked for explicitly. */
const MAX_PRINTED = 4_000_000;

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { ...SESSION_OPTIONS, ...SYNTHESIS_OPTIONS, site: true, pattern: true, 'no-probs': false, probs: false });
  const siteArg = args.options.get('site');
  if (args.positional.length !== 1 || typeof siteArg !== 'string') throw new UsageError(USAGE);
  const model = args.positional[0];
  const warnings: string[] = [];
  const report = analyzeForRuntime(model, warnings);
  if (!report) throw new UsageError(`${model}: maps need the analysis' sites, and the analysis failed`);
  if (report.sites.length === 0) throw new UsageError(`${model}: the analysis found no attention sites`);
  const ids = siteArg === 'all' ? report.sites.map((s) => s.id) : (intList(args, 'site', 0) ?? []);
  const missing = ids.filter((id) => !report.sites.some((s) => s.id === id));
  if (missing.length > 0) throw new UsageError(`--site ${missing.join(',')}: the model has sites 0..${report.sites.length - 1}`);
  const pattern = args.options.get('pattern');

  const exposed = exposeAttentionMaps(model, report.sites.filter((s) => ids.includes(s.id)));
  let result: MapsResult;
  try {
    result = await withRuntime((client) =>
      client.maps({
        model: exposed.model,
        sites: exposed.sites,
        settings: sessionSettings(args),
        inputs: inputSource(args, report),
        ...(typeof pattern === 'string' ? { pattern } : {}),
        includeProbabilities: !args.options.has('no-probs'),
      }),
    );
  } finally {
    exposed.cleanup();
  }
  warnings.push(...result.provider.warnings, ...result.fed.warnings);

  if (args.options.has('json')) {
    const total = result.sites.reduce((n, s) => n + ('unknown' in s ? 0 : s.probabilities?.data.length ?? 0), 0);
    const print = !args.options.has('no-probs') && (total <= MAX_PRINTED || args.options.has('probs'));
    if (!print && !args.options.has('no-probs')) warnings.push(`${total} probabilities left out of the JSON (more than ${MAX_PRINTED}); pass --probs to print them anyway`);
    printJson({
      model,
      ep: result.provider.used,
      inputs: result.fed.shapes,
      pattern: result.pattern ?? null,
      sites: result.sites.map((s) => {
        const head = { site: s.site, output: s.output, causal: exposed.sites.find((e) => e.site === s.site)?.causal ?? null, dims: s.dims };
        if ('unknown' in s) return { ...head, unknown: s.unknown };
        return {
          ...head,
          layout: s.layout.form,
          heads: s.stats.heads,
          maxRowSumError: s.stats.maxRowSumError,
          maxFutureMass: s.stats.maxFutureMass,
          ...(print && s.probabilities ? { probabilities: nested(s.probabilities) } : {}),
        };
      }),
      warnings,
    });
  } else {
    process.stdout.write(render(model, result, warnings));
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

function render(model: string, r: MapsResult, warnings: string[]): string {
  const lines = [`${modelLabel(model)} on ${r.provider.used}, inputs ${Object.entries(r.fed.shapes).map(([n, s]) => `${n}[${s.dims.join(',')}]`).join(' ')}`];
  for (const s of r.sites) {
    lines.push('');
    if ('unknown' in s) {
      lines.push(`site ${s.site} (${s.output}, [${s.dims.join(',')}]): map unknown: ${s.unknown}`);
      continue;
    }
    lines.push(`site ${s.site} (${s.output}, [${s.dims.join(',')}] read as ${s.layout.form}): rows sum to 1 within ${fmt(s.stats.maxRowSumError, 8)}, largest mass on future keys ${fmt(s.stats.maxFutureMass, 8)}`);
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
