// Attention the analysis does not read: Softmax and fused attention nodes inside subgraph bodies (If, Loop, Scan).
// optimum's merged decoders keep the whole model in the two branches of one If (with and without the KV cache), so
// a report of the main graph alone would say "no attention" about a model made of it. Each such node is listed as
// unmatched with where it is, and the report warns once.
import type { AttributeProtoLike, Graph } from '../ir/graph';
import type { UnmatchedInfo } from '../report/types';
import { FUSED_OPS } from './fused';

interface BodyNode {
  name?: string | null;
  opType?: string | null;
  domain?: string | null;
  attribute?: AttributeProtoLike[] | null;
}
interface Body {
  node?: BodyNode[] | null;
}

/** Nodes nested deeper than this are not looked for (a hostile model could nest bodies without end). */
const MAX_DEPTH = 16;

export interface NestedAttention {
  unmatched: UnmatchedInfo[];
  /** One line for the report's warnings, when there is any. */
  warning?: string;
}

export function nestedAttention(graph: Graph): NestedAttention {
  const unmatched: UnmatchedInfo[] = [];
  const holders = new Set<string>();
  for (const n of graph.nodes) {
    for (const [attr, body] of bodiesOf(n.attributes.values())) {
      const where = `the ${attr} of ${n.opType} '${n.name}'`;
      const before = unmatched.length;
      collect(body, where, unmatched, 1);
      if (unmatched.length > before) holders.add(`${n.opType} '${n.name}'`);
    }
  }
  if (unmatched.length === 0) return { unmatched };
  const warning = `${unmatched.length} softmax/attention node(s) are inside subgraphs (${[...holders].join(', ')}), which the analysis does not read: `
    + 'their sites are not in this report and no rule rewrites them. An optimum merged decoder (decoder_model_merged.onnx) keeps the whole model in If branches; '
    + 'export it without merging, or open decoder_with_past_model.onnx or decoder_model.onnx instead';
  return { unmatched, warning };
}

function collect(body: Body, where: string, out: UnmatchedInfo[], depth: number): void {
  for (const n of body.node ?? []) {
    if (isAttention(n)) out.push({ node: n.name || `(unnamed ${n.opType})`, reason: `inside ${where}: subgraphs are not analysed` });
    if (depth >= MAX_DEPTH) continue;
    for (const [attr, inner] of bodiesOf(n.attribute ?? [])) collect(inner, `the ${attr} of ${n.opType} '${n.name ?? ''}' in ${where}`, out, depth + 1);
  }
}

function isAttention(n: BodyNode): boolean {
  const domain = n.domain || '';
  if (n.opType === 'Softmax' && (domain === '' || domain === 'ai.onnx')) return true;
  return FUSED_OPS.has(`${domain === '' || domain === 'ai.onnx' ? 'onnx' : domain}.${n.opType ?? ''}`);
}

function* bodiesOf(attrs: Iterable<AttributeProtoLike>): Generator<[string, Body]> {
  for (const a of attrs) {
    const name = a.name ?? 'graph attribute';
    if (a.g && typeof a.g === 'object') yield [name, a.g as Body];
    for (const g of a.graphs ?? []) if (g && typeof g === 'object') yield [name, g as Body];
  }
}

