// Encoding subgraphs nested thousands deep. protobufjs encodes recursively (its own stack would overflow before the
// product's does) and wrapping level by level copies the growing buffer each time, so the sizes are computed inside
// out and the bytes written outside in, into one buffer.
import { schemaRoot } from '../src/analysis/onnx/schema';

const NodeType = schemaRoot.lookupType('onnx.NodeProto');
const AttrTypeMsg = schemaRoot.lookupType('onnx.AttributeProto');
const GraphType = schemaRoot.lookupType('onnx.GraphProto');

const varintLength = (n: number) => {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
};

function writeVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}

/**
 * A NodeProto (bytes) of `depth` If nodes, each holding the next in its `then_branch` graph, innermost an Identity.
 * Field numbers: NodeProto.attribute 5, AttributeProto.g 6, GraphProto.node 1 (all length-delimited).
 */
export function deeplyNestedNode(depth: number, outerInput: string, outerOutput: string): Uint8Array {
  const leaf = NodeType.encode(NodeType.fromObject({ opType: 'Identity', input: [outerInput], output: ['y'] })).finish();
  // Per level (0 = outermost): the node's own fields, the attribute's own fields, the graph's own fields.
  const nodeHead: Uint8Array[] = [];
  const attrHead = AttrTypeMsg.encode(AttrTypeMsg.fromObject({ name: 'then_branch', type: 5 })).finish();
  const graphHead: Uint8Array[] = [];
  for (let d = 0; d < depth; d++) {
    const io = d === 0 ? { input: [outerInput], output: [outerOutput] } : { input: ['c'], output: [`o${d}`] };
    nodeHead.push(NodeType.encode(NodeType.fromObject({ name: `fuzz_deep_${d}`, opType: 'If', ...io })).finish());
    graphHead.push(GraphType.encode(GraphType.fromObject({ name: `g${d}` })).finish());
  }
  // Sizes inside out: node(d) = head + [attr field: attrHead + [g field: graphHead + [node field: node(d+1)]]].
  const nodeSize = new Array<number>(depth + 1);
  const attrSize = new Array<number>(depth);
  const graphSize = new Array<number>(depth);
  nodeSize[depth] = leaf.length;
  for (let d = depth - 1; d >= 0; d--) {
    graphSize[d] = graphHead[d].length + 1 + varintLength(nodeSize[d + 1]) + nodeSize[d + 1];
    attrSize[d] = attrHead.length + 1 + varintLength(graphSize[d]) + graphSize[d];
    nodeSize[d] = nodeHead[d].length + 1 + varintLength(attrSize[d]) + attrSize[d];
  }
  const out = new Uint8Array(nodeSize[0]);
  let at = 0;
  for (let d = 0; d < depth; d++) {
    out.set(nodeHead[d], at);
    at += nodeHead[d].length;
    out[at++] = (5 << 3) | 2;
    at = writeVarint(out, at, attrSize[d]);
    out.set(attrHead, at);
    at += attrHead.length;
    out[at++] = (6 << 3) | 2;
    at = writeVarint(out, at, graphSize[d]);
    out.set(graphHead[d], at);
    at += graphHead[d].length;
    out[at++] = (1 << 3) | 2;
    at = writeVarint(out, at, nodeSize[d + 1]);
  }
  out.set(leaf, at);
  return out;
}

/** A length-delimited field: tag, length, payload. */
export function field(fieldNumber: number, payload: Uint8Array): Uint8Array {
  const head = new Uint8Array(10);
  let at = writeVarint(head, 0, (fieldNumber << 3) | 2);
  at = writeVarint(head, at, payload.length);
  const out = new Uint8Array(at + payload.length);
  out.set(head.subarray(0, at));
  out.set(payload, at);
  return out;
}
