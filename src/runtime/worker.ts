// The worker process: the only place onnxruntime runs. It is forked by RuntimeClient (client.ts) so that a long
// synchronous `session.run` or a native crash cannot freeze or take down the editor or the CLI.
//
// Requests are handled one at a time, in arrival order: timings would be meaningless if two ran at once, and
// onnxruntime already uses every core for one. Cancellation is checked between runs (handlers call
// `throwIfCancelled`); a run that never returns is the client's to kill.
import { handleBench } from './engine/bench';
import { CancelledError, type TaskContext } from './engine/context';
import { handleCompare } from './engine/compare-models';
import { handleEval } from './engine/evaluate';
import { handleGenerate } from './engine/generate';
import { handleMaps } from './engine/maps';
import { handleInspect, handleRun } from './engine/run-model';
import { SessionCache } from './engine/sessions';
import type { ClientMessage, ProgressEvent, Request, WorkerMessage } from './protocol';

if (!process.send) {
  process.stderr.write('attention-lens worker: must be started by RuntimeClient (child_process.fork with an IPC channel)\n');
  process.exit(2);
}

const sessions = new SessionCache();
const queue: { id: number; request: Request }[] = [];
const cancelled = new Set<number>();
let busy = false;
let current: number | null = null;

function send(message: WorkerMessage): void {
  process.send?.(message);
}

/** Progress at most every 100 ms per request (plus the last step), so fast loops do not flood the channel. */
function contextFor(id: number): TaskContext {
  let last = 0;
  return {
    progress(progress: ProgressEvent) {
      const now = performance.now();
      if (now - last < 100 && progress.done < progress.total) return;
      last = now;
      send({ type: 'progress', id, progress });
    },
    throwIfCancelled() {
      if (cancelled.has(id)) throw new CancelledError();
    },
  };
}

async function dispatch(request: Request, ctx: TaskContext): Promise<unknown> {
  switch (request.type) {
    case 'inspect': return handleInspect(request, sessions);
    case 'run': return handleRun(request, sessions, ctx);
    case 'bench': return handleBench(request, ctx);
    case 'compare': return handleCompare(request, sessions, ctx);
    case 'eval': return handleEval(request, sessions, ctx);
    case 'maps': return handleMaps(request, sessions, ctx);
    case 'generate': return handleGenerate(request, sessions, ctx);
    default: {
      const unknown: never = request;
      throw new Error(`unknown request type ${JSON.stringify((unknown as { type?: unknown }).type)}`);
    }
  }
}

async function drain(): Promise<void> {
  if (busy) return;
  busy = true;
  try {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const { id, request } = next;
      current = id;
      try {
        if (cancelled.has(id)) throw new CancelledError();
        const result = await dispatch(request, contextFor(id));
        send({ type: 'result', id, result });
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        send({ type: 'error', id, code: e instanceof CancelledError ? 'cancelled' : 'failed', message: err.message, stack: err.stack });
      } finally {
        cancelled.delete(id);
        current = null;
      }
    }
  } finally {
    busy = false;
  }
}

process.on('message', (raw: unknown) => {
  const message = raw as ClientMessage;
  if (message.type === 'cancel') {
    // Only ids still queued or running: a late cancel of a finished request must not linger in the set.
    if (message.id === current || queue.some((q) => q.id === message.id)) cancelled.add(message.id);
    return;
  }
  if (message.type === 'request') {
    queue.push({ id: message.id, request: message.request });
    void drain();
  }
});

// The parent went away (closed the channel, or died): nothing is left to report to.
process.on('disconnect', () => process.exit(0));
