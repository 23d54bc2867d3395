// Opening onnxruntime sessions on the requested execution providers, with a fallback that is always reported.
//
// Providers are tried one at a time, in the caller's order: onnxruntime fails the whole session when any provider in
// its list fails to register, so passing the list at once would turn one missing CUDA library into a hard error.
// CPU is the last resort even when not asked for, with a warning that says so.
import { existsSync, statSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { type ExecutionProvider, type ProviderReport, type SessionSettings } from '../protocol';

export interface OpenedSession {
  session: ort.InferenceSession;
  provider: ProviderReport;
  createMs: number;
  model: string;
}

export interface OpenOptions {
  /** Turns on onnxruntime's profiler; the trace goes to `<prefix>_<timestamp>.json`. */
  profilePrefix?: string;
}

export function requestedProviders(settings: SessionSettings | undefined): ExecutionProvider[] {
  const ep = settings?.ep ?? 'cpu';
  const list = Array.isArray(ep) ? ep : [ep];
  return list.length > 0 ? [...new Set(list)] : ['cpu'];
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? msg;
}

export async function openSession(model: string, settings: SessionSettings | undefined, options: OpenOptions = {}): Promise<OpenedSession> {
  if (!existsSync(model)) throw new Error(`${model}: no such model file`);
  if (!statSync(model).isFile()) throw new Error(`${model}: not a file`);
  const requested = requestedProviders(settings);
  const order = requested.includes('cpu') ? requested : [...requested, 'cpu' as const];
  const warnings: string[] = [];
  const base: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3 };
  if (settings?.intraOpThreads !== undefined) base.intraOpNumThreads = settings.intraOpThreads;
  if (settings?.graphOptimization !== undefined) base.graphOptimizationLevel = settings.graphOptimization;
  if (options.profilePrefix !== undefined) {
    base.enableProfiling = true;
    base.profileFilePrefix = options.profilePrefix;
  }
  let lastError: unknown;
  for (const ep of order) {
    const t0 = performance.now();
    try {
      const session = await ort.InferenceSession.create(model, { ...base, executionProviders: [ep] });
      const createMs = performance.now() - t0;
      if (ep !== requested[0]) warnings.push(`running on ${ep} instead of ${requested[0]}`);
      return { session, provider: { requested, used: ep, warnings }, createMs, model };
    } catch (e) {
      lastError = e;
      if (ep === 'cpu') break; // CPU failing means the model itself cannot load: report that, not a provider problem.
      warnings.push(`${ep} failed to load: ${firstLine(e)}`);
    }
  }
  throw new Error(`${model}: onnxruntime could not load the model: ${firstLine(lastError)}${warnings.length ? ` (${warnings.join('; ')})` : ''}`);
}

/**
 * Sessions kept between requests (run, compare, eval, maps) so that repeated requests on one model do not pay for
 * session creation each time. Keyed by path, file size and mtime (a rewritten variant at the same path is a new
 * model) and the settings. Benchmarks do not use it: they measure creation.
 */
export class SessionCache {
  private readonly entries = new Map<string, Promise<OpenedSession>>();

  constructor(private readonly capacity = 4) {}

  async get(model: string, settings: SessionSettings | undefined): Promise<OpenedSession> {
    const st = existsSync(model) ? statSync(model) : undefined;
    const key = JSON.stringify([model, st?.size, st?.mtimeMs, requestedProviders(settings), settings?.intraOpThreads, settings?.graphOptimization]);
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit); // most recently used last
      return hit;
    }
    const opening = openSession(model, settings);
    this.entries.set(key, opening);
    opening.catch(() => this.entries.delete(key));
    while (this.entries.size > this.capacity) {
      const [oldKey, old] = this.entries.entries().next().value as [string, Promise<OpenedSession>];
      this.entries.delete(oldKey);
      old.then((s) => s.session.release()).catch(() => undefined);
    }
    return opening;
  }
}
