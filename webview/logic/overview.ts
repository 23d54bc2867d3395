// The Overview's tables as rows of text, from the analysis report. Pure.
import type { AnalysisReport, SiteInfo } from '../../src/shared/analysis-report';
import { bytes, count, pct, shape } from './format';
import { positions, unitsOf } from './units';

export const SITE_COLUMNS = ['#', 'kind', 'causal', 'heads', 'KV heads', 'head size', 'form', 'mask', 'position', 'attention FLOPs', 'share'];

/** Each site's share of all attention FLOPs at the report's cost length; null when a site's cost is unknown. */
export function flopShares(report: AnalysisReport): (number | null)[] {
  const total = report.sites.reduce((a, s) => a + (s.flops ?? 0), 0);
  return report.sites.map((s) => (s.flops === null || total === 0 ? null : s.flops / total));
}

const dash = (v: number | null) => (v === null ? '?' : String(v));

export function siteRow(s: SiteInfo, share: number | null): string[] {
  return [
    String(s.id),
    s.kind,
    s.causal ? 'yes' : 'no',
    dash(s.heads),
    dash(s.kvHeads),
    dash(s.headDim),
    s.form,
    s.window !== undefined ? `${s.maskType} (${s.window})` : s.maskType,
    s.position,
    count(s.flops),
    pct(share),
  ];
}

export function siteRows(report: AnalysisReport): string[][] {
  const shares = flopShares(report);
  return report.sites.map((s, i) => siteRow(s, shares[i]));
}

/** Model facts as label/value pairs, in reading order. */
export function modelFacts(report: AnalysisReport): [string, string][] {
  const m = report.model;
  const topOps = Object.entries(m.opHistogram).sort((a, b) => b[1] - a[1]).slice(0, 6).map(([op, n]) => `${op} ${n}`).join(', ');
  return [
    ['file', `${m.path} (${bytes(m.fileBytes)})`],
    ['producer', m.producer || '–'],
    ['IR / opsets', `IR ${m.irVersion}; ${Object.entries(m.opsets).map(([d, v]) => `${d} ${v}`).join(', ')}`],
    ['nodes', `${m.nodeCount} (${topOps})`],
    ['parameters', `${count(m.parameterCount)} in ${m.initializerCount} initializers`],
    ['external data', m.externalDataFiles.length ? m.externalDataFiles.join(', ') : 'none'],
    ['inputs', m.inputs.map((i) => `${i.name} ${i.dtype}${shape(i.shape)} (${i.role})`).join('; ')],
    ['outputs', m.outputs.map((o) => `${o.name} ${o.dtype}${shape(o.shape)}`).join('; ')],
    ['attention sites', `${report.sites.length}; cost figures at ${positions(report.costSeqLen, unitsOf(report))}, batch 1`],
    ['attention FLOPs', `${count(report.sites.reduce((a, s) => a + (s.flops ?? 0), 0))} (QK and PV products)`],
    ['attention matrices', bytes(report.sites.reduce((a, s) => a + (s.attnMatrixBytes ?? 0), 0))],
  ];
}
