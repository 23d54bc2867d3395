// The exported report's shape, shared by the extension (which writes it, src/extension/report-file.ts) and the
// dashboard (which renders it when embedded in a standalone page). Types only.
import type { RewriteReport } from '../rewriters/pipeline';
import type { SessionSnapshot } from '../protocol';

export const REPORT_KIND = 'attention-lens-report';

export interface ExportedReport {
  kind: typeof REPORT_KIND;
  version: 1;
  createdAt: string;
  exported: { variant: string; label: string; steps: string[][]; model: string; dataFile: string | null; bytes: number; check: string };
  rewrite: RewriteReport;
  /** The session as the dashboard shows it: analysis, variants, speed, accuracy and attention maps. */
  session: SessionSnapshot;
}
