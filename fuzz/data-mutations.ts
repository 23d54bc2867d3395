// Structure-aware mutations of the data around the graph: attribute types and values, tensor dims, element types and
// data, declared shapes, opset imports, IR versions and external-data references.
import {
  AttrType, hotNodes, inits, nodes, oddFloat, oddInt, oddName, pickNode, type AttrP, type GraphP, type Int64, type Mutation, type NodeP,
  type TensorP,
} from './proto';
import type { Rng } from './rng';

const utf8 = (s: string) => new TextEncoder().encode(s);

function randomAttr(rng: Rng, g: GraphP): { node: NodeP; attr: AttrP } | null {
  const node = pickNode(rng, g, (n) => !!n.attribute?.length);
  return node ? { node, attr: rng.pick(node.attribute!) } : null;
}

/** Every tensor a mutation may edit: initializers (most often those read near attention) and tensor attributes. */
function tensors(rng: Rng, g: GraphP): TensorP[] {
  const all = [...inits(g)];
  for (const n of nodes(g)) for (const a of n.attribute ?? []) if (a.t) all.push(a.t);
  if (rng.chance(0.5)) {
    const near = new Set(hotNodes(g).flatMap((n) => n.input ?? []));
    const hot = all.filter((t) => near.has(t.name ?? ''));
    if (hot.length) return hot;
  }
  return all;
}

const smallTensor = (rng: Rng): TensorP => rng.pick<TensorP>([
  { dims: [], dataType: 1, rawData: new Uint8Array(4) },
  { dims: [2], dataType: 7, int64Data: [1, -1] },
  { dims: [rng.pick([0, 1, 3])], dataType: 1, floatData: [0.5] },
  { dims: [], dataType: 8, stringData: [utf8('s')] },
]);

function clearValue(a: AttrP): void {
  for (const k of ['f', 'i', 's', 't', 'g', 'floats', 'ints', 'strings', 'tensors', 'graphs'] as const) delete a[k];
}

/** Sets an attribute to a value of another type (and, sometimes, a `type` field that disagrees with the value). */
function retype(rng: Rng, a: AttrP): string {
  const to = rng.pick(['int', 'float', 'string', 'tensor', 'ints', 'floats', 'strings', 'graph', 'none'] as const);
  const oldType = a.type;
  clearValue(a);
  switch (to) {
    case 'int': a.type = AttrType.INT; a.i = oddInt(rng); break;
    case 'float': a.type = AttrType.FLOAT; a.f = oddFloat(rng); break;
    case 'string': a.type = AttrType.STRING; a.s = utf8(rng.pick(['', 'abc', '\n', 'bhqd,bhkd->bhqk', 'SAME_UPPER'])); break;
    case 'tensor': a.type = AttrType.TENSOR; a.t = smallTensor(rng); break;
    case 'ints': a.type = AttrType.INTS; a.ints = Array.from({ length: rng.pick([0, 1, 3, 9]) }, () => oddInt(rng)); break;
    case 'floats': a.type = AttrType.FLOATS; a.floats = Array.from({ length: rng.pick([0, 1, 4]) }, () => oddFloat(rng)); break;
    case 'strings': a.type = AttrType.STRINGS; a.strings = [utf8('a'), utf8('')]; break;
    case 'graph': a.type = AttrType.GRAPH; a.g = { name: 'attr_graph' }; break;
    case 'none': a.type = rng.pick([0, 99, AttrType.INT]); break;
  }
  if (rng.chance(0.2)) a.type = oldType; // the declared type no longer matches the value
  return to;
}

