// The host's side of the core thread: one worker thread, started on first use, typed requests with progress, and
// cancellation in two steps. A cancelled request is rejected at once and its shared flag is set, which a rewrite checks
// at its safe points (between sites and between chunks of a tensor): it stops and removes what it half wrote. Work
// without safe points (loading, analysis) is not waited for: after a short grace the thread is terminated, and the
// next request starts a fresh one. A request that runs models (the advisor) is given a port to the host's runtime
// client (runtime/relay.ts), served while the request is pending and closed when it ends or is cancelled, which stops
// its runs at once. No `vscode` here, so tests (and the CLI) drive it directly.
import { existsSync } from 'node:fs';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { type RuntimeClient, RuntimeError } from '../runtime/client';
import { serveRuntime } from '../runtime/relay';
import type { CoreMessage, CoreProgressOf, CoreReply, CoreRequest, CoreResultOf } from './core-protocol';

/** How long a cancelled request may take to clean up before its thread is terminated. */
export const CANCEL_GRACE_MS = 10_000;

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
  onProgress?: (p: never) => void;
}

export class CoreClient {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Cancelled requests whose thread is still finishing them, with the timer that terminates it if it takes too long. */
  private readonly stopping = new Map<number, NodeJS.Timeout>();
  private waiters: (() => void)[] = [];

  constructor(private readonly script: string, private readonly graceMs = CANCEL_GRACE_MS) {}

  /** `runtime`: the client whose worker runs the request's models (needed by `advise`). */
  request<R extends CoreRequest>(request: R, signal?: AbortSignal, onProgress?: (p: CoreProgressOf<R>) => void, runtime?: RuntimeClient): Promise<CoreResultOf<R>> {
    if (signal?.aborted) return Promise.reject(new CoreCancelled(request.type));
    let worker: Worker;
    try {
      worker = this.ensure();
    } catch (e) {
      return Promise.reject(e);
    }
    if (!runtime) return this.post(worker, request, signal, onProgress);
    const channel = new MessageChannel();
    const relay = serveRuntime(channel.port1, runtime);
    const result = this.post(worker, request, signal, onProgress, channel.port2);
    // Settled (or cancelled: the promise is rejected at once) ends the relay, which cancels the runs still going.
    result.then(relay.close, relay.close);
    return result;
  }

  private post<R extends CoreRequest>(worker: Worker, request: R, signal?: AbortSignal, onProgress?: (p: CoreProgressOf<R>) => void, runtime?: MessagePort): Promise<CoreResultOf<R>> {
    const id = this.nextId++;
    const cancel = new SharedArrayBuffer(4);
    return new Promise<CoreResultOf<R>>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.pending.has(id)) return;
        this.pending.delete(id);
        reject(new CoreCancelled(request.type));
        Atomics.store(new Int32Array(cancel), 0, 1);
        // If the thread does not come back in time, other requests on it fail with it; callers see them as cancelled.
        const timer = setTimeout(() => {
          this.stopping.delete(id);
          this.stop(worker, new CoreCancelled(request.type));
          this.wake();
        }, this.graceMs);
        this.stopping.set(id, timer);
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
        ...(onProgress ? { onProgress } : {}),
      });
      const message: CoreMessage = { id, request, cancel, ...(runtime ? { runtime } : {}) };
      // While it works for someone, the thread keeps the process alive (a CLI awaiting it); idle, it must not.
      worker.ref();
      worker.postMessage(message, runtime ? [runtime] : []);
    });
  }

  /** Resolves once every cancelled request has come back (its clean-up done) or its thread was terminated. */
  settled(): Promise<void> {
    if (this.stopping.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  dispose(): void {
    if (this.worker) this.stop(this.worker, new CoreError('the core thread was stopped', false));
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    if (!existsSync(this.script)) throw new CoreError(`${this.script} is missing: the extension was not built completely`, false);
    const worker = new Worker(this.script);
    worker.on('message', (reply: CoreReply) => {
      if ('progress' in reply) {
        // The request's own kind of progress (CoreProgressOf), as its thread-side handler posts it.
        this.pending.get(reply.id)?.onProgress?.(reply.progress as never);
        return;
      }
      const timer = this.stopping.get(reply.id);
      if (timer) {
        // A cancelled request came back (cleaned up): the thread stays.
        clearTimeout(timer);
        this.stopping.delete(reply.id);
        this.wake();
        return;
      }
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      this.releaseIfIdle();
      if (reply.ok) p.resolve(reply.result);
      else if (reply.cancelled) p.reject(new CoreCancelled('request'));
      else if (reply.runtime) p.reject(new RuntimeError(reply.runtime, reply.message, reply.stack));
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
    if (this.worker === worker) {
      this.worker = null;
      for (const t of this.stopping.values()) clearTimeout(t);
      this.stopping.clear();
      this.wake();
    }
    for (const [id, p] of [...this.pending]) {
      if (p.worker !== worker) continue;
      this.pending.delete(id);
      p.reject(reason);
    }
  }

  /** Lets the process exit once the thread has nothing left to do for anyone. */
  private releaseIfIdle(): void {
    if (this.worker && this.pending.size === 0 && this.stopping.size === 0) this.worker.unref();
  }

  private wake(): void {
    this.releaseIfIdle();
    if (this.stopping.size > 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
