// Progress and cancellation for long work (loading, rewriting and saving models with billions of weights). The work is
// synchronous, so both are plain callbacks: `onProgress` is told how far along it is, and `checkpoint` is called at
// safe points (between sites, between chunks of a tensor) and throws `Cancelled` when the caller wants it to stop.
// Whatever was half written is removed on the way out.

export interface WorkProgress {
  phase: 'load' | 'analyse' | 'rewrite' | 'save';
  /** Units done and in all (sites for rewrites, bytes for saves); total 0 when unknown. */
  done: number;
  total: number;
  message: string;
}

export interface WorkControl {
  onProgress?: (p: WorkProgress) => void;
  /** Throws (a `Cancelled`) to stop the work; called often, so it must be cheap. */
  checkpoint?: () => void;
}

export class Cancelled extends Error {
  readonly userError = true;
  readonly cancelled = true;
  constructor(what = 'the rewrite') {
    super(`${what} was cancelled; nothing was written`);
    this.name = 'Cancelled';
  }
}

/** A checkpoint that throws once `flag[0]` is non-zero: how another thread (the host, a signal handler) cancels. */
export function flagCheckpoint(flag: Int32Array, what?: string): () => void {
  return () => {
    if (Atomics.load(flag, 0) !== 0) throw new Cancelled(what);
  };
}
