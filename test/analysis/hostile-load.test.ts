// Regression tests for what the fuzzer (test/fuzz) found at the load boundary: each bad model below used to get past
// loading and end in a TypeError, a RangeError, a stack overflow or a plain Error deep in analysis or a rewrite. Now
// loading refuses it with a one-line ModelError that names the file and the tensor, node or field at fault.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deeplyNestedNode, field } from '../../fuzz/nested';
import { analyzeModel } from '../../src/analysis/analyze';
import type { ModelErrorCode } from '../../src/analysis/onnx/errors';
import { expectModelError } from './helpers/model-error';
import { loadModel } from '../../src/analysis/ir/load';
import { GraphProtoType, ModelProtoType } from '../../src/analysis/onnx/schema';
import { rewriteInMemory } from '../../src/rewriters/pipeline';
import { fixture } from '../helpers/fixtures';
import { tempDir } from './helpers/ort';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => { tmp = tempDir('hostile'); });
afterEach(() => tmp.cleanup());

function write(name: string, bytes: Uint8Array): string {
  const file = path.join(tmp.dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

const info = (name: string, dims: number[] = [2]) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });

/** y = x + w, with `w` (float32 [2], 8 bytes) as given. */
function model(w: Record<string, unknown>, extra: Record<string, unknown> = {}): Uint8Array {
  const obj = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      node: [{ name: 'add', opType: 'Add', input: ['x', 'w'], output: ['y'] }],
      initializer: [{ name: 'w', dims: [2], dataType: 1, rawData: new Uint8Array(8), ...w }],
      input: [info('x')],
      output: [info('y')],
    },
    ...extra,
  };
  return ModelProtoType.encode(ModelProtoType.fromObject(obj)).finish();
}

describe('tensors whose dims, element type and data disagree', () => {
  it('the control: a consistent tensor loads', () => {
    const file = write('ok.onnx', model({}));
    expect(loadModel(file).graph.initializers.get('w')!.toNumbers()).toEqual([0, 0]);
  });

  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['raw_data shorter than the dims need', { rawData: new Uint8Array(5) }, /tensor 'w' \(float32 \[2\]\) needs 8 bytes of data but holds 5/],
    ['huge dims with a few bytes (a rewrite allocated 2^62 elements)', { dims: [2 ** 31, 2 ** 31] }, /needs 18446744073709552000 bytes|more than any file/],
    ['a negative dim', { dims: [-2] }, /tensor 'w' has invalid dims \[-2\]/],
    ['an unknown element type (a rewrite threw a plain Error)', { dataType: 99 }, /tensor 'w' has unknown element type 99/],
    ['typed float_data of the wrong length', { rawData: new Uint8Array(0), floatData: [1, 2, 3] }, /needs 2 values but holds 3/],
    ['no data at all', { rawData: new Uint8Array(0) }, /needs 2 values but holds 0/],
  ];
  for (const [what, w, problem] of cases) {
    it(what, () => {
      const file = write('bad.onnx', model(w));
      expectModelError(() => loadModel(file), 'bad-tensor', file, problem);
    });
  }

  it('a Constant node\'s value tensor is checked too (the analysis reads it)', () => {
    const obj = ModelProtoType.decode(model({})) as unknown as { graph: { node: unknown[] } };
    obj.graph.node.unshift({ name: 'c', opType: 'Constant', output: ['k'], attribute: [{ name: 'value', type: 4, t: { dims: [3], dataType: 1, rawData: new Uint8Array(4) } }] });
    const file = write('const.onnx', ModelProtoType.encode(obj as never).finish());
    expectModelError(() => loadModel(file), 'bad-tensor', file, /needs 12 bytes of data but holds 4/);
  });

  it('a huge weight in a fixture fails at load, before a rewrite can allocate it', () => {
    const proto = ModelProtoType.decode(fs.readFileSync(fixture('fused-onnx23').model)) as unknown as { graph: { initializer: { name: string; dims: number[] }[] } };
    proto.graph.initializer.find((t) => t.name === 'l0.Wo')!.dims = [2 ** 31, 2 ** 31];
    const file = write('huge.onnx', ModelProtoType.encode(proto as never).finish());
    expectModelError(() => rewriteInMemory(file, [{ rule: 'prune-heads', params: { heads: { 0: [0] } } }]), 'bad-tensor', file, /tensor 'l0\.Wo'/);
  });
});

