// What a request handler gets from the worker loop: a way to report progress and to learn it was cancelled.
import type { ProgressEvent } from '../protocol';

export class CancelledError extends Error {
  constructor() {
    super('cancelled');
  }
}

export interface TaskContext {
  progress(event: ProgressEvent): void;
  /** Throws CancelledError once the client asked to cancel; handlers call it between runs. */
  throwIfCancelled(): void;
}
