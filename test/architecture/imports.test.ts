// Guards the one-way imports between the project's layers (test/architecture/layers.ts): every violation is listed as
// file:line with the rule it breaks, so a failure says exactly which import to move.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALLOWED, type ImportSite, cycles, importsOf, layerOf, sourceFiles, violationsOf } from './layers';

const ROOT = path.resolve(__dirname, '../..');
const FILES = sourceFiles(ROOT, ['src', 'webview', 'bench']);
const SITES: ImportSite[] = FILES.flatMap((f) => importsOf(f, fs.readFileSync(path.join(ROOT, f), 'utf8')));

const listed = (lines: string[]) => lines.join('\n');

/**
 * Imports known to break the rules whose fix is under way elsewhere, as `file 'specifier'`. Each must still be present
 * (a stale entry fails), so the list only ever shrinks.
 */
const PENDING = new Set<string>([]);
const pending = (s: ImportSite) => PENDING.has(`${s.file} '${s.specifier}'`);

/** The folder directly below src/analysis a file is in ('src/analysis' itself for the files at its root). */
function analysisFolder(file: string): string | undefined {
  const m = /^src\/analysis\/(?:([^/]+)\/)?/.exec(file);
  if (!m) return undefined;
  return m[1] ? `src/analysis/${m[1]}` : 'src/analysis';
}

describe('import layering', () => {
  it('finds the source files and their imports', () => {
    expect(FILES).toContain('src/analysis/analyze.ts');
    expect(FILES).toContain('webview/main.ts');
    expect(SITES.length).toBeGreaterThan(FILES.length);
  });

  it('imports only in the allowed directions', () => {
    const violations = SITES.filter((s) => !pending(s)).flatMap(violationsOf).map((v) => `${v.file}:${v.line} '${v.specifier}': ${v.why}`);
    expect(listed(violations)).toBe('');
  });

  it('lists as pending only imports that are still there and still break the rules', () => {
    const still = new Set(SITES.filter((s) => pending(s) && violationsOf(s).length > 0).map((s) => `${s.file} '${s.specifier}'`));
    expect([...PENDING].filter((p) => !still.has(p))).toEqual([]);
  });

  it('has no import cycles between layers', () => {
    expect(listed(cycles(SITES.filter((s) => !pending(s)), layerOf))).toBe('');
  });

  it('has no import cycles between the analysis folders (onnx I/O below the IR, the IR below detection)', () => {
    expect(listed(cycles(SITES, analysisFolder))).toBe('');
  });

  it('allows no cycle in the rules themselves', () => {
    expect(cycles(
      Object.entries(ALLOWED).flatMap(([from, tos]) => tos.map((to) => ({ file: `${from}/x.ts`, line: 1, specifier: `../${to}/x` }))),
      (f) => f.split('/')[0],
    )).toEqual([]);
  });
});

describe('import layering checker', () => {
  const site = (file: string, specifier: string, line = 3): ImportSite => ({ file, line, specifier });

  it('reports a core file importing the runtime, vscode or onnxruntime', () => {
    expect(violationsOf(site('src/rewriters/prune/x.ts', '../../runtime/client'))).toEqual([
      expect.objectContaining({ file: 'src/rewriters/prune/x.ts', line: 3, why: 'rewriters may not import runtime (src/runtime/client)' }),
    ]);
    expect(violationsOf(site('src/analysis/x.ts', 'vscode'))[0].why).toBe("only extension may import 'vscode'");
    expect(violationsOf(site('src/analysis/x.ts', 'onnxruntime-node'))[0].why).toBe("only runtime, bench may import 'onnxruntime-node'");
    expect(violationsOf(site('src/runtime/x.ts', 'onnxruntime-node'))).toEqual([]);
  });

  it('keeps the webview and the extension apart except through the shared layer', () => {
    expect(violationsOf(site('webview/host.ts', '../src/extension/report-file'))[0].why).toBe('webview may not import extension (src/extension/report-file)');
    expect(violationsOf(site('src/extension/dashboard.ts', '../../webview/store'))[0].why).toBe('extension may not import webview (webview/store)');
    expect(violationsOf(site('webview/views/x.ts', '../../src/protocol'))).toEqual([]);
    expect(violationsOf(site('webview/x.ts', 'node:fs'))[0].why).toBe("the webview may not import 'node:fs'");
    expect(violationsOf(site('webview/x.ts', '@vscode/webview-ui-toolkit/dist/toolkit'))).toEqual([]);
  });

  it('reports files outside every layer, and knows a folder import or a file at the top of src', () => {
    expect(violationsOf(site('src/elsewhere/x.ts', './y'))[0].why).toMatch(/belongs to no layer/);
    expect(violationsOf(site('src/runtime/x.ts', '../analysis'))).toEqual([]);
    expect(violationsOf(site('src/cli.ts', './protocol'))).toEqual([]);
  });

  it('finds static, re-exported and dynamic imports with their lines', () => {
    const text = "import type { A } from './a';\nexport * from '../b';\n\nconst c = await import('./c');\n";
    expect(importsOf('src/x.ts', text)).toEqual([site('src/x.ts', './a', 1), site('src/x.ts', '../b', 2), site('src/x.ts', './c', 4)]);
  });

  it('finds a cycle with one import of each edge', () => {
    const sites = [site('src/analysis/onnx/load.ts', '../ir/graph', 10), site('src/analysis/ir/graph.ts', '../onnx/tensor', 4)];
    expect(cycles(sites, analysisFolder)).toEqual([
      'src/analysis/ir -> src/analysis/onnx at src/analysis/ir/graph.ts:4; src/analysis/onnx -> src/analysis/ir at src/analysis/onnx/load.ts:10',
    ]);
    expect(cycles(sites.slice(1), analysisFolder)).toEqual([]);
  });
});

