// A per-head attention plan (issue 10): for each site, one choice per query head. `rewrite --plan FILE` applies it,
// `plan` (the advisor) writes it, and the report and the dashboard show it site by site, head by head. The file format
// is declared here once so that the CLI, the rewriters, the advisor and the webview read the same thing.
//
// File (JSON):
//   { "version": 1, "seq": 512, "sites": { "0": ["dense", "window 64", "sink 4 + window 64", "pruned", ...], ... } }
// One entry per query head of the site, in head order. A site that is not listed stays as it is. Entries use the
// pattern notation of methods.md (`window W`, `sink N + window W`, `strided K + window W`, `power + window W`), plus
// `block-topk B,K`, `dense` and `pruned`. A strided head h sees keys j ≡ h (mod k) with h its index in the original site.

import type { HeadChoice, HeadPlanFile } from '../rewriters/plan/choices';
import { describeHeadChoice } from '../rewriters/plan/choices';

// The types and their notation are declared with the rule that applies them (the core cannot import this layer).
export { describeHeadChoice, summarizeChoices, type HeadChoice, type HeadPlanFile } from '../rewriters/plan/choices';

export class PlanFormatError extends Error {}

const NUM = '(\\d+)';

/** Parses one entry of a plan: `dense`, `pruned`, `window 64`, `sink 4 + window 64`, `block-topk 32,4`, ... */
export function parseHeadChoice(text: string): HeadChoice {
  const t = String(text).trim().toLowerCase().replace(/\s+/g, ' ');
  const n = (v: string, what: string, min = 1): number => {
    const x = Number.parseInt(v, 10);
    if (!(x >= min) || !Number.isSafeInteger(x)) throw new PlanFormatError(`"${text}": ${what} must be a whole number >= ${min}`);
    return x;
  };
  let m: RegExpExecArray | null;
  if (t === 'dense') return { kind: 'dense' };
  if (t === 'pruned') return { kind: 'pruned' };
  if ((m = new RegExp(`^window ${NUM}$`).exec(t))) return { kind: 'window', window: n(m[1], 'window') };
  if ((m = new RegExp(`^sink ${NUM} ?\\+ ?window ${NUM}$`).exec(t))) return { kind: 'sink', sink: n(m[1], 'sink', 0), window: n(m[2], 'window') };
  if ((m = new RegExp(`^strided ${NUM} ?\\+ ?window ${NUM}$`).exec(t))) return { kind: 'strided', stride: n(m[1], 'stride'), window: n(m[2], 'window') };
  if ((m = new RegExp(`^power ?\\+ ?window ${NUM}$`).exec(t))) return { kind: 'power', window: n(m[1], 'window') };
  if ((m = new RegExp(`^block-topk ${NUM} ?, ?${NUM}$`).exec(t))) return { kind: 'block-topk', block: n(m[1], 'block'), k: n(m[2], 'k', 0) };
  throw new PlanFormatError(
    `"${text}": expected dense, pruned, "window W", "sink N + window W", "strided K + window W", "power + window W" or "block-topk B,K"`,
  );
}

/** Reads a plan from parsed JSON; throws PlanFormatError with a one-line reason naming the problem. */
export function parseHeadPlan(json: unknown): HeadPlanFile {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new PlanFormatError('a plan is a JSON object with "version": 1 and "sites"');
  const o = json as Record<string, unknown>;
  if (o.version !== 1) throw new PlanFormatError(`plan version ${JSON.stringify(o.version)} is not supported (expected 1)`);
  if (!o.sites || typeof o.sites !== 'object' || Array.isArray(o.sites)) throw new PlanFormatError('"sites" must be an object: site id -> one entry per query head');
  const sites: Record<number, HeadChoice[]> = {};
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
  return { version: 1, ...(seq ? { seq } : {}), ...(typeof o.note === 'string' ? { note: o.note } : {}), sites };
}

/** The plan as written to a file (entries in the notation above). */
export function serializeHeadPlan(plan: HeadPlanFile): string {
  return `${JSON.stringify(planJson(plan), null, 1)}\n`;
}

/** The plan as the JSON value a file holds (what parseHeadPlan reads back to the same plan). */
export function planJson(plan: HeadPlanFile): Record<string, unknown> {
  const sites = Object.fromEntries(Object.entries(plan.sites).map(([id, hs]) => [id, hs.map(describeHeadChoice)]));
  return { version: 1, ...(plan.seq ? { seq: plan.seq } : {}), ...(plan.note ? { note: plan.note } : {}), sites };
}