describe('external data references checked against the tensor', () => {
  const external = (kv: Record<string, string>) => ({ rawData: null, dataLocation: 1, externalData: Object.entries(kv).map(([key, value]) => ({ key, value })) });

  it('a length that disagrees with the dims is refused', () => {
    write('w.bin', new Uint8Array(64));
    const file = write('m.onnx', model(external({ location: 'w.bin', length: '16' })));
    expectModelError(() => loadModel(file), 'bad-tensor', file, /tensor 'w' needs 8 bytes but its external data reference gives length 16/);
  });

  it('without a length, the tensor reads its own size (not the rest of the file)', () => {
    write('w.bin', new Uint8Array(Float32Array.from([1, 2, 3, 4]).buffer));
    const file = write('m.onnx', model(external({ location: 'w.bin', offset: '4' })));
    const t = loadModel(file).graph.initializers.get('w')!;
    expect(t.external!.length).toBe(8);
    expect(t.toNumbers()).toEqual([2, 3]);
  });

  for (const offset of ['-1', '1e3', 'abc', '99999999999999999999']) {
    it(`an offset of '${offset}' is refused by name`, () => {
      write('w.bin', new Uint8Array(64));
      const file = write('m.onnx', model(external({ location: 'w.bin', offset })));
      expectModelError(() => loadModel(file), 'external-range', file, new RegExp(`invalid external data offset '${offset}'`));
    });
  }
});

describe('opset imports', () => {
  it('a node whose domain the model does not import is refused (a rewrite was blamed for it)', () => {
    const proto = ModelProtoType.decode(fs.readFileSync(fixture('fused-contrib_attention').model)) as unknown as { opsetImport: { domain: string }[] };
    proto.opsetImport = proto.opsetImport.filter((o) => o.domain !== 'com.microsoft');
    const file = write('no-ms.onnx', ModelProtoType.encode(proto as never).finish());
    expectModelError(() => rewriteInMemory(file, [{ rule: 'gqa', params: { groups: 2 } }]), 'bad-opset', file, /node '.+' \(com\.microsoft\.Attention\) is in domain 'com\.microsoft', which the model does not import/);
  });

  it('a model without any opset import is refused', () => {
    const file = write('none.onnx', model({}, { opsetImport: [] }));
    expectModelError(() => loadModel(file), 'bad-opset', file, /node 'add' \(Add\) is in domain 'ai\.onnx'.*opset imports: none/);
  });

  it('a version that is not a positive integer is refused', () => {
    const file = write('v0.onnx', model({}, { opsetImport: [{ domain: '', version: 0 }] }));
    expectModelError(() => loadModel(file), 'bad-opset', file, /domain 'ai\.onnx' has invalid version 0/);
  });
});

describe('nodes without the inputs or the output their operator requires', () => {
  it('an Add whose second input was dropped (the mask reader threw a TypeError)', () => {
    const proto = ModelProtoType.decode(fs.readFileSync(fixture('bert-sdpa-ts-op17').model)) as unknown as { graph: { node: { name: string; input: string[] }[] } };
    proto.graph.node.find((n) => n.name === '/m/encoder/layer.0/attention/self/Add')!.input.splice(1, 1);
    const file = write('one-input.onnx', ModelProtoType.encode(proto as never).finish());
    expectModelError(() => analyzeModel(file), 'bad-node', file, /node '\/m\/encoder\/layer\.0\/attention\/self\/Add' \(Add\) needs at least 2 input\(s\), but it has 1/);
  });

  it('an omitted (empty) required input', () => {
    const obj = ModelProtoType.decode(model({})) as unknown as { graph: { node: { input: string[] }[] } };
    obj.graph.node[0].input[1] = '';
    const file = write('empty-input.onnx', ModelProtoType.encode(obj as never).finish());
    expectModelError(() => loadModel(file), 'bad-node', file, /node 'add' \(Add\) needs at least 2 input\(s\), but its input 1 is empty/);
  });

  it('a Softmax without an output', () => {
    const proto = ModelProtoType.decode(fs.readFileSync(fixture('bert-sdpa-ts-op17').model)) as unknown as { graph: { node: { opType: string; output: string[] }[]; output: unknown[] } };
    const sm = proto.graph.node.find((n) => n.opType === 'Softmax')!;
    const gone = sm.output[0];
    sm.output = [];
    for (const n of proto.graph.node) for (const [i, name] of ((n as unknown as { input: string[] }).input ?? []).entries()) if (name === gone) (n as unknown as { input: string[] }).input[i] = 'input_ids';
    const file = write('no-output.onnx', ModelProtoType.encode(proto as never).finish());
    expectModelError(() => analyzeModel(file), 'bad-node', file, /\(Softmax\) has no output/);
  });
});

