// Turns an InputSource into the feeds of one session: tensors loaded from files or passed in, the rest synthesized from
// what the session says its inputs are, merged with the analysis' roles, vocabulary sizes, layouts and mask meanings:
// the caller's when it sends them, else the worker's own reading of the model file (input-analysis.ts).
import type * as ort from 'onnxruntime-node';
import type { InputInfo } from '../../analysis/report/types';
import { loadInputs } from '../inputs/load';
import { type InputSignature, mergeInputInfo } from '../inputs/roles';
import { type SynthesisOptions, synthesizeInputs } from '../inputs/synthesize';
import type { FedInputs, InputSource } from '../protocol';
import { type HostTensor, describeTensor, fromNumbers, isDtype, isFloat, toFloat64 } from '../tensor';
import { analyseInputs } from './input-analysis';
import type { OpenedSession } from './sessions';

export function signaturesOf(metadata: readonly ort.InferenceSession.ValueMetadata[], what: string): InputSignature[] {
  return metadata.map((m) => {
    if (!m.isTensor) throw new Error(`${what} ${m.name} is not a tensor (sequences and maps are not supported)`);
    return { name: m.name, dtype: m.type, shape: m.shape.map((d) => (typeof d === 'number' ? d : d === '' ? null : d)) };
  });
}

/** Without an analysis, a `logits` output's last dimension is the best available bound on token ids. */
function vocabFromOutputs(outputs: InputSignature[]): number | undefined {
  for (const o of outputs) {
    const last = o.shape[o.shape.length - 1];
    if (/logit/i.test(o.name) && typeof last === 'number' && last > 1) return last;
  }
  return undefined;
}

/** Integer data saved as int32 for an int64 input (or float64 for float32) is converted, with a warning. */
function coerce(name: string, t: HostTensor, declared: string, warnings: string[]): HostTensor {
  if (t.dtype === declared || !isDtype(declared)) return t;
  const bothInt = !isFloat(t.dtype) && t.dtype !== 'bool' && !isFloat(declared) && declared !== 'bool';
  const bothFloat = isFloat(t.dtype) && isFloat(declared);
  const boolish = (t.dtype === 'bool') !== (declared === 'bool') && !isFloat(t.dtype) && !isFloat(declared);
  if (!bothInt && !bothFloat && !boolish) {
    throw new Error(`input ${name}: given ${describeTensor(t)}, but the model takes ${declared}`);
  }
  warnings.push(`${name}: converted ${t.dtype} to ${declared}`);
  return fromNumbers(declared, t.dims, toFloat64(t), `input ${name}`);
}

export interface PreparedFeeds {
  tensors: Record<string, HostTensor>;
  fed: FedInputs;
  infos: InputInfo[];
}

export function prepareFeeds(opened: OpenedSession, source: InputSource | undefined, override: SynthesisOptions = {}): PreparedFeeds {
  const { session } = opened;
  const inputs = signaturesOf(session.inputMetadata, 'input');
  const outputs = signaturesOf(session.outputMetadata, 'output');
  const declared = Object.fromEntries(inputs.map((i) => [i.name, i.dtype]));
  const warnings: string[] = [];

  const given: Record<string, HostTensor> = {};
  if (source?.file) Object.assign(given, loadInputs(source.file, declared).tensors);
  if (source?.tensors) Object.assign(given, source.tensors);
  const unknown = Object.keys(given).filter((n) => !(n in declared));
  if (unknown.length > 0) {
    throw new Error(`inputs ${unknown.join(', ')} are not inputs of the model (it takes ${inputs.map((i) => i.name).join(', ')})`);
  }
  for (const [name, t] of Object.entries(given)) given[name] = coerce(name, t, declared[name], warnings);

  // Inputs to synthesize and no analysis from the caller: read the model file (cached per file version).
  let analysis = source?.infos;
  if (!analysis && inputs.some((i) => !(i.name in given))) {
    const own = analyseInputs(opened.model);
    analysis = own.infos;
    warnings.push(...own.warnings);
  }
  const infos = mergeInputInfo(inputs, analysis);

  const options: SynthesisOptions = { ...source?.synthesis, ...override };
  if (options.vocabSize === undefined && infos.some((i) => i.role === 'input_ids' && i.vocabSize === undefined)) {
    const v = vocabFromOutputs(outputs);
    if (v !== undefined) options.vocabSize = v;
  }
  const synth = synthesizeInputs(infos, options, given);
  warnings.push(...synth.warnings);
  const shapes: FedInputs['shapes'] = {};
  for (const [name, t] of Object.entries(synth.tensors)) shapes[name] = { dtype: t.dtype, dims: [...t.dims] };
  return {
    tensors: synth.tensors,
    infos,
    fed: {
      shapes,
      synthesized: inputs.map((i) => i.name).filter((n) => !(n in given)),
      shape: synth.shape,
      warnings,
    },
  };
}