export const dataMutations: (readonly [string, Mutation, number])[] = [
  ['attr-type', ({ rng, graph }) => {
    const r = randomAttr(rng, graph);
    if (!r) return null;
    const to = retype(rng, r.attr);
    return `attribute '${r.attr.name}' of '${r.node.name}' (${r.node.opType}) retyped to ${to}`;
  }, 5],
  ['attr-value', ({ rng, graph }) => {
    const r = randomAttr(rng, graph);
    if (!r) return null;
    const a = r.attr;
    if (a.ints?.length) {
      if (rng.chance(0.3)) a.ints = rng.chance(0.5) ? [] : Array.from({ length: 2000 }, () => 1);
      else a.ints[rng.int(a.ints.length)] = oddInt(rng);
    } else if (a.floats?.length) a.floats[rng.int(a.floats.length)] = oddFloat(rng);
    else if (a.s !== undefined && a.s !== null && a.type === AttrType.STRING) a.s = rng.chance(0.5) ? Uint8Array.from([0xff, 0xfe, 0x80]) : utf8(oddName(rng));
    else if (a.type === AttrType.FLOAT) a.f = oddFloat(rng);
    else a.i = oddInt(rng);
    return `attribute '${a.name}' of '${r.node.name}' (${r.node.opType}) set to an odd value`;
  }, 6],
  ['attr-drop-or-add', ({ rng, graph }) => {
    const list = nodes(graph);
    if (!list.length) return null;
    const n = rng.pick(list);
    const attrs = (n.attribute ??= []);
    if (attrs.length && rng.chance(0.5)) {
      const [gone] = attrs.splice(rng.int(attrs.length), 1);
      return `attribute '${gone.name}' of '${n.name}' (${n.opType}) removed`;
    }
    const name = rng.pick(['axis', 'perm', 'num_heads', 'kv_num_heads', 'scale', 'to', 'value', 'axes', 'unidirectional', 'is_causal', attrs[0]?.name ?? 'axis']);
    const a: AttrP = { name };
    retype(rng, a);
    attrs.push(a);
    return `attribute '${name}' added to '${n.name}' (${n.opType})`;
  }, 3],
  ['tensor-dims', ({ rng, graph }) => {
    const list = tensors(rng, graph);
    if (!list.length) return null;
    const t = rng.pick(list);
    const dims = (t.dims ??= []);
    const what = rng.int(4);
    if (what === 0 && dims.length) dims[rng.int(dims.length)] = rng.pick<Int64>([-1, -4, 0, 2 ** 31, 2 ** 40, '9223372036854775807', '-9223372036854775808']);
    else if (what === 1) dims.push(rng.pick([1, 2, 0, 1000]));
    else if (what === 2 && dims.length) dims.pop();
    else t.dims = [rng.pick([2 ** 20, 2 ** 31, 2 ** 45]), rng.pick([2 ** 20, 2 ** 31])]; // huge, with the data it had
    return `dims of tensor '${t.name}' changed (variant ${what})`;
  }, 5],
  ['tensor-dtype', ({ rng, graph }) => {
    const list = tensors(rng, graph);
    if (!list.length) return null;
    const t = rng.pick(list);
    t.dataType = rng.pick([0, 2, 3, 6, 7, 8, 9, 10, 11, 13, 16, 17, 21, 22, 26, 27, 99, -1]);
    return `element type of tensor '${t.name}' set to ${t.dataType}`;
  }, 3],
  ['tensor-data', ({ rng, graph }) => {
    const list = tensors(rng, graph);
    if (!list.length) return null;
    const t = rng.pick(list);
    const what = rng.int(4);
    if (what === 0) { t.rawData = null; t.floatData = []; t.int64Data = []; t.int32Data = []; } // no data at all
    else if (what === 1) { t.rawData = null; t.floatData = [1, 2, 3]; t.int64Data = [1]; } // typed fields of the wrong length
    else if (what === 2 && t.rawData?.length) t.rawData = t.rawData.subarray(0, rng.int(t.rawData.length)); // short
    else { t.rawData = new Uint8Array(rng.pick([1, 3, 7])); t.floatData = [1]; } // both forms, odd length
    return `data of tensor '${t.name}' changed (variant ${what})`;
  }, 4],
  ['value-info-shape', ({ rng, graph }) => {
    const list = [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])];
    if (!list.length) return null;
    const vi = rng.pick(list);
    const what = rng.int(6);
    const dims = vi.type?.tensorType?.shape?.dim;
    if (what === 0 && dims?.length) dims[rng.int(dims.length)] = { dimValue: rng.pick<Int64>([-1, 0, 2 ** 40, '9223372036854775807', -(2 ** 31)]) };
    else if (what === 1 && dims?.length) dims[rng.int(dims.length)] = { dimParam: oddName(rng) };
    else if (what === 2 && dims) rng.chance(0.5) ? dims.pop() : dims.push({ dimValue: 3 });
    else if (what === 3) vi.type = null;
    else if (what === 4) vi.type = { sequenceType: { elemType: { tensorType: { elemType: 1 } } } };
    else vi.type = { tensorType: { elemType: rng.pick([0, 8, 99, -3]), shape: rng.chance(0.5) ? null : { dim: [] } } };
    return `declared type of '${vi.name}' changed (variant ${what})`;
  }, 4],
  ['opsets', ({ rng, model }) => {
    const list = (model.opsetImport ??= []);
    const what = rng.int(7);
    if (what === 0) model.opsetImport = [];
    else if (what === 1) model.opsetImport = list.filter((o) => o.domain !== '' && o.domain !== 'ai.onnx');
    else if (what === 2 && list.length) rng.pick(list).version = rng.pick<Int64>([0, -1, 1, 5, 99, 2 ** 40, '9223372036854775807']);
    else if (what === 3) list.push({ domain: rng.pick(['', 'com.microsoft', 'ai.onnx']), version: rng.pick([1, 13, 99]) });
    else if (what === 4) list.push({ domain: rng.pick(['com.evil', 'x'.repeat(1000), '\n']), version: 1 });
    else if (what === 5) model.opsetImport = list.filter((o) => o.domain !== 'com.microsoft');
    else for (const o of list) if (!o.domain) o.domain = 'ai.onnx';
    return `opset imports edited (variant ${what})`;
  }, 4],
  ['ir-version', ({ rng, model }) => {
    model.irVersion = rng.pick<Int64>([0, 1, 2, 3, 4, 7, 10, 11, 12, -1, 2 ** 40, '9223372036854775807']);
    return `IR version ${String(model.irVersion)}`;
  }, 2],
  ['external-data', ({ rng, graph, extra }) => {
    const list = rng.chance(0.85) ? inits(graph) : tensors(rng, graph);
    if (!list.length) return null;
    const t = rng.pick(list);
    const data = t.rawData ?? new Uint8Array(0);
    t.rawData = null;
    t.dataLocation = 1;
    const variant = rng.int(9);
    let location = 'weights.bin';
    let offset: string | undefined;
    let length: string | undefined;
    switch (variant) {
      case 0: location = 'missing.bin'; break;
      case 1: location = rng.pick(['../outside.bin', '/etc/hostname', 'a/../../x.bin', '..\\x.bin', 'C:\\w.bin', 'nul\u0000.bin', '']); break;
      case 2: extra.set(location, data); break; // a valid reference to the tensor's own bytes
      case 3: extra.set(location, data); offset = rng.pick(['-1', '99999999999999999999', 'abc', '1e3', '', '0x10', String(data.length + 1)]); break;
      case 4: extra.set(location, data); length = rng.pick(['-5', '18446744073709551615', 'NaN', String(data.length * 4 + 8), '0']); break;
      case 5: location = 'folder'; extra.set('folder/', 'dir'); break;
      case 6: location = 'model.onnx'; break; // the model file itself: inside the folder, but not weights
      case 7: extra.set(location, data.subarray(0, data.length >> 1)); break; // a data file too short for the tensor
      case 8: extra.set(location, data); t.dims = [...(t.dims ?? []), 2]; break; // data length disagrees with the dims
    }
    t.externalData = [{ key: 'location', value: location }];
    if (offset !== undefined) t.externalData.push({ key: 'offset', value: offset });
    if (length !== undefined) t.externalData.push({ key: 'length', value: length });
    if (rng.chance(0.1)) t.externalData = rng.chance(0.5) ? [] : [{ key: 'location', value: 'a' }, { key: 'location', value: 'b' }];
    return `tensor '${t.name}' moved to external data (variant ${variant})`;
  }, 5],
  ['shape-constant', ({ rng, graph }) => {
    // The small int64 constants of Reshape targets, axes and split sizes carry head counts and sizes: change one value,
    // keeping the data consistent with the dims (so the model still loads and the matchers see the odd value).
    const small = tensors(rng, graph).filter((t) => t.dataType === 7 && (t.rawData?.length ?? 0) > 0 && (t.rawData?.length ?? 0) <= 64);
    if (!small.length) return null;
    const t = rng.pick(small);
    const values = new BigInt64Array(new Uint8Array(t.rawData!).buffer);
    const k = rng.int(values.length);
    values[k] = BigInt(rng.pick([0, -1, -2, 1, 3, 7, 1000, 2 ** 31, -(2 ** 40), 2 ** 53]));
    t.rawData = new Uint8Array(values.buffer);
    return `value ${k} of int64 constant '${t.name}' set to ${values[k]}`;
  }, 4],
  ['sparse-initializer', ({ rng, graph }) => {
    const list = inits(graph);
    if (!list.length) return null;
    const [t] = list.splice(rng.int(list.length), 1);
    (graph.sparseInitializer ??= []).push({ values: { ...t, dims: [0] }, indices: { dims: [0], dataType: 7 }, dims: t.dims ?? [] });
    return `initializer '${t.name}' moved to sparse_initializer`;
  }, 1],
];
