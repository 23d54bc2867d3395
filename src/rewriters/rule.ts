// The one interface every rewrite rule implements. A rule edits a working copy of the model through the GraphBuilder
// (never the user's file), reports what it changed per site with analytic cost before and after, and lists warnings
// (for example, a site the rule does not apply to). The pipeline checks the graph's invariants after every rule.
import type { RawSite } from '../analysis/attention/site';
import type { GraphBuilder } from '../analysis/ir/builder';
import type { AnalysisReport, SiteInfo } from '../analysis/report/types';
import { oneLine } from '../analysis/onnx/errors';

export type RuleFamily = 'sparse' | 'shared' | 'prune' | 'structure';

export interface RuleContext {
  builder: GraphBuilder;
  /** Analysis of the model as it is before this rule; site ids are the input model's (as `analyze --json` numbers them). */
  report: AnalysisReport;
  /** The same sites with references into the working graph, indexed like `report.sites`. */
  sites: RawSite[];
  /** Sequence length for the analytic before/after cost. */
  seqLen: number;
  /** True when `seqLen` was given by the caller (--seq), not defaulted: a rule that bakes a length in needs to know. */
  seqLenGiven?: boolean;
  /** Told when the rule turns to a site (progress, and a safe point to stop at); see `siteById`. */
  onSite?: (id: number) => void;
}

export interface SiteChange {
  site: number;
  /** Parameters of the site before and after (heads, kvHeads, window, pattern, ...). */
  before: Record<string, unknown>;
  after: Record<string, unknown>;
  /** Analytic attention FLOPs and attention-matrix bytes at `seqLen`, before and after. */
  flopsBefore: number | null;
  flopsAfter: number | null;
  bytesBefore: number | null;
  bytesAfter: number | null;
  /** Nodes added and removed by the rule at this site. */
  nodesAdded: number;
  nodesRemoved: number;
}

export interface RuleResult {
  changes: SiteChange[];
  warnings: string[];
}

export interface Rule<P = unknown> {
  /** As on the command line without dashes: `window`, `block-topk`, `prune-heads`, ... */
  name: string;
  family: RuleFamily;
  /** One-line description for help texts and the dashboard. */
  summary: string;
  /**
   * The lowest ONNX (default-domain) opset at which every node the rule may add is valid, when that is above 9 (the
   * oldest opset the upgrade takes). Rules write each operator in one form, the newest; the pipeline raises an older
   * model's opset to the highest `minOpset` among the requested rules, once, before the first rule (opset/upgrade.ts),
   * and says so in the report. Absent: the rule's nodes are valid at any opset, and the model's opset is left alone.
   */
  minOpset?: number;
  /**
   * True when the rule works on a site whatever layout its exporter chose (it only cuts the site out of the residual
   * stream). Otherwise the pipeline first rewrites sites of another layout into the standard one (layout/standard.ts).
   */
  anyLayout?: boolean;
  /**
   * True when the rule edits the site's Q, K and V projections head by head (layout/normalize.ts then splits a
   * projection that packs two of them apart from the third, as multi-query's `kv` Linear does).
   */
  editsProjections?: boolean;
  /** Throws a RuleError for impossible parameters (negative windows, unknown sites, heads out of range). */
  validate(params: P, report: AnalysisReport): void;
  /**
   * Null when the rule can rewrite this site, else why not (shown as a warning when the site was requested). `report`
   * is the analysis the site comes from, for rules that depend on the model around the site (e.g. an image input).
   */
  skipReason(site: SiteInfo, params: P, report: AnalysisReport): string | null;
  apply(ctx: RuleContext, siteIds: number[], params: P): RuleResult;
}

/**
 * A user-facing error that names the rule: bad parameters or a site the rule cannot rewrite. Names quoted from the model
 * can hold any character: control characters are escaped, so the message stays one line.
 */
export class RuleError extends Error {
  readonly userError = true;
  constructor(readonly rule: string, message: string) {
    super(oneLine(`${rule}: ${message}`));
    this.name = 'RuleError';
  }
}

/** The working-graph site for an input site id (ids are the input's numbering; `ctx.sites` follows `ctx.report.sites`). */
export function siteById(ctx: RuleContext, id: number): { info: SiteInfo; raw: RawSite } {
  ctx.onSite?.(id);
  const i = ctx.report.sites.findIndex((s) => s.id === id);
  if (i < 0) throw new Error(`site ${id} is not in the current analysis`);
  return { info: ctx.report.sites[i], raw: ctx.sites[i] };
}
