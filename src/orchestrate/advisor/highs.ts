// HiGHS, the MILP solver (the `highs` npm package: HiGHS compiled to WebAssembly), loaded once per process. Its
// CommonJS build is the one required: the ES-module build finds itself through import.meta.url, which the CommonJS
// bundles in dist/ do not have. The binary, highs.wasm, is located by this code for the loader: next to the bundle
// (scripts/build.mjs copies it to dist/), or in the package when this runs unbundled (tests).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Highs, default as HighsLoader } from 'highs';

let loaded: Promise<Highs> | undefined;

function wasmPath(): string {
  const here = typeof __dirname === 'string' ? __dirname : process.cwd();
  const names = ['highs.wasm', join('dist', 'highs.wasm'), join('node_modules', 'highs', 'build', 'highs.wasm')];
  for (let dir = here; ; dir = dirname(dir)) {
    for (const name of names) if (existsSync(join(dir, name))) return join(dir, name);
    if (dirname(dir) === dir) break;
  }
  throw new Error(`cannot find the MILP solver's highs.wasm from ${here}; run \`npm ci\` and \`npm run build\``);
}

export function highs(): Promise<Highs> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const load = require('highs') as typeof HighsLoader;
  const wasm = wasmPath();
  loaded ??= load({ locateFile: (file) => (file === 'highs.wasm' ? wasm : file) });
  return loaded;
}
