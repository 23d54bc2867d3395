// The patch grid of a vision transformer: how its tokens lie on the image. The patch embedding is a Conv whose output
// [B, C, H, W] is flattened into H·W tokens; tokens in front of them (class, distillation, register tokens) are the
// prefix. Without such a Conv (patches embedded some other way), the largest square that fits the token count is taken
// as the grid and the rest as prefix.
import type { Graph } from '../../analysis/ir/graph';
import type { ShapeInfo } from '../../analysis/ir/shapes';

export interface PatchGrid {
  prefix: number;
  gridH: number;
  gridW: number;
  /** How the grid was found, for the report. */
  source: string;
}

/** The grid for a site with `tokens` query/key positions, or why there is none. */
export function findGrid(graph: Graph, shapes: ShapeInfo, tokens: number): PatchGrid | string {
  for (const n of graph.nodes) {
    if (n.opType !== 'Conv') continue;
    const s = shapes.shape(n.outputs[0]);
    if (!s || s.length !== 4) continue;
    const [h, w] = [s[2], s[3]];
    if (typeof h !== 'number' || typeof w !== 'number') continue;
    const prefix = tokens - h * w;
    if (prefix >= 0 && prefix <= 16) return { prefix, gridH: h, gridW: w, source: `patch Conv '${n.name}' (${h}×${w})` };
  }
  for (let prefix = 0; prefix <= 16 && prefix < tokens; prefix++) {
    const side = Math.round(Math.sqrt(tokens - prefix));
    if (side > 1 && side * side === tokens - prefix) return { prefix, gridH: side, gridW: side, source: `√(${tokens} − ${prefix}) = ${side}` };
  }
  return `${tokens} tokens do not form a square patch grid with at most 16 prefix tokens`;
}
