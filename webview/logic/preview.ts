// A rewrite preview as rows: the totals (nodes, parameters, attention FLOPs and memory, before and after) and what
// each rule changed at each site. Pure.
import type { RewritePreview } from '../../src/protocol';
import { bytes, change, count, ratio } from './format';
import { type Units, positions } from './units';

export function totalsRows(p: RewritePreview, units: Units): string[][] {
  const at = positions(p.seqLen, units);
  return [
    ['nodes', String(p.nodesBefore), String(p.nodesAfter), change(p.nodesBefore, p.nodesAfter)],
    ['parameters', count(p.parametersBefore), count(p.parametersAfter), change(p.parametersBefore, p.parametersAfter)],
    [`attention FLOPs at ${at}`, count(p.flopsBefore), count(p.flopsAfter), change(p.flopsBefore, p.flopsAfter)],
    [`attention matrices at ${at}`, bytes(p.bytesBefore), bytes(p.bytesAfter), change(p.bytesBefore, p.bytesAfter)],
  ];
}

/** The bound the FLOPs allow for the attention core: before / after. */
export function flopRatio(p: RewritePreview): number | null {
  if (p.flopsBefore === 0) return null;
  return p.flopsAfter === 0 ? Infinity : p.flopsBefore / p.flopsAfter;
}

export function flopRatioText(p: RewritePreview): string {
  return ratio(flopRatio(p));
}

function params(o: Record<string, unknown>): string {
  const parts = Object.entries(o).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return parts.length ? parts.join(', ') : '–';
}

export function changeRows(p: RewritePreview): string[][] {
  return p.applied.flatMap((a) =>
    a.changes.map((c) => [
      String(c.site),
      a.rule,
      params(c.before),
      params(c.after),
      `${count(c.flopsBefore)} → ${count(c.flopsAfter)}`,
      `${bytes(c.bytesBefore)} → ${bytes(c.bytesAfter)}`,
      `+${c.nodesAdded} / −${c.nodesRemoved}`,
    ]),
  );
}

export const CHANGE_COLUMNS = ['site', 'rule', 'before', 'after', 'attention FLOPs', 'attention matrix', 'nodes'];
