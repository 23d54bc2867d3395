// The analysis report's types as the dashboard reads them: the webview imports only shared code, and the report is
// plain data defined once by the analysis. Types only.
export type { AnalysisReport, Dim, SiteInfo } from '../analysis/report/types';
