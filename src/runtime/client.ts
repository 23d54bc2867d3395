// The caller's side of the runtime: forks the worker (dist/worker.js), sends typed requests, streams progress, cancels,
// and turns a worker that died (killed, crashed, out of memory) into an error for every request it held; the next
// request forks a fresh worker. This file must not import onnxruntime-node: the extension and the CLI load it.
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type {
  BenchRequest,
  ClientMessage,
  CompareRequest,
  ErrorCode,
  EvalRequest,
  GenerateRequest,
  InspectRequest,
  MapsRequest,
  ProgressEvent,
  Request,
  ResultOf,
  RunRequest,
  WorkerMessage,
} from './protocol';

export class RuntimeError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The worker-side stack, for `failed`. */
    readonly workerStack?: string,
  ) {
    super(message);
    this.name = 'RuntimeError';
  }
}

export interface RuntimeClientOptions {
  /** Path of the bundled worker; default: found next to this bundle or in a `dist/` above it. */
  workerPath?: string;
  /** After a cancel, how long the worker gets to stop at its next check before it is killed. Default 2000 ms. */
  cancelGraceMs?: number;
  /** Extra environment for the worker (e.g. LD_LIBRARY_PATH for a GPU provider). */
  env?: NodeJS.ProcessEnv;
}

export interface RequestOptions {
  onProgress?: (progress: ProgressEvent) => void;
  signal?: AbortSignal;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  onProgress?: (progress: ProgressEvent) => void;
  worker: ChildProcess;
  cleanup: () => void;
}

const STDERR_TAIL = 4000;

/** Finds dist/worker.js from wherever this code was bundled (dist/cli.js, dist/extension.js, dist/bench/*.js). */
export function findWorker(): string {
  const env = process.env.ATTENTION_LENS_WORKER;
  if (env) return resolve(env);
  const here = typeof __dirname === 'string' ? __dirname : process.cwd();
  for (let dir = here; ; dir = dirname(dir)) {
    for (const candidate of [join(dir, 'worker.js'), join(dir, 'dist', 'worker.js')]) {
      if (existsSync(candidate)) return candidate;
    }
    if (dirname(dir) === dir) break;
  }
  throw new RuntimeError('worker-exited', `cannot find the runtime worker (dist/worker.js) from ${here}; run \`npm run build\``);
}

export class RuntimeClient {
  private worker: ChildProcess | null = null;
  private stderrTail = '';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private disposed = false;

  constructor(private readonly options: RuntimeClientOptions = {}) {}

  /** The worker's process id, while one is running (tests use it to kill the worker). */
  get workerPid(): number | undefined {
    return this.worker?.pid;
  }

  inspect(request: Omit<InspectRequest, 'type'>, options?: RequestOptions) {
    return this.request({ type: 'inspect', ...request }, options);
  }
  run(request: Omit<RunRequest, 'type'>, options?: RequestOptions) {
    return this.request({ type: 'run', ...request }, options);
  }
  bench(request: Omit<BenchRequest, 'type'>, options?: RequestOptions) {
    return this.request({ type: 'bench', ...request }, options);
  }
  compare(request: Omit<CompareRequest, 'type'>, options?: RequestOptions) {
    return this.request({ type: 'compare', ...request }, options);
  }
  evaluate(request: Omit<EvalRequest, 'type'>, options?: RequestOptions) {
    return this.request({ type: 'eval', ...request }, options);
  }
  maps(request: Omit<MapsRequest, 'type'>, options?: RequestOptions) {
    return this.request({ type: 'maps', ...request }, options);
  }
  generate(request: Omit<GenerateRequest, 'type'>, options?: RequestOptions) {
    return this.request({ type: 'generate', ...request }, options);
  }

