// Emitting ONNX the way the PyTorch TorchScript exporter (torch.onnx.export, dynamo=False, opset 17) writes it:
// node names scoped by module path ("/model/layers.0/self_attn/Reshape_1"), every small constant a Constant node of
// its own, sizes read at run time through Shape/Gather/Unsqueeze/Concat, and `expand` written with the
// Reshape/ConstantOfShape/Equal/Where idiom that replaces -1 by 1. Synthetic models built from these look like real
// exports to the analysis, so the detector and the benchmark see what users bring, not a tidied graph.
import { attr, type Attr, type GraphBuilder, type Input } from '../analysis/ir/builder';
import type { Value } from '../analysis/ir/graph';
import { f32, i64 } from '../analysis/ir/tensor-data';

export const INT64_MAX = 2n ** 63n - 1n;
const BOOL = 9;
const FLOAT = 1;
const INT64 = 7;

export class TorchScriptWriter {
  private prefix = '';

  constructor(readonly b: GraphBuilder) {}

  /** Runs `body` with node names under `scope` (appended to the current one), e.g. "/model/layers.0". */
  scoped<T>(scope: string, body: () => T): T {
    const outer = this.prefix;
    this.prefix = `${outer}/${scope}`;
    try {
      return body();
    } finally {
      this.prefix = outer;
    }
  }

  op(opType: string, inputs: readonly Input[], attrs?: Record<string, Attr>, output?: string): Value {
    return this.b.op(opType, inputs, { name: `${this.prefix}/${opType}`, attrs, output });
  }

  constI64(values: readonly (number | bigint)[], scalar = false): Value {
    return this.b.constant(scalar ? [] : [values.length], i64(values), { name: `${this.prefix}/Constant` });
  }

  constF32(value: number): Value {
    return this.b.constant([], f32([value]), { name: `${this.prefix}/Constant` });
  }

  constTensor(dims: readonly number[], values: Float32Array): Value {
    return this.b.constant(dims, f32(values), { name: `${this.prefix}/Constant` });
  }

  /** x.shape[i] as an int64 scalar: Shape, then Gather with a scalar index. */
  dim(x: Value, i: number): Value {
    return this.op('Gather', [this.op('Shape', [x]), this.constI64([i], true)], { axis: attr.int(0) });
  }

  unsqueeze(x: Value, axes: readonly number[]): Value {
    return this.op('Unsqueeze', [x, this.constI64(axes)]);
  }

  /** A 1-D shape tensor from scalars (unsqueezed) and constant pieces. */
  shape(parts: readonly (Value | number)[]): Value {
    const pieces = parts.map((p) => (typeof p === 'number' ? this.constI64([p]) : this.unsqueeze(p, [0])));
    return this.op('Concat', pieces, { axis: attr.int(0) });
  }

  reshape(x: Value, shape: Value): Value {
    return this.op('Reshape', [x, shape], { allowzero: attr.int(0) });
  }

  transpose(x: Value, perm: readonly number[]): Value {
    return this.op('Transpose', [x], { perm: attr.ints(perm) });
  }

  cast(x: Value, to: 'float' | 'bool' | 'int64'): Value {
    return this.op('Cast', [x], { to: attr.int(to === 'float' ? FLOAT : to === 'bool' ? BOOL : INT64) });
  }

  /**
   * `x.expand(shape)`: torch's -1 ("keep this size") has no ONNX equivalent, so the exporter turns every -1 of the
   * shape into 1 (which Expand broadcasts the same way) with Equal/Where before the Expand.
   */
  expand(x: Value, shape: Value): Value {
    const flat = this.reshape(shape, this.constI64([-1]));
    const ones = this.op('ConstantOfShape', [this.op('Shape', [flat])], { value: attr.tensor([1], i64([1])) });
    const minusOnes = this.op('Mul', [ones, this.constI64([-1], true)]);
    const isMinusOne = this.op('Equal', [flat, minusOnes]);
    return this.op('Expand', [x, this.op('Where', [isMinusOne, ones, flat])]);
  }
}
