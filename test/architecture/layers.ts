// The project's layers and the directions imports may take between them, and a checker that lists every import
// breaking them. Imports run one way (I/O → IR → detect → rewrite → run → report → webview): the core (analysis,
// rewriters) never sees vscode or onnxruntime, the runtime may use the core but not the reverse, and the extension and
// the webview meet only in the shared layer. Kept apart from the test so the checker itself can be tested on made-up
// files (a checker that never reports anything would pass every tree).
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

export type Layer =
  | 'analysis' | 'rewriters' | 'runtime' | 'synth' | 'orchestrate' | 'cli' | 'shared' | 'extension' | 'webview' | 'bench';

/** Which layer a file belongs to, by path prefix (repository-relative, '/'-separated). The first match wins. */
export const LAYER_PATHS: [prefix: string, layer: Layer][] = [
  ['src/analysis/', 'analysis'],
  ['src/rewriters/', 'rewriters'],
  ['src/runtime/', 'runtime'],
  ['src/synth/', 'synth'],
  ['src/orchestrate/', 'orchestrate'],
  ['src/cli/', 'cli'],
  ['src/cli.ts', 'cli'],
  // The host↔dashboard message contract is what both sides share, so it belongs to the shared layer.
  ['src/shared/', 'shared'],
  ['src/protocol.ts', 'shared'],
  ['src/extension/', 'extension'],
  ['webview/', 'webview'],
  ['bench/', 'bench'],
];

/**
 * The layers each layer may import besides its own files. The shared layer describes core results (reports, maps,
 * measurements) to the dashboard, so it sits above the core and the runtime and below everything that shows them.
 */
export const ALLOWED: Record<Layer, Layer[]> = {
  analysis: [],
  rewriters: ['analysis'],
  runtime: ['analysis', 'rewriters'],
  synth: ['analysis'],
  // Work that needs both a rewrite and a run (head importance scoring) lives above both.
  orchestrate: ['analysis', 'rewriters', 'runtime'],
  shared: ['analysis', 'rewriters', 'runtime'],
  cli: ['analysis', 'rewriters', 'runtime', 'synth', 'orchestrate', 'shared'],
  extension: ['analysis', 'rewriters', 'runtime', 'synth', 'orchestrate', 'cli', 'shared'],
  webview: ['shared'],
  bench: ['analysis', 'rewriters', 'runtime', 'synth', 'orchestrate', 'cli', 'shared'],
};

/** Packages (not relative paths) that only some layers may import; any other package is open to all but the webview. */
export const PACKAGE_OWNERS: Record<string, Layer[]> = {
  vscode: ['extension'],
  // The product runs onnxruntime only in the runtime's worker; a benchmark may time one operator in process
  // (bench/attention-ops.ts), since no editor or user model is at stake there.
  'onnxruntime-node': ['runtime', 'bench'],
  'onnxruntime-common': ['runtime'],
};

/** The webview is a browser page: it may import these packages and nothing else (no Node built-ins, no core libraries). */
export const WEBVIEW_PACKAGES = ['chart.js', '@vscode/webview-ui-toolkit'];

export interface ImportSite {
  file: string;
  line: number;
  specifier: string;
}

export interface Violation extends ImportSite {
  why: string;
}

/** The layer of a file, or of a module path as an import names it (no `.ts`; a folder stands for its index.ts). */
export function layerOf(file: string): Layer | undefined {
  const matches = (prefix: string) =>
    prefix.endsWith('/') ? file.startsWith(prefix) || `${file}/` === prefix : file === prefix || `${file}.ts` === prefix;
  return LAYER_PATHS.find(([prefix]) => matches(prefix))?.[1];
}

/** Every static import, `export ... from` and dynamic `import()` of a file, with its 1-based line. */
export function importsOf(file: string, text: string): ImportSite[] {
  const info = ts.preProcessFile(text, true, true);
  const lineOf = (pos: number) => text.slice(0, pos).split('\n').length;
  return info.importedFiles.map((f) => ({ file, line: lineOf(f.pos), specifier: f.fileName }));
}

/** The repository-relative module path a relative specifier names. */
export function resolveRelative(from: string, specifier: string): string {
  return path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
}

/** The package a bare specifier names: `@scope/name` or `name`, without any subpath. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

export function violationsOf(site: ImportSite): Violation[] {
  const from = layerOf(site.file);
  if (!from) return [{ ...site, why: `${site.file} belongs to no layer (add it to LAYER_PATHS)` }];
  const spec = site.specifier;
  if (spec.startsWith('.')) {
    const target = resolveRelative(site.file, spec);
    const to = layerOf(target);
    if (!to) return [{ ...site, why: `imports ${target}, which belongs to no layer` }];
    if (to === from || ALLOWED[from].includes(to)) return [];
    return [{ ...site, why: `${from} may not import ${to} (${target})` }];
  }
  const pkg = packageOf(spec);
  const owners = PACKAGE_OWNERS[pkg];
  if (owners && !owners.includes(from)) return [{ ...site, why: `only ${owners.join(', ')} may import '${pkg}'` }];
  if (from === 'webview' && !WEBVIEW_PACKAGES.includes(pkg)) return [{ ...site, why: `the webview may not import '${pkg}'` }];
  return [];
}

/**
 * Cycles between groups of files (layers, or folders inside one) in the imports actually present, each with one
 * import site per edge as evidence.
 */
export function cycles(sites: ImportSite[], groupOf: (file: string) => string | undefined): string[] {
  const edges = new Map<string, Map<string, ImportSite>>();
  for (const s of sites) {
    if (!s.specifier.startsWith('.')) continue;
    const from = groupOf(s.file);
    const to = groupOf(resolveRelative(s.file, s.specifier));
    if (!from || !to || from === to) continue;
    if (!edges.has(from)) edges.set(from, new Map());
    if (!edges.get(from)!.has(to)) edges.get(from)!.set(to, s);
  }
  const found: string[] = [];
  // A simple cycle is followed only from its smallest group name, so each is reported once.
  const walk = (trail: string[]) => {
    const at = trail[trail.length - 1];
    for (const next of edges.get(at)?.keys() ?? []) {
      if (next === trail[0]) {
        const ring = [...trail, next];
        const evidence = ring.slice(1).map((to, i) => {
          const s = edges.get(ring[i])!.get(to)!;
          return `${ring[i]} -> ${to} at ${s.file}:${s.line}`;
        });
        found.push(evidence.join('; '));
      } else if (next > trail[0] && !trail.includes(next)) {
        walk([...trail, next]);
      }
    }
  };
  for (const start of [...edges.keys()].sort()) walk([start]);
  return found;
}

/** The .ts files below the given folders, repository-relative. */
export function sourceFiles(root: string, folders: string[]): string[] {
  const out: string[] = [];
  const visit = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = `${rel}/${e.name}`;
      if (e.isDirectory()) visit(child);
      else if (e.name.endsWith('.ts')) out.push(child);
    }
  };
  for (const f of folders) if (fs.existsSync(path.join(root, f))) visit(f);
  return out.sort();
}
