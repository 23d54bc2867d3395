// The dashboard's calibration data: a file chosen in the dashboard (or the attentionLens.calibrationInputs setting),
// read by the core thread (text is tokenised there, off the host's event loop) and kept until the file changes, and
// the lengths the runs use when the person did not choose one. No `vscode` here.
import { statSync } from 'node:fs';
import type { AnalysisReport } from '../analysis/report/types';
import type { CoreClient } from '../cli/core-client';
import type { CalibrationInfo } from '../protocol';
import type { Calibration } from '../runtime/inputs/calibration';
import { defaultLength, type DefaultLength } from '../shared/lengths';

export class CalibrationFiles {
  private cached: { key: string; calibration: Promise<Calibration> } | null = null;

  constructor(private readonly core: CoreClient, private readonly modelPath: string) {}

  /** The file read for this model; read again only when its size or time changed. */
  read(file: string, report: AnalysisReport, signal?: AbortSignal): Promise<Calibration> {
    let key = file;
    try {
      const st = statSync(file);
      key = JSON.stringify([file, st.size, st.mtimeMs]);
    } catch {
      // A file that is gone is reported by the read below, in its own words.
    }
    if (this.cached?.key !== key) {
      const calibration = this.core.request({ type: 'calibration', file, model: this.modelPath, infos: report.model.inputs }, signal);
      calibration.catch(() => {
        if (this.cached?.calibration === calibration) this.cached = null;
      });
      this.cached = { key, calibration };
    }
    return this.cached.calibration;
  }
}

export function calibrationInfo(c: Calibration, fromSetting: boolean): CalibrationInfo {
  return { file: c.file, kind: c.kind, how: c.how, tokens: c.ids ? c.ids.length : null, fromSetting };
}

/** Largest map a dashboard is sent: heads × queries × keys probabilities (see runs.ts). */
export const MAX_MAP_VALUES = 1 << 20;

/**
 * The tokens of a map when nobody chose: the model's own length (or 512), within what a dashboard can draw for this
 * many heads, rounded down to a multiple of 32; and why, for the screen.
 */
export function mapsLength(report: AnalysisReport, heads: number, setting: number): DefaultLength {
  const own = defaultLength(report.model);
  if (setting > 0) {
    const seq = Math.min(setting, report.model.maxPositions ?? Infinity);
    return { seq, reason: `${seq} tokens (attentionLens.maps.sequenceLength)` };
  }
  const fits = Math.floor(Math.sqrt(MAX_MAP_VALUES / Math.max(1, heads)) / 32) * 32;
  if (fits >= own.seq) return own;
  return { seq: fits, reason: `${fits} tokens: the largest map of ${heads} heads a dashboard draws (the model's length: ${own.reason}; the CLI's maps has no limit)` };
}
