// Cutting parts out of a packed projection (GPT-2's c_attn and its like): when a site stops needing its own Q and K
// (share-attn) or K and V (share-kv), their columns leave the fused weight and bias, the Split that separated the parts
// is bypassed for the one part left, and the literal widths downstream follow.
import type { GraphBuilder } from '../../../analysis/ir/builder';
import { fixShapes } from './shape-fix';
import { rangeBlock } from './mix';
import { writeBias, writeFeatures } from './projection';
import type { SiteStructure } from './structure';

export class PackedError extends Error {}

export function keepPackedParts(builder: GraphBuilder, s: SiteStructure, keep: 'q' | 'k' | 'v', rule: string): void {
  const packed = s.packed;
  if (!packed) return;
  if (s.form === 'ms-attention') throw new PackedError('the packed Attention operator computes Q, K and V inside; its parts cannot be removed');
  const { proj, parts } = packed;
  const part = parts.find((p) => p.role === keep)!;
  const base = `${s.anchor.name}::${rule}/${keep}`;
  writeFeatures(builder, proj, [rangeBlock(part.start, part.end)], base);
  if (proj.bias) writeBias(builder, proj, proj.bias.data.slice(part.start, part.end), base, range(part.start, part.end));
  // The Split (if any) that cut the parts: its remaining part is now the whole tensor.
  const index = parts.indexOf(part);
  const split = [...s.region].find((n) => s.roles.get(n) === 'packed' && n.opType === 'Split' && n.outputs.length === parts.length);
  if (split) builder.replaceAllUses(split.outputs[index], split.input(0)!);
  builder.removeUnused();
  const widths = parts.map((p) => ({ role: p.role, before: p.end - p.start, after: p === part ? p.end - p.start : 0 }));
  const counts = { heads: s.heads, kvHeads: s.kvHeads };
  fixShapes(builder, s, counts, counts, widths, rule);
  builder.removeUnused();
}

function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, i) => start + i);
}
