// A per-head attention plan (issue 10): for each site, one choice per query head. `rewrite --plan FILE` applies it,
// `plan` (the advisor) writes it, and the report and the dashboard show it site by site, head by head. The file format
// is declared here once so that the CLI, the rewriters, the advisor and the webview read the same thing.
//
// File (JSON):
//   { "version": 1, "seq": 512, "sites": { "0": ["dense", "window 64", "sink 4 + window 64", "pruned", ...], ... } }
// One entry per query head of the site, in head order. A site that is not listed stays as it is. Entries use the
// pattern notation of methods.md (`window W`, `sink N + window W`, `strided K + window W`, `power + window W`), plus
// `block-topk B,K`, `dense` and `pruned`. A strided head h sees keys j ≡ h (mod k) with h its index in the original site.
// Wherever a window W goes, a span law may stand: `window 16 + 0.125·L` (also `*L`; `window 0.125·L` for a = 0) means
// W(L) = round(a + b·L) clamped to [1, L], round(x) = floor(x + 0.5), with b ≥ 0 (rewriters/plan/span.ts); the rewrite
// resolves it at its length. `"lengths": [256, 512]` records the lengths the advisor profiled (informative).

import type { HeadPlanFile, PlanChoice, Span } from '../rewriters/plan/choices';
import { describeHeadChoice } from '../rewriters/plan/choices';
import { spanProblem } from '../rewriters/plan/span';

// The types and their notation are declared with the rule that applies them (the core cannot import this layer).
export {
  describeHeadChoice, describeSpan, summarizeChoices, type HeadChoice, type HeadPlanFile, type PlanChoice, type Span, type SpanLaw,
} from '../rewriters/plan/choices';

export class PlanFormatError extends Error {}

const NUM = '(\\d+)';
/** A span: the rest of the entry after "window " (parsed by parseSpan). */
const SPAN = '(.+)';
const REAL = '(\\d+(?:\\.\\d+)?(?:e[+-]?\\d+)?)';
const LAW = new RegExp(`^(-?${REAL.slice(1, -1)}) ?([+-]) ?${REAL} ?[·*]? ?l$`);
const LAW_NO_A = new RegExp(`^${REAL} ?[·*]? ?l$`);

/** Parses one entry of a plan: `dense`, `pruned`, `window 64`, `sink 4 + window 64`, `block-topk 32,4`, ... */
export function parseHeadChoice(text: string): PlanChoice {
  const t = String(text).trim().toLowerCase().replace(/\s+/g, ' ');
  const n = (v: string, what: string, min = 1): number => {
    const x = Number.parseInt(v, 10);
    if (!(x >= min) || !Number.isSafeInteger(x)) throw new PlanFormatError(`"${text}": ${what} must be a whole number >= ${min}`);
    return x;
  };
  const span = (v: string): Span => parseSpan(v, text);
  let m: RegExpExecArray | null;
  if (t === 'dense') return { kind: 'dense' };
  if (t === 'pruned') return { kind: 'pruned' };
  if ((m = new RegExp(`^sink ${NUM} ?\\+ ?window ${SPAN}$`).exec(t))) return { kind: 'sink', sink: n(m[1], 'sink', 0), window: span(m[2]) };
  if ((m = new RegExp(`^strided ${NUM} ?\\+ ?window ${SPAN}$`).exec(t))) return { kind: 'strided', stride: n(m[1], 'stride'), window: span(m[2]) };
  if ((m = new RegExp(`^power ?\\+ ?window ${SPAN}$`).exec(t))) return { kind: 'power', window: span(m[1]) };
  if ((m = new RegExp(`^window ${SPAN}$`).exec(t))) return { kind: 'window', window: span(m[1]) };
  if ((m = new RegExp(`^block-topk ${NUM} ?, ?${NUM}$`).exec(t))) return { kind: 'block-topk', block: n(m[1], 'block'), k: n(m[2], 'k', 0) };
  throw new PlanFormatError(
    `"${text}": expected dense, pruned, "window W", "sink N + window W", "strided K + window W", "power + window W" or "block-topk B,K" (W a whole number or a span law "a + b·L")`,
  );
}

