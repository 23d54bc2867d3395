// What an export writes beside the rewritten model: the report as JSON (the session's plain data, with the rewrite
// and the load check of the exported file) and as a standalone HTML page that renders the same dashboards from it.
// No `vscode` here, so tests build both from real data.
import * as path from 'node:path';
import type { RewriteReport } from '../rewriters/pipeline';
import type { SessionSnapshot, Variant } from '../protocol';
import { type ExportedReport, REPORT_KIND } from '../shared/report';
import { dashboardPage, makeNonce } from './html';

export { type ExportedReport, REPORT_KIND };

/** `model.onnx` → `model.report.json`, `model.report.html` beside it. */
export function reportPaths(modelFile: string): { json: string; html: string } {
  const base = modelFile.replace(/\.onnx$/i, '');
  return { json: `${base}.report.json`, html: `${base}.report.html` };
}

/** A default export name: the original's name with the variant's label as a suffix, safe on every file system. */
export function exportFileName(original: string, variant: Variant): string {
  const slug = variant.label.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48) || variant.id;
  return `${path.basename(original).replace(/\.onnx$/i, '')}.${slug}.onnx`;
}

export function buildReport(session: SessionSnapshot, variant: Variant, rewrite: RewriteReport, check: string, createdAt = new Date()): ExportedReport {
  const out = rewrite.output;
  if (!out) throw new Error('the rewrite report has no output: the model was not written');
  return {
    kind: REPORT_KIND,
    version: 1,
    createdAt: createdAt.toISOString(),
    exported: {
      variant: variant.id,
      label: variant.label,
      steps: variant.steps,
      model: out.file,
      dataFile: out.dataFile ?? null,
      bytes: out.bytes + (out.dataBytes ?? 0),
      check,
    },
    rewrite,
    session,
  };
}

/** The standalone page: the dashboard bundle and stylesheet inlined, the report embedded. */
export function reportHtml(report: ExportedReport, bundle: { script: string; style: string }): string {
  return dashboardPage({
    title: `Attention Lens report: ${report.session.modelName} → ${report.exported.label}`,
    nonce: makeNonce(),
    script: { inline: bundle.script },
    style: { inline: bundle.style },
    embedded: report,
  });
}
