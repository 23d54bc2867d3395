// Where the benchmarks find a shared fixture: dist/bench/*.js runs from the repository, and the shared fixtures sit
// beside it (../shared/fixtures).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export function findFixture(name: string): string {
  for (const base of [process.cwd(), resolve(__dirname, '..', '..')]) {
    const p = join(base, '..', 'shared', 'fixtures', name, 'model.onnx');
    if (existsSync(p)) return p;
  }
  throw new Error(`cannot find ../shared/fixtures/${name}/model.onnx`);
}