/** A window as an entry gives it (lower case, single spaces): a whole number, or a span law "a + b·L". */
function parseSpan(v: string, text: string): Span {
  let m: RegExpExecArray | null;
  let law: { a: number; b: number } | null = null;
  if (/^-?\d+$/.test(v)) {
    const w = Number(v);
    if (!(Number.isSafeInteger(w) && w >= 1)) throw new PlanFormatError(`"${text}": window must be a whole number >= 1`);
    return w;
  }
  if ((m = LAW.exec(v))) law = { a: Number(m[1]), b: (m[2] === '-' ? -1 : 1) * Number(m[3]) };
  else if ((m = LAW_NO_A.exec(v))) law = { a: 0, b: Number(m[1]) };
  if (!law) throw new PlanFormatError(`"${text}": the window must be a whole number or a span law "a + b·L" (e.g. "16 + 0.125·L"), got "${v}"`);
  const why = spanProblem(law);
  if (why) throw new PlanFormatError(`"${text}": ${why}`);
  return law;
}

/** Reads a plan from parsed JSON; throws PlanFormatError with a one-line reason naming the problem. */
export function parseHeadPlan(json: unknown): HeadPlanFile {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new PlanFormatError('a plan is a JSON object with "version": 1 and "sites"');
  const o = json as Record<string, unknown>;
  if (o.version !== 1) throw new PlanFormatError(`plan version ${JSON.stringify(o.version)} is not supported (expected 1)`);
  if (!o.sites || typeof o.sites !== 'object' || Array.isArray(o.sites)) throw new PlanFormatError('"sites" must be an object: site id -> one entry per query head');
  const sites: Record<number, PlanChoice[]> = {};
  for (const [key, heads] of Object.entries(o.sites as Record<string, unknown>)) {
    const id = Number(key);
    if (!/^\d+$/.test(key) || !Number.isSafeInteger(id)) throw new PlanFormatError(`site "${key}" is not a site number`);
    if (!Array.isArray(heads) || heads.length === 0) throw new PlanFormatError(`site ${id}: expected a non-empty list with one entry per query head`);
    sites[id] = heads.map((h, i) => {
      try {
        return parseHeadChoice(String(h));
      } catch (e) {
        throw new PlanFormatError(`site ${id}, head ${i}: ${(e as Error).message}`);
      }
    });
  }
  const seq = o.seq === undefined ? undefined : Number(o.seq);
  if (seq !== undefined && !(Number.isSafeInteger(seq) && seq >= 1)) throw new PlanFormatError('"seq" must be a whole number >= 1');
  const lengths = o.lengths === undefined ? undefined : o.lengths;
  if (lengths !== undefined && !(Array.isArray(lengths) && lengths.length > 0 && lengths.every((l) => Number.isSafeInteger(l) && (l as number) >= 1))) {
    throw new PlanFormatError('"lengths" must be a non-empty list of whole numbers >= 1 (the lengths profiled)');
  }
  return {
    version: 1, ...(seq ? { seq } : {}), ...(lengths ? { lengths: lengths as number[] } : {}), ...(typeof o.note === 'string' ? { note: o.note } : {}), sites,
  };
}

/** The plan as written to a file (entries in the notation above). */
export function serializeHeadPlan(plan: HeadPlanFile): string {
  return `${JSON.stringify(planJson(plan), null, 1)}\n`;
}

/** The plan as the JSON value a file holds (what parseHeadPlan reads back to the same plan). */
export function planJson(plan: HeadPlanFile): Record<string, unknown> {
  const sites = Object.fromEntries(Object.entries(plan.sites).map(([id, hs]) => [id, hs.map(describeHeadChoice)]));
  return { version: 1, ...(plan.seq ? { seq: plan.seq } : {}), ...(plan.lengths ? { lengths: plan.lengths } : {}), ...(plan.note ? { note: plan.note } : {}), sites };
}