  request<R extends Request>(request: R, options: RequestOptions = {}): Promise<ResultOf<R>> {
    if (this.disposed) return Promise.reject(new RuntimeError('failed', 'the runtime client was disposed'));
    if (options.signal?.aborted) return Promise.reject(new RuntimeError('cancelled', `${request.type} cancelled before it started`));
    let worker: ChildProcess;
    try {
      worker = this.ensureWorker();
    } catch (e) {
      return Promise.reject(e);
    }
    const id = this.nextId++;
    return new Promise<ResultOf<R>>((resolvePromise, rejectPromise) => {
      let killTimer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        this.post(worker, { type: 'cancel', id });
        // A run inside onnxruntime cannot be interrupted: if the worker does not stop at its next check, kill it.
        killTimer = setTimeout(() => {
          const p = this.pending.get(id);
          if (!p) return;
          this.pending.delete(id);
          p.cleanup();
          p.reject(new RuntimeError('cancelled', `${request.type} cancelled (the worker was stopped mid-run)`));
          this.killWorker(worker);
        }, this.options.cancelGraceMs ?? 2000);
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: resolvePromise as (value: unknown) => void,
        reject: rejectPromise,
        onProgress: options.onProgress,
        worker,
        cleanup: () => {
          if (killTimer) clearTimeout(killTimer);
          options.signal?.removeEventListener('abort', onAbort);
          this.updateRef();
        },
      });
      this.updateRef();
      this.post(worker, { type: 'request', id, request });
    });
  }

  /** Stops the worker; pending requests fail with `worker-exited`. The client cannot be used afterwards. */
  async dispose(): Promise<void> {
    this.disposed = true;
    const w = this.worker;
    if (!w) return;
    const exited = new Promise<void>((r) => w.once('exit', () => r()));
    // An idle worker is unref'd; without this the caller's event loop could empty (and the process end) before the
    // 'exit' event this awaits arrives, silently dropping whatever the caller meant to do after dispose().
    w.ref();
    this.killWorker(w);
    await exited;
  }

  private ensureWorker(): ChildProcess {
    if (this.worker) return this.worker;
    const path = this.options.workerPath ?? findWorker();
    if (!existsSync(path)) throw new RuntimeError('worker-exited', `runtime worker ${path} does not exist; run \`npm run build\``);
    const worker = fork(path, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...this.options.env },
    });
    this.stderrTail = '';
    // Both pipes must be drained or a chatty native library would block the worker; stderr is kept for crash reports.
    worker.stdout?.on('data', () => undefined);
    worker.stderr?.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL);
    });
    worker.on('message', (m: WorkerMessage) => this.onMessage(m));
    worker.on('error', (e) => this.onExit(worker, `worker error: ${e.message}`));
    worker.on('exit', (code, signal) => this.onExit(worker, signal ? `killed by ${signal}` : `exited with code ${code}`));
    this.worker = worker;
    return worker;
  }

  private onMessage(m: WorkerMessage): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.type === 'progress') {
      p.onProgress?.(m.progress);
      return;
    }
    this.pending.delete(m.id);
    p.cleanup();
    if (m.type === 'result') p.resolve(m.result);
    else p.reject(new RuntimeError(m.code, m.message, m.stack));
  }

  private onExit(worker: ChildProcess, how: string): void {
    if (this.worker === worker) this.worker = null;
    const tail = this.stderrTail.trim().split('\n').slice(-5).join('\n');
    for (const [id, p] of [...this.pending]) {
      if (p.worker !== worker) continue;
      this.pending.delete(id);
      p.cleanup();
      p.reject(new RuntimeError('worker-exited', `the runtime worker ${how}${tail ? `:\n${tail}` : ''}`));
    }
  }

  private killWorker(worker: ChildProcess): void {
    // Forget it at once: a request made before its 'exit' event arrives must go to a fresh worker, not a dying one.
    if (this.worker === worker) this.worker = null;
    if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
  }

  private post(worker: ChildProcess, message: ClientMessage): void {
    if (worker.connected) worker.send(message);
  }

  /** An idle worker must not keep the caller's process alive (a CLI that forgets dispose() still exits). */
  private updateRef(): void {
    const w = this.worker;
    if (!w) return;
    const busy = [...this.pending.values()].some((p) => p.worker === w);
    type Refable = { ref(): void; unref(): void } | null | undefined;
    const handles: Refable[] = [(w as ChildProcess & { channel?: Refable }).channel, w.stdout as Refable, w.stderr as Refable];
    if (busy) {
      w.ref();
      for (const h of handles) h?.ref();
    } else {
      w.unref();
      for (const h of handles) h?.unref();
    }
  }
}
