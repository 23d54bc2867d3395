// The runtime across threads: a worker thread (the extension's core thread) runs work that needs models run (the
// advisor) while the host keeps the one runtime worker process. The thread's RuntimeClient is connected to a
// MessagePort (`portLink`) and the host serves that port with its own client (`serveRuntime`). Both ends speak the
// runtime's own messages (protocol.ts: requests and cancels one way; progress, results and errors the other), so the
// thread's client behaves as if it had forked the worker: cancels, progress and errors work as they do on the host.
import type { MessagePort } from 'node:worker_threads';
import { type Connect, type RuntimeClient, RuntimeError } from './client';
import type { ClientMessage, WorkerMessage } from './protocol';

/**
 * Answers the requests arriving on `port` with `client` until `close` is called (or the other end closes the port);
 * then every request still running is cancelled, so the runtime worker stops at its next check.
 */
export function serveRuntime(port: MessagePort, client: RuntimeClient): { close: () => void } {
  const running = new Map<number, AbortController>();
  let closed = false;
  const post = (m: WorkerMessage): void => {
    if (!closed) port.postMessage(m);
  };
  const close = (): void => {
    if (closed) return;
    closed = true;
    for (const c of running.values()) c.abort();
    running.clear();
    port.close();
  };
  port.on('message', (m: ClientMessage) => {
    if (m.type === 'cancel') {
      running.get(m.id)?.abort();
      return;
    }
    const controller = new AbortController();
    running.set(m.id, controller);
    client.request(m.request, { signal: controller.signal, onProgress: (progress) => post({ type: 'progress', id: m.id, progress }) }).then(
      (result) => post({ type: 'result', id: m.id, result }),
      (e: unknown) => post(errorMessage(m.id, e)),
    ).finally(() => running.delete(m.id));
  });
  port.on('close', close);
  return { close };
}

function errorMessage(id: number, e: unknown): WorkerMessage {
  if (e instanceof RuntimeError) return { type: 'error', id, code: e.code, message: e.message, ...(e.workerStack ? { stack: e.workerStack } : {}) };
  const err = e instanceof Error ? e : new Error(String(e));
  return { type: 'error', id, code: 'failed', message: err.message, ...(err.stack ? { stack: err.stack } : {}) };
}

/**
 * The thread's side: a RuntimeClient option (`connect`) that sends its requests through `port` to `serveRuntime`.
 * One port serves one connection: once it is closed (the host's run ended), requests fail as if the worker had exited.
 */
export function portLink(port: MessagePort): Connect {
  let used = false;
  return (events) => {
    if (used) throw new RuntimeError('worker-exited', 'the relay to the host\'s runtime worker was closed');
    used = true;
    const closed = new Promise<void>((r) => port.once('close', () => r()));
    port.on('message', (m: WorkerMessage) => events.message(m));
    port.on('close', () => events.exited('is out of reach: the relay to the host was closed'));
    return {
      send: (m) => port.postMessage(m),
      end: () => {
        port.close();
        return closed;
      },
      hold: (busy) => {
        if (busy) port.ref();
        else port.unref();
      },
    };
  };
}
