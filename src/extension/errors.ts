// Turning failures into words: a one-line message a person can act on, and the details (stacks, the worker's stderr)
// for the output channel. No `vscode` here, so the wording is unit-tested.
import { ModelError } from '../analysis/onnx/errors';
import { RuntimeError } from '../runtime/client';
import { CoreCancelled, CoreError } from '../cli/core-client';

export interface Explained {
  cancelled: boolean;
  /** One line, no stack. */
  message: string;
  /** Everything known, for the log. */
  detail: string;
}

function firstLine(s: string): string {
  return s.split('\n')[0].trim();
}

export function explain(e: unknown): Explained {
  if (e instanceof CoreCancelled || (e instanceof RuntimeError && e.code === 'cancelled')) {
    return { cancelled: true, message: 'cancelled', detail: e.message };
  }
  if (e instanceof RuntimeError) {
    const detail = [e.message, e.workerStack].filter(Boolean).join('\n');
    if (e.code === 'worker-exited') {
      return { cancelled: false, message: `the runtime worker stopped unexpectedly (${firstLine(e.message.replace(/^the runtime worker /, ''))})`, detail };
    }
    return { cancelled: false, message: firstLine(e.message), detail };
  }
  if (e instanceof CoreError) {
    const message = e.userError ? firstLine(e.message) : `internal error: ${firstLine(e.message)}`;
    return { cancelled: false, message, detail: e.threadStack ?? e.message };
  }
  if (e instanceof ModelError) return { cancelled: false, message: firstLine(e.message), detail: e.stack ?? e.message };
  if (e instanceof Error) {
    const user = (e as { userError?: boolean }).userError === true;
    return { cancelled: false, message: user ? firstLine(e.message) : `internal error: ${firstLine(e.message)}`, detail: e.stack ?? e.message };
  }
  return { cancelled: false, message: `internal error: ${String(e)}`, detail: String(e) };
}

/** A user-facing error raised by the extension itself (no model chosen, output equals input, ...). */
export function userError(message: string): Error {
  const e = new Error(message);
  (e as Error & { userError: boolean }).userError = true;
  return e;
}

const REPORTED = Symbol('attention-lens.reported');

/** Marks an error as already shown to the person, so a caller further up does not show it again. */
export function markReported(e: unknown): void {
  if (typeof e === 'object' && e !== null) (e as { [REPORTED]?: boolean })[REPORTED] = true;
}

export function wasReported(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { [REPORTED]?: boolean })[REPORTED] === true;
}
