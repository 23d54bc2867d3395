// The caller's side of the runtime: forks the worker (dist/worker.js), sends typed requests, streams progress, cancels,
// and turns a worker that died (killed, crashed, out of memory) into an error for every request it held; the next
// request forks a fresh worker. The same client can instead talk through a port to another thread's client (relay.ts),
// so work in a worker thread shares the host's one runtime worker. This file must not import onnxruntime-node: the
// extension and the CLI load it.
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
  /** How to reach a runtime instead of forking the worker (relay.ts: a port to the host's client). */
  connect?: Connect;
}

/** What the client's requests go to: the worker process it forked, or a relay to another thread's client. */
export interface RuntimeLink {
  readonly pid?: number;
  send(message: ClientMessage): void;
  /** Ends the far side now (its pending requests fail through `exited`); resolves once it has ended. */
  end(): Promise<void>;
  /** Whether the link may keep this process alive: only while requests are pending on it. */
  hold(busy: boolean): void;
}

/** Where a link reports: the runtime's messages, and its end (how it ended, for the requests' error). */
export interface LinkEvents {
  message(m: WorkerMessage): void;
  exited(how: string): void;
}

export type Connect = (events: LinkEvents) => RuntimeLink;

export interface RequestOptions {
  onProgress?: (progress: ProgressEvent) => void;
  signal?: AbortSignal;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  onProgress?: (progress: ProgressEvent) => void;
  worker: RuntimeLink;
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

/** The link to a forked dist/worker.js; its stderr's tail goes into the error of the requests it held when it died. */
function forkWorker(options: RuntimeClientOptions): Connect {
  return (events) => {
    const path = options.workerPath ?? findWorker();
    if (!existsSync(path)) throw new RuntimeError('worker-exited', `runtime worker ${path} does not exist; run \`npm run build\``);
    const worker = fork(path, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...options.env },
    });
    let stderrTail = '';
    // Both pipes must be drained or a chatty native library would block the worker; stderr is kept for crash reports.
    worker.stdout?.on('data', () => undefined);
    worker.stderr?.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL);
    });
    const exited = (how: string): void => {
      const tail = stderrTail.trim().split('\n').slice(-5).join('\n');
      events.exited(`${how}${tail ? `:\n${tail}` : ''}`);
    };
    const gone = new Promise<void>((r) => worker.once('exit', () => r()));
    worker.on('message', (m: WorkerMessage) => events.message(m));
    worker.on('error', (e) => exited(`worker error: ${e.message}`));
    worker.on('exit', (code, signal) => exited(signal ? `killed by ${signal}` : `exited with code ${code}`));
    type Refable = { ref(): void; unref(): void } | null | undefined;
    const handles: Refable[] = [worker, (worker as ChildProcess & { channel?: Refable }).channel, worker.stdout as Refable, worker.stderr as Refable];
    return {
      pid: worker.pid,
      send: (m) => {
        if (worker.connected) worker.send(m);
      },
      end: () => {
        // An idle worker is unref'd; without this the caller's event loop could empty (and the process end) before the
        // 'exit' event a dispose() awaits arrives, silently dropping whatever the caller meant to do afterwards.
        worker.ref();
        if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
        return gone;
      },
      hold: (busy) => {
        for (const h of handles) {
          if (busy) h?.ref();
          else h?.unref();
        }
      },
    };
  };
}

export class RuntimeClient {
  private worker: RuntimeLink | null = null;
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
    let worker: RuntimeLink;
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
    this.worker = null;
    await w.end();
  }

  private ensureWorker(): RuntimeLink {
    if (this.worker) return this.worker;
    const link: RuntimeLink = (this.options.connect ?? forkWorker(this.options))({
      message: (m) => this.onMessage(m),
      exited: (how) => this.onExit(link, how),
    });
    this.worker = link;
    return link;
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

  private onExit(worker: RuntimeLink, how: string): void {
    if (this.worker === worker) this.worker = null;
    for (const [id, p] of [...this.pending]) {
      if (p.worker !== worker) continue;
      this.pending.delete(id);
      p.cleanup();
      p.reject(new RuntimeError('worker-exited', `the runtime worker ${how}`));
    }
  }

  private killWorker(worker: RuntimeLink): void {
    // Forget it at once: a request made before its 'exit' event arrives must go to a fresh worker, not a dying one.
    if (this.worker === worker) this.worker = null;
    void worker.end();
  }

  private post(worker: RuntimeLink, message: ClientMessage): void {
    worker.send(message);
  }

  /** An idle worker must not keep the caller's process alive (a CLI that forgets dispose() still exits). */
  private updateRef(): void {
    const w = this.worker;
    if (w) w.hold([...this.pending.values()].some((p) => p.worker === w));
  }
}
