// `attention-lens plan --seq 256,512`: the advisor at several lengths (orchestrate/advisor/lengths.ts). Reading the
// lengths, and the part of the printed result that only several lengths have: which lengths were profiled, the plan's
// density, budget spent and score at each, its span laws a + b·L, and the frontier at each length.
import type { AdviceResult } from '../orchestrate/advisor/advisor';
import { type PlanChoice, describeHeadChoice, isSpanLaw } from '../rewriters/plan/choices';
import { resolveSpan } from '../rewriters/plan/span';
import { type ParsedArgs, UsageError } from './args';
import { formatTable } from './format';
import { fmt } from './runtime-args';

/** --seq L or --seq L,L,...: one length (a number, as before) or several (ascending, each once). */
export function seqOption(args: ParsedArgs, dflt: number): number | number[] {
  const v = args.options.get('seq');
  if (v === undefined) return dflt;
  const parts = v === true ? [] : String(v).split(',').map((s) => s.trim());
  const seqs = parts.map(Number);
  if (parts.length === 0 || seqs.some((n, i) => parts[i] === '' || !Number.isInteger(n) || n < 2)) {
    throw new UsageError(`--seq must be a length >= 2 or several, comma-separated (e.g. 256,512), got '${v}'`);
  }
  const unique = [...new Set(seqs)].sort((a, b) => a - b);
  return unique.length === 1 ? unique[0] : unique;
}

/** A head's choice as printed: with several lengths, a span law with its window at each ("window 0 + 0.125·L (32, 64)"). */
export function describeAcross(c: PlanChoice, runs: AdviceResult['lengths']): string {
  const d = describeHeadChoice(c);
  return runs && 'window' in c && isSpanLaw(c.window) ? `${d} (${runs.map((l) => resolveSpan(c.window, l.seq)).join(', ')})` : d;
}

/** The lines several lengths add to the printed result (none for one length). */
export function renderLengths(r: AdviceResult): string[] {
  const runs = r.lengths;
  const chosen = r.frontier[0];
  if (!runs || !chosen.lengths || !chosen.fits) return [];
  const lines = [
    '',
    `lengths profiled: ${runs.map((l) => l.seq).join(', ')} tokens (calibration windows of each length at the same places; one plan searched over ` +
      `all lengths at once, the budget holding at each; a span law's windows at each length in brackets; -o writes the model at ${r.seq})`,
  ];
  const laws = chosen.fits.filter((f) => f.how === 'law');
  lines.push(`span laws a + b·L (b ≥ 0, through window ladder points): ${laws.length} heads; ${chosen.fits.length - laws.length} heads the same choice at every length`);
  lines.push(formatTable(
    ['length', 'plan density', `budget spent (${r.budget.kind})`, 'plan', 'original'],
    chosen.lengths.map((l, i) => [String(l.seq), fmt(l.density, 4), fmt(l.cost, 4), fmt(l.evaluation.value, 4), fmt(runs[i].dense?.value, 4)]),
  ));
  // The longest length's frontier is the main table (plan.ts); here the others.
  for (const run of runs.filter((l) => l.seq !== r.seq)) {
    const families = [...new Set(r.baselines.filter((b) => b.seq === run.seq).map((b) => b.family))];
    lines.push('', `frontier at ${run.seq} tokens (${chosen.evaluation.metric}, lower is better; original ${fmt(run.dense?.value, 4)}):`, formatTable(
      ['budget', 'plan density', 'plan', ...families],
      r.frontier.slice().sort((a, b) => a.budget - b.budget).map((f) => {
        const at = f.lengths?.find((l) => l.seq === run.seq);
        return [
          String(f.budget), fmt(at?.density, 4), fmt(at?.evaluation.value, 4),
          ...families.map((fam) => {
            const b = r.baselines.find((x) => x.budget === f.budget && x.family === fam && x.seq === run.seq);
            return !b || !b.evaluation ? '-' : `${fmt(b.evaluation.value, 4)} (${b.rule}, ${fmt(b.density, 3)})`;
          }),
        ];
      }),
    ));
  }
  return lines;
}
