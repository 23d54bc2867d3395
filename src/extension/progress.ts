// One fraction of "how far along" from the runtime's per-phase progress events, for the notification and the
// dashboard's bar. A benchmark goes session → (warm-up, timed runs) per sweep point → profiling per model; the worker
// labels the timed phases with "(point/points)", which places them within the sweep. Exports get theirs from the core
// thread's write progress. No `vscode` here.
import type { WorkProgress } from '../analysis/onnx/progress';
import type { ProgressEvent } from '../runtime/protocol';

const POINT = /\((\d+)\/(\d+)\)/;

function within(p: ProgressEvent): number {
  return p.total > 0 ? Math.min(1, Math.max(0, p.done / p.total)) : 0;
}

/**
 * Overall fraction of a benchmark of `models` models. Stateful: profiling runs model after model, each counting its
 * points from 1 again, so the tracker remembers how many models have finished profiling.
 */
export class BenchProgress {
  private profiled = 0;

  constructor(private readonly models: number) {}

  fraction(p: ProgressEvent): number {
    const SESSIONS = 0.05;
    const TIMED = 0.75; // warm-up and timed runs of every point
    switch (p.phase) {
      case 'session':
        return SESSIONS * within(p);
      case 'warmup':
      case 'timed': {
        const m = POINT.exec(p.message ?? '');
        const [index, count] = m ? [Number(m[1]) - 1, Number(m[2])] : [0, 1];
        const inPoint = p.phase === 'warmup' ? 0.2 * within(p) : 0.2 + 0.8 * within(p);
        return SESSIONS + (TIMED * (index + inPoint)) / count;
      }
      case 'profile': {
        const finished = p.total > 0 && p.done >= p.total;
        const current = finished ? 1 : within(p);
        const f = SESSIONS + TIMED + ((1 - SESSIONS - TIMED) * Math.min(this.models, this.profiled + current)) / Math.max(1, this.models);
        if (finished) this.profiled++;
        return Math.min(1, f);
      }
      default:
        return within(p);
    }
  }
}

/** A short line for people: "timed runs, seq 128 (2/4): 7/10". */
export function describeProgress(p: ProgressEvent): string {
  const names: Record<string, string> = { session: 'loading models', warmup: 'warm-up', timed: 'timed runs', profile: 'profiling', run: 'running' };
  const what = names[p.phase] ?? p.phase;
  const where = p.message && p.phase !== 'session' && p.phase !== 'profile' && p.phase !== 'run' ? `, ${p.message}` : '';
  const count = p.total > 0 ? `: ${Math.round(p.done)}/${Math.round(p.total)}` : '';
  return `${what}${where}${count}`;
}

/**
 * Overall fraction of an export from the core thread's write progress: loading and analysis first, then the sites
 * of each rule, then the bytes of the data file, all within [from, to] of the export's bar (the load check and the
 * report come after). A second rule starts again from its first site; the notification does not move back for it.
 */
export function writeFraction(p: WorkProgress, from: number, to: number): number {
  const span = to - from;
  const within = p.total > 0 ? Math.min(1, Math.max(0, p.done / p.total)) : 0;
  switch (p.phase) {
    case 'load':
      return from;
    case 'analyse':
      return from + 0.02 * span;
    case 'rewrite':
      return from + (0.05 + 0.55 * within) * span;
    case 'save':
      return from + (0.62 + 0.38 * within) * span;
  }
}
