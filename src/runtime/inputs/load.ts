// Loads model inputs from files. Accepted forms of `--inputs`:
//   - a fixture manifest (`manifest.json`: { inputs: [{ name, dtype, shape, file }] }, files raw little-endian, C order),
//     or a folder holding one;
//   - a folder of per-input files named after the inputs: `<name>.npy` or `<name>.json`;
//   - one `.json` file: a manifest-like { inputs: [{ name, dtype, shape, data }] }, or { "<name>": spec, ... } where a
//     spec is { dtype, shape, data } or a nested array of numbers;
//   - one `.npy` file for a single-input model;
//   - a comma-separated list `name=path.npy,name2=path.json`.
// Nested arrays take the dtype the model declares for that input, so `[[1, 2, 3]]` works for an int64 input.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { type Dtype, type HostTensor, fromBytes, fromNumbers, isDtype } from '../tensor';
import { parseNpy } from './npy';

export interface LoadedInputs {
  tensors: Record<string, HostTensor>;
  /** Reference outputs when the file was a fixture manifest that has them. */
  expectedOutputs?: Record<string, HostTensor>;
}

interface ManifestEntry {
  name: string;
  dtype: string;
  shape: number[];
  file?: string;
  data?: unknown;
}

function readManifestEntries(entries: unknown, dir: string, what: string): Record<string, HostTensor> {
  if (!Array.isArray(entries)) throw new Error(`${what}: expected an array of { name, dtype, shape, file }`);
  const out: Record<string, HostTensor> = {};
  for (const raw of entries as ManifestEntry[]) {
    if (typeof raw?.name !== 'string' || !isDtype(raw.dtype) || !Array.isArray(raw.shape)) {
      throw new Error(`${what}: entry ${JSON.stringify(raw).slice(0, 120)} needs name, a known dtype and shape`);
    }
    const where = `${what}: ${raw.name}`;
    if (typeof raw.file === 'string') {
      const path = resolve(dir, raw.file);
      if (!existsSync(path)) throw new Error(`${where}: file ${path} does not exist`);
      const buf = readFileSync(path);
      out[raw.name] = fromBytes(raw.dtype, new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), raw.shape, where);
    } else if (raw.data !== undefined) {
      out[raw.name] = fromNumbers(raw.dtype, raw.shape, flatten(raw.data, where), where);
    } else {
      throw new Error(`${where}: needs "file" or "data"`);
    }
  }
  return out;
}

export function loadManifest(path: string): LoadedInputs {
  const json = parseJsonFile(path);
  if (typeof json !== 'object' || json === null || !('inputs' in json)) throw new Error(`${path}: no "inputs" array`);
  const m = json as { inputs: unknown; outputs?: unknown };
  const dir = dirname(path);
  const result: LoadedInputs = { tensors: readManifestEntries(m.inputs, dir, path) };
  if (m.outputs !== undefined) result.expectedOutputs = readManifestEntries(m.outputs, dir, `${path} outputs`);
  return result;
}

function parseJsonFile(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message.replace(/\s+/g, ' ')})`);
  }
}

function flatten(data: unknown, what: string): number[] {
  const out: number[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'number') out.push(v);
    else if (typeof v === 'boolean') out.push(v ? 1 : 0);
    else throw new Error(`${what}: data holds ${JSON.stringify(v)}, expected numbers`);
  };
  walk(data);
  return out;
}

function nestedShape(data: unknown): number[] {
  const dims: number[] = [];
  let v = data;
  while (Array.isArray(v)) {
    dims.push(v.length);
    v = v[0];
  }
  return dims;
}

/** One input given as JSON: { dtype, shape, data } or a nested array (dtype from the model). */
function tensorFromJson(value: unknown, declared: Dtype | undefined, what: string): HostTensor {
  if (Array.isArray(value)) {
    if (!declared) throw new Error(`${what}: a bare array needs the model's dtype for this input, which is unknown`);
    return fromNumbers(declared, nestedShape(value), flatten(value, what), what);
  }
  if (typeof value === 'object' && value !== null && 'data' in value) {
    const v = value as { dtype?: string; shape?: number[]; data: unknown };
    const dtype = v.dtype ?? declared;
    if (!dtype || !isDtype(dtype)) throw new Error(`${what}: unknown dtype ${String(v.dtype)}`);
    const shape = v.shape ?? nestedShape(v.data);
    return fromNumbers(dtype, shape, flatten(v.data, what), what);
  }
  throw new Error(`${what}: expected { dtype, shape, data } or a nested array`);
}

function loadOneFile(path: string, declared: Dtype | undefined, what: string): HostTensor {
  if (!existsSync(path)) throw new Error(`${what}: ${path} does not exist`);
  const ext = extname(path).toLowerCase();
  if (ext === '.npy') {
    const buf = readFileSync(path);
    return parseNpy(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path);
  }
  if (ext === '.json') return tensorFromJson(parseJsonFile(path), declared, path);
  throw new Error(`${what}: ${path} is neither .npy nor .json`);
}

/**
 * @param declared the model's inputs (name -> dtype), used to name a lone .npy and to type bare JSON arrays.
 */
export function loadInputs(spec: string, declared: Record<string, string> = {}): LoadedInputs {
  const dtypeOf = (name: string): Dtype | undefined => {
    const d = declared[name];
    return d && isDtype(d) ? d : undefined;
  };
  const names = Object.keys(declared);

  if (spec.includes('=') && !existsSync(spec)) {
    const tensors: Record<string, HostTensor> = {};
    for (const part of spec.split(',')) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw new Error(`--inputs: "${part}" is not name=path`);
      const name = part.slice(0, eq);
      tensors[name] = loadOneFile(resolve(part.slice(eq + 1)), dtypeOf(name), `input ${name}`);
    }
    return { tensors };
  }

  const path = resolve(spec);
  if (!existsSync(path)) throw new Error(`--inputs: ${path} does not exist`);
  if (statSync(path).isDirectory()) {
    const manifest = join(path, 'manifest.json');
    if (existsSync(manifest)) return loadManifest(manifest);
    const tensors: Record<string, HostTensor> = {};
    for (const file of readdirSync(path)) {
      const ext = extname(file).toLowerCase();
      if (ext !== '.npy' && ext !== '.json') continue;
      const name = basename(file, extname(file));
      tensors[name] = loadOneFile(join(path, file), dtypeOf(name), `input ${name}`);
    }
    if (Object.keys(tensors).length === 0) throw new Error(`--inputs: ${path} holds no manifest.json, .npy or .json files`);
    return { tensors };
  }

  const ext = extname(path).toLowerCase();
  if (ext === '.npy') {
    if (names.length !== 1) {
      throw new Error(`--inputs: a single .npy fits only a one-input model; this one has ${names.length} (${names.join(', ')}); use name=file.npy,...`);
    }
    return { tensors: { [names[0]]: loadOneFile(path, dtypeOf(names[0]), `input ${names[0]}`) } };
  }
  if (ext === '.json') {
    const json = parseJsonFile(path);
    if (typeof json === 'object' && json !== null && Array.isArray((json as { inputs?: unknown }).inputs)) return loadManifest(path);
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      if (names.length === 1) return { tensors: { [names[0]]: tensorFromJson(json, dtypeOf(names[0]), path) } };
      throw new Error(`${path}: expected an object keyed by input name`);
    }
    const tensors: Record<string, HostTensor> = {};
    for (const [name, value] of Object.entries(json)) tensors[name] = tensorFromJson(value, dtypeOf(name), `${path}: ${name}`);
    return { tensors };
  }
  throw new Error(`--inputs: ${path} is not a manifest, folder, .npy or .json`);
}
