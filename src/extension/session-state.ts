// The snapshot a model's session starts from: empty for a model opened now, or one a dashboard kept (VS Code restored
// the panel), re-checked as a page's message would be, since the page wrote it.
import * as path from 'node:path';
import type { SessionSettings, SessionSnapshot, Variant } from '../protocol';
import { checkSteps } from '../shared/rule-steps';

/** What a snapshot holds besides the analysis and the variants: results, none yet (older saved states lack some). */
const EMPTY_RESULTS = { speed: null, accuracy: null, maps: null, calibration: null, evaluation: null, decode: null, generation: null, importance: null, advisor: null } as const;

export function startingSnapshot(modelPath: string, settings: SessionSettings, restored?: SessionSnapshot): SessionSnapshot {
  const state: SessionSnapshot = restored && restored.modelPath === modelPath
    ? { ...EMPTY_RESULTS, ...restored, settings }
    : {
        modelPath,
        modelName: path.basename(modelPath),
        report: null,
        analysisError: null,
        rules: [],
        draft: null,
        variants: [],
        ...EMPTY_RESULTS,
        exports: [],
        settings,
      };
  // A restored snapshot's report is re-made from the file: it may have changed while VS Code was closed. Its variants
  // come from a page, so they are checked like its messages (an older version kept command-line flags).
  if (restored) {
    state.report = null;
    // Re-read too: the file may have been fixed while the window was closed.
    state.analysisError = null;
    state.draft = null;
    state.variants = (restored.variants ?? []).filter((v) => checkSteps(v.steps) !== null);
  }
  return state;
}

/** The first free id of the form v1, v2, ... */
export function nextVariantId(variants: Variant[]): string {
  const used = new Set(variants.map((v) => v.id));
  for (let i = 1; ; i++) if (!used.has(`v${i}`)) return `v${i}`;
}
