// Access to the shared fixtures (../shared/fixtures next to the repository), read in place, never copied.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'shared', 'fixtures');

export interface FixtureTruth {
  blocks: number;
  heads: number;
  kv_heads: number;
  head_dim: number;
  causal: boolean | null;
  kinds: ('self' | 'cross')[];
  causal_per_block?: boolean[];
  kv_cache?: boolean;
  fused_op?: string;
}

export interface FixtureTensor {
  name: string;
  dtype: string;
  shape: number[];
  file: string;
}

export interface FixtureManifest {
  model: string;
  truth: FixtureTruth;
  inputs: FixtureTensor[];
  outputs: FixtureTensor[];
  oracles?: Record<string, { outputs: FixtureTensor[]; [k: string]: unknown }>;
  eval?: Record<string, unknown>;
}

export function fixtureNames(): string[] {
  return fs
    .readdirSync(FIXTURES)
    .filter((d) => fs.existsSync(path.join(FIXTURES, d, 'manifest.json')))
    .sort();
}

export function fixture(name: string): { dir: string; model: string; manifest: FixtureManifest } {
  const dir = path.join(FIXTURES, name);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as FixtureManifest;
  return { dir, model: path.join(dir, manifest.model ?? 'model.onnx'), manifest };
}
