// Where a synthetic model's weights come from: random numbers embedded in the model (small configs that run), or
// references into one sparse data file (large configs that are only analysed: a 7B-shaped model's 26 GB of float32
// weights take no disk blocks and no time, because the file is sized with ftruncate and never written).
import * as fs from 'node:fs';
import type { GraphBuilder } from '../analysis/ir/builder';
import type { Value } from '../analysis/ir/graph';
import { f32 } from '../analysis/ir/tensor-data';
import { Rng } from '../analysis/numeric/random';

/** How a weight is initialised when it gets values: `normal` ~ N(0, std²), `ones` ~ 1 + N(0, std²) (norm scales). */
export type WeightInit = 'normal' | 'ones';

export interface WeightSource {
  add(b: GraphBuilder, name: string, dims: readonly number[], init: WeightInit): Value;
  /** Called once every weight is added. */
  finish(): void;
}

/** Seeded random float32 weights, embedded. Norm scales are near 1 rather than exactly 1, so a test that swaps them
 *  or skips one sees a difference. */
export class RandomWeights implements WeightSource {
  private readonly rng: Rng;

  constructor(seed: number, private readonly std = 0.02) {
    this.rng = new Rng(seed);
  }

  add(b: GraphBuilder, name: string, dims: readonly number[], init: WeightInit): Value {
    const n = dims.reduce((a, c) => a * c, 1);
    const data = new Float32Array(n);
    const base = init === 'ones' ? 1 : 0;
    const std = init === 'ones' ? 0.1 : this.std;
    for (let i = 0; i < n; i++) data[i] = base + std * this.rng.normal();
    return b.initializer(name, dims, f32(data));
  }

  finish(): void {}
}

const ALIGN = 64;

/**
 * All weights as external data in one file, laid out back to back (64-byte aligned, like onnx's own writer). The file
 * holds zeros: it is created with ftruncate, so it is sparse and creating it costs nothing. It must not exist yet, so
 * a generator never truncates someone's real weights.
 */
export class SparseFileWeights implements WeightSource {
  private size = 0;

  constructor(readonly file: string) {}

  add(b: GraphBuilder, name: string, dims: readonly number[]): Value {
    const offset = Math.ceil(this.size / ALIGN) * ALIGN;
    const v = b.externalInitializer(name, 'float32', dims, { file: this.file, offset });
    this.size = offset + v.initializer!.byteLength;
    return v;
  }

  /** Bytes the data file has (or will have, before `finish`). */
  get bytes(): number {
    return this.size;
  }

  finish(): void {
    const fd = fs.openSync(this.file, 'wx');
    try {
      fs.ftruncateSync(fd, this.size);
    } finally {
      fs.closeSync(fd);
    }
  }
}
