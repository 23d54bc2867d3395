// The host's side of the core thread: one worker thread, started on first use, typed requests, and cancellation by
// terminating the thread (analysis and rewriting have no safe points to stop at, and a thread dies cleanly); the next
// request starts a fresh one. No `vscode` here, so tests drive it directly.
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { CoreReply, CoreRequest, CoreResultOf } from './core-protocol';

/** An error raised in the core thread. `userError`: caused by the input (file, flags), not a bug. */
export class CoreError extends Error {
  constructor(message: string, readonly userError: boolean, readonly threadStack?: string) {
    super(message);
    this.name = 'CoreError';
  }
}

export class CoreCancelled extends Error {
  constructor(what: string) {
    super(`${what} cancelled`);
    this.name = 'CoreCancelled';
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  worker: Worker;
}

export class CoreClient {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly script: string) {}

  request<R extends CoreRequest>(request: R, signal?: AbortSignal): Promise<CoreResultOf<R>> {
    if (signal?.aborted) return Promise.reject(new CoreCancelled(request.type));
    let worker: Worker;
    try {
      worker = this.ensure();
    } catch (e) {
      return Promise.reject(e);
    }
    const id = this.nextId++;
    return new Promise<CoreResultOf<R>>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.pending.has(id)) return;
        this.pending.delete(id);
        reject(new CoreCancelled(request.type));
        // Other requests on the same thread fail with it; callers see them as cancelled too.
        this.stop(worker, new CoreCancelled(request.type));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: (v) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(v as CoreResultOf<R>);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
        worker,
      });
      worker.postMessage({ id, request });
    });
  }

  dispose(): void {
    if (this.worker) this.stop(this.worker, new CoreError('the core thread was stopped', false));
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    if (!existsSync(this.script)) throw new CoreError(`${this.script} is missing: the extension was not built completely`, false);
    const worker = new Worker(this.script);
    worker.on('message', (reply: CoreReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new CoreError(reply.message, reply.userError, reply.stack));
    });
    worker.on('error', (e) => this.fail(worker, new CoreError(`the core thread crashed: ${e.message}`, false, e.stack)));
    worker.on('exit', (code) => this.fail(worker, new CoreError(`the core thread exited with code ${code}`, false)));
    // An idle thread must not keep the extension host (or a test) alive.
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private stop(worker: Worker, reason: Error): void {
    this.fail(worker, reason);
    void worker.terminate();
  }

  private fail(worker: Worker, reason: Error): void {
    if (this.worker === worker) this.worker = null;
    for (const [id, p] of [...this.pending]) {
      if (p.worker !== worker) continue;
      this.pending.delete(id);
      p.reject(reason);
    }
  }
}
