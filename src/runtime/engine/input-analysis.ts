// When a caller sends no analysis of the model's inputs, the worker reads them off the model file itself: input roles
// guessed from names alone cannot tell a [sequence, batch] input from a [batch, sequence] one, nor a padding mask
// whose true means "ignore this key" from one whose true means "attend", and a wrong guess feeds a different model
// (or one whose every key is masked, which returns NaN).
//
// Only the inputs are described (load, shapes, attention sites, inputs), and the result is kept per file version so
// that repeated runs on one model read it once.
import { statSync } from 'node:fs';
import { detectAttention } from '../../analysis/attention/detect';
import { describeInputs } from '../../analysis/inputs';
import { ShapeInfo } from '../../analysis/ir/shapes';
import { loadModel } from '../../analysis/ir/load';
import type { InputInfo } from '../../analysis/report/types';

export interface InputAnalysis {
  /** Undefined when the model could not be analysed; `warnings` then says why. */
  infos?: InputInfo[];
  warnings: string[];
}

const cache = new Map<string, InputAnalysis>();
const CAPACITY = 8;

export function analyseInputs(model: string): InputAnalysis {
  let key = model;
  try {
    const st = statSync(model);
    key = JSON.stringify([model, st.size, st.mtimeMs]);
  } catch {
    // The session opened it; a file gone since is reported by the analysis below.
  }
  const hit = cache.get(key);
  if (hit) return hit;
  const result = analyse(model);
  if (cache.size >= CAPACITY) cache.delete(cache.keys().next().value as string);
  cache.set(key, result);
  return result;
}

function analyse(model: string): InputAnalysis {
  try {
    const loaded = loadModel(model);
    const shapes = new ShapeInfo(loaded.graph);
    const { sites } = detectAttention(loaded.graph, shapes);
    const warnings: string[] = [];
    const infos = describeInputs(loaded.graph, shapes, sites, warnings);
    return { infos, warnings };
  } catch (e) {
    const reason = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return { warnings: [`the model's inputs could not be analysed (${reason}); their roles and layouts are guessed from their names`] };
  }
}
