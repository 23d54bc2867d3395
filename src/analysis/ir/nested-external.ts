// Tensors outside the graph's initializers that use external data: Constant values and other tensor attributes,
// initializers of subgraphs, tensors in functions. Saving relocates the graph's initializers, but a reference in one of
// these would still point into the input's folder and break as soon as the output is saved elsewhere, so saving
// embeds them (they are small: constants and control-flow bodies).
import { resolveExternalRef, readExternal } from '../onnx/external-data';
import type { TensorProtoLike } from '../onnx/tensor';
import { checkTensorData } from '../onnx/validate';
import type { NodeProtoLike } from './graph';

interface GraphLike {
  node?: NodeProtoLike[] | null;
  initializer?: TensorProtoLike[] | null;
  [k: string]: unknown;
}

/**
 * `nodes` with every external tensor in their attributes (through subgraphs) embedded, read through references
 * relative to `modelFile`. Copy on write: unchanged nodes are returned as they are, the loaded model is never edited.
 */
export function embedNestedExternal(nodes: NodeProtoLike[], modelFile: string): NodeProtoLike[] {
  const sizes = new Map<string, number>();
  const embed = (t: TensorProtoLike): TensorProtoLike => {
    if (t.dataLocation !== 1) return t;
    const ref = resolveExternalRef(modelFile, t.name ?? '', t.externalData ?? [], sizes, checkTensorData(t, modelFile));
    return { ...t, dataLocation: 0, externalData: [], rawData: readExternal(ref) };
  };
  const inGraph = (g: GraphLike): GraphLike => {
    const node = inNodes(g.node ?? []);
    const initializer = (g.initializer ?? []).map(embed);
    const same = node === g.node && initializer.every((t, i) => t === g.initializer?.[i]);
    return same ? g : { ...g, node, initializer };
  };
  const inNodes = (list: NodeProtoLike[]): NodeProtoLike[] => {
    let changed = false;
    const out = list.map((n) => {
      let nodeChanged = false;
      const attribute = (n.attribute ?? []).map((a) => {
        const t = a.t ? embed(a.t as TensorProtoLike) : a.t;
        const tensors = (a.tensors as TensorProtoLike[] | undefined)?.map(embed);
        const g = a.g ? inGraph(a.g as GraphLike) : a.g;
        const graphs = (a.graphs as GraphLike[] | undefined)?.map(inGraph);
        const same = t === a.t && g === a.g && (tensors ?? []).every((x, i) => x === (a.tensors as unknown[])[i]) &&
          (graphs ?? []).every((x, i) => x === (a.graphs as unknown[])[i]);
        if (same) return a;
        nodeChanged = true;
        return { ...a, t, g, ...(tensors ? { tensors } : {}), ...(graphs ? { graphs } : {}) };
      });
      if (!nodeChanged) return n;
      changed = true;
      return { ...n, attribute };
    });
    return changed ? out : list;
  };
  return inNodes(nodes);
}