describe('head counts of fused attention operators', () => {
  type Attr = { name: string; type: number; i?: number; f?: number };
  /** fused-gqa with every GroupQueryAttention's kv_num_heads attribute replaced. */
  function gqaWith(kv: Attr): string {
    const proto = ModelProtoType.decode(fs.readFileSync(fixture('fused-gqa').model)) as unknown as { graph: { node: { opType: string; attribute: Attr[] }[] } };
    for (const n of proto.graph.node) {
      if (n.opType === 'GroupQueryAttention') n.attribute = [...n.attribute.filter((a) => a.name !== 'kv_num_heads'), kv];
    }
    return write('gqa.onnx', ModelProtoType.encode(proto as never).finish());
  }

  it('the control: the fixture as it is rewrites', () => {
    expect(rewriteInMemory(gqaWith({ name: 'kv_num_heads', type: 2, i: 2 }), [{ rule: 'expand', params: {} }]).report.applied).toHaveLength(1);
  });

  it('kv_num_heads given as a FLOAT (read as 0 heads, the expand rule built an int64 Infinity)', () => {
    const file = gqaWith({ name: 'kv_num_heads', type: 1, f: 2 });
    expectModelError(() => rewriteInMemory(file, [{ rule: 'expand', params: {} }]), 'bad-node', file, /attribute 'kv_num_heads' is FLOAT; it must be INT/);
  });

  it('num_heads of 2^31 (a per-head table of that length hung the binding)', () => {
    const proto = ModelProtoType.decode(fs.readFileSync(fixture('fused-gqa').model)) as unknown as { graph: { node: { opType: string; attribute: Attr[] }[] } };
    for (const n of proto.graph.node) for (const a of n.attribute) if (a.name === 'num_heads') a.i = 2 ** 31;
    const file = write('heads.onnx', ModelProtoType.encode(proto as never).finish());
    expectModelError(() => loadModel(file), 'bad-node', file, /num_heads is 2147483648; it must be a whole number from 1 to 65536/);
  });

  it('kv_num_heads 0, and one that does not divide the query heads', () => {
    const zero = gqaWith({ name: 'kv_num_heads', type: 2, i: 0 });
    expectModelError(() => loadModel(zero), 'bad-node', zero, /kv_num_heads is 0; it must be a whole number from 1 to 65536/);
    const three = gqaWith({ name: 'kv_num_heads', type: 2, i: 3 });
    expectModelError(() => loadModel(three), 'bad-node', three, /kv_num_heads 3 does not divide the 4 query heads/);
  });
});

describe('a Transpose perm that is not a permutation (the layout walk read axes that are not there)', () => {
  for (const perm of [[0, 2, 7, 3], [0, 1, 1, 3], [0, -1, 2, 3]]) {
    it(`perm [${perm.join(', ')}]`, () => {
      const proto = ModelProtoType.decode(fs.readFileSync(fixture('vit-eager-ts-op17-ortfused').model)) as unknown as { graph: { node: { name: string; attribute: { name: string; ints: number[] }[] }[] } };
      proto.graph.node.find((n) => n.name === '/m/layers.1/attention/Transpose_3')!.attribute.find((a) => a.name === 'perm')!.ints = perm;
      const file = write('perm.onnx', ModelProtoType.encode(proto as never).finish());
      expectModelError(() => analyzeModel(file), 'bad-node', file, new RegExp(`Transpose_3' \\(Transpose\\): perm \\[${perm.join(', ')}\\] is not a permutation`));
    });
  }
});

