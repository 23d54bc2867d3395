// Shared by the opset-upgrade tests: a small model at an old opset is saved, loaded back, raised to 13 and saved again,
// and both files run in onnxruntime on the same inputs. onnxruntime checks every node against the schema of the
// model's opset, so an attribute left where 13 wants an input fails the run instead of passing unnoticed.
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../src/analysis/ir/builder';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { upgradeOpset, type OpsetUpgrade } from '../../src/rewriters/opset/upgrade';
import { Rng } from '../../src/analysis/numeric/random';
import { runModel, type Feeds } from '../analysis/helpers/ort';

/** The IR version exporters wrote at each opset (the upgrade must raise it to 7 for 13). */
export const IR_OF_OPSET: Record<number, number> = { 9: 4, 10: 5, 11: 6, 12: 7 };

export function oldModel(opset: number): GraphBuilder {
  return GraphBuilder.create({ opsets: { '': opset }, irVersion: IR_OF_OPSET[opset] });
}

/** Deterministic float32 feeds: normal values (distinct, so TopK and Hardmax have no ties). */
export function randomFeeds(inputs: Record<string, number[]>, seed = 7): Feeds {
  const rng = new Rng(seed);
  const feeds: Feeds = {};
  for (const [name, dims] of Object.entries(inputs)) {
    const n = dims.reduce((a, b) => a * b, 1);
    feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: n }, () => rng.normal()), dims);
  }
  return feeds;
}

export interface Compared {
  upgrade: OpsetUpgrade;
  /** Largest |difference| over every output element (integer outputs included). */
  maxDiff: number;
  original: Record<string, ort.Tensor>;
  upgraded: Record<string, ort.Tensor>;
}

/** Saves `b`'s model, upgrades a fresh load of it to 13 and runs both on `feeds`. */
export async function compareUpgrade(b: GraphBuilder, feeds: Feeds, dir: string, tag: string): Promise<Compared> {
  const before = path.join(dir, `${tag}.onnx`);
  saveModel(b.finish(), before);
  const model = loadModel(before);
  const upgrade = upgradeOpset(model, 13);
  const after = path.join(dir, `${tag}-13.onnx`);
  saveModel(model, after);
  const original = await runModel(before, feeds);
  const upgraded = await runModel(after, feeds);
  let maxDiff = 0;
  for (const [name, t] of Object.entries(original)) {
    const u = upgraded[name];
    if (!u) throw new Error(`${tag}: the upgraded model has no output '${name}'`);
    if (JSON.stringify(u.dims) !== JSON.stringify(t.dims)) throw new Error(`${tag}: '${name}' is [${u.dims.join(', ')}], was [${t.dims.join(', ')}]`);
    const a = Array.from(t.data as ArrayLike<number | bigint>, Number);
    const c = Array.from(u.data as ArrayLike<number | bigint>, Number);
    for (let i = 0; i < a.length; i++) {
      const d = Number.isNaN(a[i]) && Number.isNaN(c[i]) ? 0 : Math.abs(a[i] - c[i]);
      maxDiff = Math.max(maxDiff, Number.isNaN(d) ? Infinity : d);
    }
  }
  return { upgrade, maxDiff, original, upgraded };
}
