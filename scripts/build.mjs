// Bundles every entry point with esbuild. Native and editor modules stay external:
// `vscode` is provided by the editor, onnxruntime-node ships a native binary that must be loaded from node_modules.
// Runs as `npm run build` and as the `prepare` script, so `npm ci` leaves a built dist/cli.js behind.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';

let build;
try {
  ({ build } = await import('esbuild'));
} catch (e) {
  if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
  // `npm ci --omit=dev` (or an interrupted install) leaves the bundler out; the tool cannot be built without it.
  console.error('build: esbuild is not installed; run `npm ci` (with the devDependencies) first');
  process.exit(1);
}

const node = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  external: ['vscode', 'onnxruntime-node'],
  logLevel: 'warning',
};

const entries = [
  { entryPoints: ['src/cli.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
  { entryPoints: ['bench/analyze.ts'], outfile: 'dist/bench/analyze.js' },
  { entryPoints: ['src/runtime/worker.ts'], outfile: 'dist/worker.js' },
  { entryPoints: ['bench/runtime.ts'], outfile: 'dist/bench/runtime.js' },
  { entryPoints: ['bench/rewrites.ts'], outfile: 'dist/bench/rewrites.js' },
  { entryPoints: ['bench/attention-ops.ts'], outfile: 'dist/bench/attention-ops.js' },
  { entryPoints: ['bench/rewrites-cpu.ts'], outfile: 'dist/bench/rewrites-cpu.js' },
  // The fuzz campaign (`npm run fuzz`) and the worker processes it runs mutants in.
  { entryPoints: ['fuzz/main.ts'], outfile: 'dist/fuzz/main.js' },
  { entryPoints: ['fuzz/worker.ts'], outfile: 'dist/fuzz/worker.js' },
  { entryPoints: ['bench/scale.ts'], outfile: 'dist/bench/scale.js' },
  { entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js' },
  // The extension's analysis/rewrite thread (worker_threads), so large models never hold the extension host.
  { entryPoints: ['src/extension/core-thread.ts'], outfile: 'dist/core-thread.js' },
];

// The dashboard runs in a webview (a browser page): one script and one stylesheet, loaded under a nonce CSP, and
// inlined as they are into exported HTML reports.
const browser = {
  bundle: true,
  platform: 'browser',
  target: 'chrome114',
  format: 'iife',
  sourcemap: false,
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
};
const webviewEntries = [
  { entryPoints: ['webview/main.ts'], outfile: 'dist/webview.js' },
  { entryPoints: ['webview/styles.css'], outfile: 'dist/webview.css' },
];

for (const entry of entries) {
  if (!existsSync(entry.entryPoints[0])) continue; // entries appear as the issues land
  await build({ ...node, ...entry });
}
// The MILP solver's WebAssembly binary, read next to the bundles (src/orchestrate/advisor/highs.ts).
mkdirSync('dist', { recursive: true });
copyFileSync('node_modules/highs/build/highs.wasm', 'dist/highs.wasm');
for (const entry of webviewEntries) {
  if (!existsSync(entry.entryPoints[0])) continue;
  await build({ ...browser, ...entry });
}