describe('subgraphs nested too deep', () => {
  /** A model whose graph holds `depth` If nodes, each in the previous one's then_branch (3 message levels each). */
  function nested(depth: number): string {
    const graph = GraphProtoType.encode(GraphProtoType.fromObject({ name: 'g', input: [{ name: 'c', type: { tensorType: { elemType: 9, shape: { dim: [] } } } }], output: [{ name: 'out' }] })).finish();
    const head = ModelProtoType.encode(ModelProtoType.fromObject({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }] })).finish();
    const withNode = Buffer.concat([graph, field(1, deeplyNestedNode(depth, 'c', 'out'))]);
    return write(`deep-${depth}.onnx`, Buffer.concat([head, field(7, withNode)]));
  }

  it('ten levels load', () => {
    expect(analyzeModel(nested(10)).model.nodeCount).toBe(1);
  });

  for (const depth of [40, 20_000]) {
    it(`${depth} levels are refused by name (the decoder overflowed its stack at a few thousand)`, () => {
      const file = nested(depth);
      expectModelError(() => loadModel(file), 'too-deep', file, /nested more than 100 levels deep/);
    });
  }
});

describe('names from the file stay on one line in messages', () => {
  it('a node name with a newline is escaped', () => {
    const obj = ModelProtoType.decode(model({})) as unknown as { graph: { node: { name: string; input: string[] }[] } };
    obj.graph.node[0].name = 'evil\nnode';
    obj.graph.node[0].input[1] = 'ghost\r\n';
    const file = write('names.onnx', ModelProtoType.encode(obj as never).finish());
    expectModelError(() => loadModel(file), 'graph-dangling', file, /node 'evil\\nnode' \(Add\) reads 'ghost\\r\\n'/);
  });

  it('a 100 kB name is cut in the middle, keeping the start and the end of the message', () => {
    const obj = ModelProtoType.decode(model({})) as unknown as { graph: { node: { input: string[] }[] } };
    obj.graph.node[0].input[1] = 'g'.repeat(100_000);
    const file = write('long.onnx', ModelProtoType.encode(obj as never).finish());
    const err = expectModelError(() => loadModel(file), 'graph-dangling', file, /characters left out.*which no node, graph input or initializer produces$/);
    expect(err.message.length).toBeLessThan(file.length + 700);
  });
});

