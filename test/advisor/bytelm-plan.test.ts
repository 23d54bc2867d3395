// The advisor's acceptance check on the trained byte-level model (issue 10): at 512 tokens, the plan at the density of
// a uniform 64-key window must close at least half of the gap between that window (1.862 bits per byte) and dense
// attention (1.761), measured by eval's own score on eval.bytes: at most 1.812. Calibration windows come from the gaps
// between the 64 evaluation windows (calibration.ts), so the plan never saw a byte it is scored on.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { advise } from '../../src/orchestrate/advisor/advisor';
import { choiceKeys, denseKeys } from '../../src/orchestrate/advisor/candidates';
import type { RuntimeClient } from '../../src/runtime/client';
import { fixture, startClient } from '../runtime/helpers';

let client: RuntimeClient;
let close: () => Promise<void>;
beforeAll(async () => {
  ({ client, close } = await startClient());
});
afterAll(async () => close());

it('plans the trained byte model at the density of a 64-key window to at most 1.812 bits per byte', async () => {
  const f = fixture('bytelm-llama-trained');
  const budget = choiceKeys({ kind: 'window', window: 64 }, true, 512, 0, 8) / denseKeys(true, 512);
  const r = await advise(client, f.model, {
    data: { kind: 'tokens', file: join(f.dir, 'eval.bytes'), seq: 512, evalWindows: 64, calibrationWindows: 4 },
    budgets: [budget],
    baselines: false,
    reference: false,
  });
  const [point] = r.frontier;
  expect(point.density).toBeLessThanOrEqual(budget + 1e-9);
  expect(point.evaluation.metric).toBe('bits per token');
  expect(point.evaluation.value).toBeLessThanOrEqual(1.812);
  // Every head of the four sites has a choice, and the choices are not all the uniform window.
  expect(Object.values(point.plan.sites).map((h) => h.length)).toEqual([8, 8, 8, 8]);
  expect(Object.keys(point.mix).length).toBeGreaterThan(1);
}, 600_000);
