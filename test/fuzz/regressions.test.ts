// Regression tests for what the fuzzer found past the load boundary, each on a fixture with one hand-made edit: the
// analysis and the rewrites must end in a result or a user error (a reason, a RuleError), never in a TypeError,
// a RangeError or a plain Error.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { ModelProtoType } from '../../src/analysis/onnx/schema';
import { rewriteInMemory } from '../../src/rewriters/pipeline';
import { RuleError } from '../../src/rewriters/rule';
import { fixture } from '../helpers/fixtures';

interface Proto {
  graph: {
    node: { name: string; opType: string; input: string[]; output: string[]; attribute: { name: string; t?: Record<string, unknown> }[] }[];
    initializer: { name: string; rawData: Uint8Array }[];
    input: { name: string; type: { tensorType: { shape: { dim: { dimValue?: unknown; dimParam?: string }[] } } } }[];
  };
}

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'al-fuzz-regress-')); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function edited(name: string, edit: (p: Proto) => void): string {
  const proto = ModelProtoType.decode(fs.readFileSync(fixture(name).model)) as unknown as Proto;
  edit(proto);
  const file = path.join(dir, `${name}.onnx`);
  fs.writeFileSync(file, ModelProtoType.encode(proto as never).finish());
  return file;
}

const setInt64 = (p: Proto, name: string, value: bigint) => {
  p.graph.initializer.find((t) => t.name === name)!.rawData = new Uint8Array(BigInt64Array.from([value]).buffer);
};

function ruleError(fn: () => unknown): RuleError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, String((caught as Error)?.stack)).toBeInstanceOf(RuleError);
  return caught as RuleError;
}

describe('site figures that cannot be right are a reason, not a site', () => {
  // vit-sdpa-dynamo-op23 reads its heads from the reshape targets built from these constants (val_27 is the 17 tokens).
  it('a reshape target that makes 68 heads of 32 in front of a 128-feature projection (prune threw a plain Error)', () => {
    const file = edited('vit-sdpa-dynamo-op23', (p) => setInt64(p, 'val_27', 1n));
    const report = analyzeModel(file);
    expect(report.sites).toEqual([]);
    expect(report.unmatched.map((u) => u.reason)).toEqual([
      "onnx.Attention: 68 heads of 32 do not fill its Q projection's 128 features",
      "onnx.Attention: 68 heads of 32 do not fill its Q projection's 128 features",
    ]);
    expect(ruleError(() => rewriteInMemory(file, [{ rule: 'prune-heads', params: { heads: { 0: [0] } } }])).message).toMatch(/prune-heads: site 0 does not exist/);
  });

  it('a reshape target of 2^53 (a per-head table of that length threw a RangeError)', () => {
    const file = edited('vit-sdpa-dynamo-op23', (p) => setInt64(p, 'val_37', 2n ** 53n));
    const report = analyzeModel(file);
    expect(report.sites).toEqual([]);
    expect(report.unmatched[0].reason).toMatch(/onnx\.Attention: it reads 9007199254740991 query heads .* not whole numbers from 1 to 65536/);
    ruleError(() => rewriteInMemory(file, [{ rule: 'gqa', params: { groups: 2 } }]));
  });

  it('the control: the fixture as exported keeps its two sites', () => {
    expect(analyzeModel(fixture('vit-sdpa-dynamo-op23').model).sites.map((s) => [s.heads, s.headDim])).toEqual([[4, 32], [4, 32]]);
  });
});

describe('weights the head rewrites cannot read', () => {
  it('a V projection whose weight is the 1-D bias (prune threw "not a matrix")', () => {
    const file = edited('fused-onnx23', (p) => {
      p.graph.node.find((n) => n.opType === 'MatMul' && n.output[0] === 'l1.v0')!.input[1] = 'l1.bv';
    });
    const sites = analyzeModel(file).sites;
    expect(sites).toHaveLength(2);
    const err = ruleError(() => rewriteInMemory(file, [{ rule: 'prune-heads', params: { heads: { 1: [0] } } }]));
    expect(err.message).toMatch(/has shape \[128\], not a matrix/);
  });
});

describe('constants without a numeric reading', () => {
  it('a ConstantOfShape whose value is a string tensor (the mask reader threw a plain Error)', () => {
    const file = edited('nnmha-seqfirst-padmask-op13', (p) => {
      const n = p.graph.node.find((x) => x.name === '/enc/layers.1/self_attn/ConstantOfShape_1')!;
      n.attribute = [{ name: 'value', type: 4, t: { dims: [1], dataType: 8, stringData: [new TextEncoder().encode('s')] } } as never];
    });
    const report = analyzeModel(file);
    expect(report.sites).toHaveLength(2);
  });
});