describe('subgraph and function bodies are checked like the main graph', () => {
  type NodeObj = Record<string, unknown>;
  const branch = (nodes: NodeObj[], out = 'b') => ({ name: 'branch', node: nodes, output: [{ name: out }] });
  /** y = x + w, and an If (condition c) whose branches are `then` and a plain Identity of x. */
  function withIf(then: NodeObj[], extra: Record<string, unknown> = {}, opsets = [{ domain: '', version: 17 }]): Uint8Array {
    const obj = ModelProtoType.decode(model({})) as unknown as { opsetImport: unknown[]; graph: { node: NodeObj[]; input: unknown[]; output: unknown[] } };
    obj.opsetImport = opsets;
    obj.graph.input.push({ name: 'c', type: { tensorType: { elemType: 9, shape: { dim: [] } } } });
    obj.graph.node.push({
      name: 'if', opType: 'If', input: ['c'], output: ['z'],
      attribute: [
        { name: 'then_branch', type: 5, g: branch(then) },
        { name: 'else_branch', type: 5, g: branch([{ name: 'id', opType: 'Identity', input: ['x'], output: ['b'] }]) },
      ],
    });
    obj.graph.output.push({ name: 'z' });
    return ModelProtoType.encode(ModelProtoType.fromObject({ ...obj, ...extra })).finish();
  }
  const ok = [{ name: 'add2', opType: 'Add', input: ['x', 'w'], output: ['b'] }];

  it('the control: branches that read the enclosing graph load', () => {
    const file = write('if-ok.onnx', withIf(ok));
    expect(loadModel(file).graph.nodes.map((n) => n.opType)).toEqual(['Add', 'If']);
  });

  const where = /\(in attribute 'then_branch' of node 'if' in the main graph\)$/;
  const cases: [string, NodeObj[], ModelErrorCode, RegExp][] = [
    ['a name nothing defines', [{ name: 'n', opType: 'Add', input: ['x', 'ghost'], output: ['b'] }], 'graph-dangling', /node 'n' \(Add\) reads 'ghost', which nothing in the body or around it defines/],
    ['an Add without its second input', [{ name: 'n', opType: 'Add', input: ['x'], output: ['b'] }], 'bad-node', /node 'n' \(Add\) needs at least 2 input\(s\), but it has 1 input\(s\)/],
    ['a value produced twice', [...ok, { name: 'again', opType: 'Identity', input: ['x'], output: ['b'] }], 'graph-duplicate', /value 'b' is produced twice \(node 'again'\)/],
    ['a cycle', [{ name: 'p', opType: 'Add', input: ['x', 'q_out'], output: ['b'] }, { name: 'q', opType: 'Neg', input: ['b'], output: ['q_out'] }], 'graph-cycle', /the body has a cycle through nodes/],
    ['a domain the model does not import', [{ name: 'n', opType: 'Foo', domain: 'com.evil', input: ['x'], output: ['b'] }], 'bad-opset', /node 'n' \(Foo\) is in domain 'com.evil', which is not imported/],
    ['a Transpose perm that is not a permutation', [{ name: 't', opType: 'Transpose', input: ['x'], output: ['b'], attribute: [{ name: 'perm', type: 7, ints: [3] }] }], 'bad-node', /perm \[3\] is not a permutation/],
    ['kv_num_heads given as a FLOAT', [{ name: 'g', opType: 'GroupQueryAttention', domain: 'com.microsoft', input: ['x'], output: ['b'], attribute: [{ name: 'kv_num_heads', type: 1, f: 2 }] }], 'bad-node', /attribute 'kv_num_heads' is FLOAT; it must be INT/],
    ['an output the body does not produce', [{ name: 'n', opType: 'Identity', input: ['x'], output: ['other'] }], 'graph-dangling', /body output 'b' is not produced/],
  ];
  it.each(cases)('%s in a branch is refused in one line naming the branch', (name, then, code, problem) => {
    const file = write(`if-${name.replace(/\W+/g, '-')}.onnx`, withIf(then, {}, [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }]));
    const err = expectModelError(() => loadModel(file), code, file, problem);
    expect(err.message).toMatch(where);
  });

  it('a body inside a body names both levels', () => {
    const inner = { name: 'inner', opType: 'If', input: ['c'], output: ['b'], attribute: [{ name: 'else_branch', type: 5, g: branch([{ name: 'deep', opType: 'Mul', input: ['x'], output: ['b2'] }], 'b2') }] };
    const file = write('if-nested.onnx', withIf([inner]));
    expectModelError(() => loadModel(file), 'bad-node', file, /node 'deep' \(Mul\) needs at least 2 input\(s\).*\(in attribute 'else_branch' of node 'inner' in attribute 'then_branch' of node 'if' in the main graph\)$/);
  });

  it('a GRAPH attribute that holds no graph', () => {
    const obj = ModelProtoType.decode(withIf(ok)) as unknown as { graph: { node: { attribute?: NodeObj[] }[] } };
    delete obj.graph.node[1].attribute![0].g;
    const file = write('if-empty.onnx', ModelProtoType.encode(obj as never).finish());
    expectModelError(() => loadModel(file), 'bad-node', file, /attribute 'then_branch' is a graph but holds none/);
  });

  const fn = (name: string, nodes: NodeObj[]) => ({ name, domain: 'local', input: ['a'], output: ['r'], node: nodes, opsetImport: [{ domain: '', version: 17 }] });
  const opsets = [{ domain: '', version: 17 }, { domain: 'local', version: 1 }];
  it('model-local functions: the control loads, a dangling name, a short Add and a duplicate are refused', () => {
    const good = fn('F', [{ name: 'n', opType: 'Neg', input: ['a'], output: ['r'] }]);
    expect(loadModel(write('fn-ok.onnx', withIf(ok, { functions: [good] }, opsets))).graph.nodes).toHaveLength(2);
    const dangling = write('fn-dangling.onnx', withIf(ok, { functions: [fn('F', [{ name: 'n', opType: 'Neg', input: ['x'], output: ['r'] }])] }, opsets));
    expectModelError(() => loadModel(dangling), 'graph-dangling', dangling, /node 'n' \(Neg\) reads 'x', which nothing in the body or around it defines \(in model-local function 'F'\)$/);
    const short = write('fn-short.onnx', withIf(ok, { functions: [fn('F', [{ name: 'n', opType: 'MatMul', input: ['a'], output: ['r'] }])] }, opsets));
    expectModelError(() => loadModel(short), 'bad-node', short, /node 'n' \(MatMul\) needs at least 2 input\(s\).*\(in model-local function 'F'\)$/);
    const twice = write('fn-twice.onnx', withIf(ok, { functions: [good, good] }, opsets));
    expectModelError(() => loadModel(twice), 'graph-duplicate', twice, /model-local function 'F' \(domain 'local'\) is defined twice/);
  });
});
