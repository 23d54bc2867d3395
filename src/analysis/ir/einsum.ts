// Einsum equations as the attention core writes them ("bhqd,bhkd->bhqk", "bqhd,bkhd->bhqk", "...qd,...kd->...qk",
// "bhqk,bkhd->bqhd"): one label per axis of each operand and of the output. An ellipsis stands for the axes the
// explicit labels leave, right-aligned as broadcasting aligns them, so its axes get labels of their own.

import type { Node } from './graph';

/** The equation attribute of an Einsum node as text (undefined when absent). */
export function einsumText(n: Node): string | undefined {
  const eq = n.attr('equation')?.s;
  return eq ? new TextDecoder().decode(eq) : undefined;
}

export interface Equation {
  inputs: string[][];
  output: string[];
}

/** The labels of each operand (of the given ranks) and of the output; undefined for an equation this cannot read. */
export function parseEinsum(equation: string, ranks: number[]): Equation | undefined {
  const text = equation.replace(/\s+/g, '');
  const arrow = text.indexOf('->');
  const lhs = arrow >= 0 ? text.slice(0, arrow) : text;
  const terms = lhs.split(',');
  if (terms.length !== ranks.length) return undefined;
  const inputs: string[][] = [];
  let ellipsis = 0;
  for (const [i, term] of terms.entries()) {
    const labels = expand(term, ranks[i]);
    if (!labels) return undefined;
    inputs.push(labels);
    ellipsis = Math.max(ellipsis, labels.filter((l) => l.startsWith('.')).length);
  }
  let output: string[] | undefined;
  if (arrow >= 0) output = expand(text.slice(arrow + 2), undefined, ellipsis);
  else {
    // Implicit output: the ellipsis axes, then every label used once, in alphabetical order.
    const count = new Map<string, number>();
    for (const l of inputs.flat()) count.set(l, (count.get(l) ?? 0) + 1);
    const once = [...count].filter(([l, n]) => n === 1 && !l.startsWith('.')).map(([l]) => l).sort();
    output = [...ellipsisLabels(ellipsis), ...once];
  }
  if (!output || new Set(output).size !== output.length) return undefined;
  const known = new Set(inputs.flat());
  if (output.some((l) => !known.has(l))) return undefined;
  return { inputs, output };
}

function ellipsisLabels(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `.${n - 1 - i}`);
}

/** One term's labels; `rank` fixes how many axes its ellipsis covers (for the output, `outEllipsis`). */
function expand(term: string, rank: number | undefined, outEllipsis = 0): string[] | undefined {
  const at = term.indexOf('...');
  const named = at >= 0 ? term.slice(0, at) + term.slice(at + 3) : term;
  if (!/^[A-Za-z]*$/.test(named)) return undefined;
  const letters = [...named];
  if (new Set(letters).size !== letters.length) return undefined; // a repeated label takes a diagonal
  if (at < 0) return rank === undefined || rank === letters.length ? letters : undefined;
  const n = rank === undefined ? outEllipsis : rank - letters.length;
  if (n < 0) return undefined;
  return [...term.slice(0, at), ...ellipsisLabels(n), ...term.slice(at + 3)];
}