describe('models a rewrite cannot edit', () => {
  it('a fused output read inside an If branch: the rule refuses (the builder threw a plain Error)', () => {
    const file = edited('fused-contrib_attention', (p) => {
      const att = p.graph.node.find((n) => n.opType === 'Attention')!.output[0];
      const branch = (tag: string) => ({ name: tag, node: [{ opType: 'Identity', input: [att], output: [`${tag}_y`] }], output: [{ name: `${tag}_y` }] });
      p.graph.node.push({
        name: 'reads_att', opType: 'If', input: [att], output: ['if_y'],
        attribute: [{ name: 'then_branch', type: 5, g: branch('then') }, { name: 'else_branch', type: 5, g: branch('else') }] as never,
      });
    });
    expect(analyzeModel(file).sites).toHaveLength(2);
    const err = ruleError(() => rewriteInMemory(file, [{ rule: 'expand', params: {} }]));
    expect(err.message).toMatch(/^expand: cannot rewrite this model: '.+' is read inside a subgraph by name/);
  });

  it('the refusal stays on one line when the value\'s name holds a newline', () => {
    const file = edited('fused-contrib_attention', (p) => {
      const att = p.graph.node.find((n) => n.opType === 'Attention')!.output[0];
      const evil = 'att\nout';
      for (const n of p.graph.node) {
        n.input = n.input.map((i) => (i === att ? evil : i));
        n.output = n.output.map((o) => (o === att ? evil : o));
      }
      const branch = (tag: string) => ({ name: tag, node: [{ opType: 'Identity', input: [evil], output: [`${tag}_y`] }], output: [{ name: `${tag}_y` }] });
      p.graph.node.push({
        name: 'reads_att', opType: 'If', input: [evil], output: ['if_y'],
        attribute: [{ name: 'then_branch', type: 5, g: branch('then') }, { name: 'else_branch', type: 5, g: branch('else') }] as never,
      });
    });
    const err = ruleError(() => rewriteInMemory(file, [{ rule: 'expand', params: {} }]));
    expect(err.message).not.toMatch(/\n/);
    expect(err.message).toMatch(/'att\\nout' is read inside a subgraph/);
  });

  it('a declared input dim of 2^63 - 1 is unknown, not a number an int64 constant cannot hold (a RangeError)', () => {
    const file = edited('nntransformer-seq2seq-op11', (p) => {
      p.graph.input.find((i) => i.name === 'src_ids')!.type.tensorType.shape.dim[0] = { dimValue: '9223372036854775807' };
    });
    const report = analyzeModel(file);
    expect(report.model.inputs.find((i) => i.name === 'src_ids')!.shape[0]).toBeNull();
    for (const rule of ['window', 'strided', 'block-topk']) {
      const params = rule === 'block-topk' ? { block: 4, k: 1 } : rule === 'strided' ? { stride: 2, window: 8 } : { window: 4 };
      try {
        rewriteInMemory(file, [{ rule, params }]);
      } catch (e) {
        expect(e, String((e as Error).stack)).toBeInstanceOf(RuleError);
      }
    }
  });
});

describe('axes outside the rank', () => {
  // A hang is caught only from outside: the CLI runs in a child process with a time limit.
  const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');

  it('a KV-cache Concat with axis 2^31: analysis finishes (the layout walk wrote a 2^31-long sparse array and hung)', () => {
    const file = edited('gpt2-past-sdpa-ts-op17', (p) => {
      const n = p.graph.node.find((x) => x.name === '/m/transformer/h.0/attn/Concat_4')!;
      n.attribute = [{ name: 'axis', type: 2, i: 2 ** 31 } as never];
    });
    const r = spawnSync(process.execPath, [CLI, 'analyze', file, '--json'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.error, 'the analysis did not finish within 30 s').toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).sites.length + JSON.parse(r.stdout).unmatched.length).toBe(2);
  });
});

describe('raising an old opset', () => {
  it('a Softmax with axis 2^62 in an opset-12 model: the upgrade refuses it (it threw a RangeError writing the axis)', () => {
    const file = edited('timmstyle-vit-op12', (p) => {
      const n = p.graph.node.find((x) => x.name === '/blocks.1/Softmax')!;
      n.attribute = [{ name: 'axis', type: 2, i: '4611686018427387904' } as never];
    });
    const err = ruleError(() => rewriteInMemory(file, [{ rule: 'window', params: { window: 4 } }]));
    expect(err.message).toMatch(/^window: writes ONNX opset-13 nodes .*axis 4611686018427387904 outside its input's axes/);
  });
});
