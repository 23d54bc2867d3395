// Runs jobs in child processes, each with a time limit and a memory limit, so that a hang or a runaway allocation is
// a finding instead of a stuck or killed campaign. Processes rather than worker threads: a worker thread stuck inside
// a long native call (filling a 2^31-element array) cannot be terminated, a process can always be killed. Each child
// runs with Node's default stack, as the CLI does, so deep recursion fails where it would for a user.
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import type { MutantResult, Outcome } from './exercise';
import { jobDir, type Job } from './job';

export interface PoolOptions {
  workerFile: string;
  concurrency: number;
  /** Per mutant, all stages together. */
  timeoutMs: number;
  /** V8 heap limit per child. */
  heapMb: number;
  /** Resident size per child (heap, ArrayBuffers and all) above which its job is stopped. */
  rssLimitMb: number;
  onResult?: (r: MutantResult) => void;
}

interface Slot {
  child: ChildProcess;
  stderr: string;
  job?: Job;
  timer?: NodeJS.Timeout;
  started: number;
}

const PAGE = 4096;

/** Resident bytes of a process (Linux); undefined where /proc is not available. */
function rssOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return Number(fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE;
  } catch {
    return undefined;
  }
}

export function runJobs(jobs: Job[], opts: PoolOptions): Promise<MutantResult[]> {
  return new Promise((resolve, reject) => {
    const queue = [...jobs];
    const results: MutantResult[] = [];
    const slots: Slot[] = [];
    let closed = false;

    const record = (r: MutantResult) => {
      results.push(r);
      opts.onResult?.(r);
    };

    const start = (slot: Slot) => {
      const child = fork(opts.workerFile, [], {
        execArgv: [`--max-old-space-size=${opts.heapMb}`],
        serialization: 'advanced',
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      });
      slot.child = child;
      slot.stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        if (slot.child === child) slot.stderr = (slot.stderr + d.toString()).slice(-4000);
      });
      child.on('message', (r: MutantResult) => {
        if (slot.child !== child || !slot.job) return;
        clearTimeout(slot.timer);
        slot.job = undefined;
        record(r);
        dispatch();
      });
      child.on('exit', (code, signal) => {
        if (slot.child !== child || closed) return;
        const job = slot.job;
        if (!job) return fatal(new Error(`fuzz worker exited while idle (${code ?? signal}): ${slot.stderr.trim().split('\n').slice(-3).join(' | ')}`));
        const oom = /heap out of memory|Reached heap limit|allocation failed/i.test(slot.stderr);
        const tail = slot.stderr.trim().split('\n').slice(-3).join(' | ');
        replace(slot, job, oom ? 'memory' : 'internal', oom ? `JavaScript heap above ${opts.heapMb} MB` : `the worker process died (${code ?? signal}): ${tail}`);
      });
    };

    /** Kills the slot's process, records the job's outcome, starts a fresh process. */
    const replace = (slot: Slot, job: Job, outcome: Outcome, reason: string) => {
      clearTimeout(slot.timer);
      slot.job = undefined;
      const old = slot.child;
      start(slot);
      old.kill('SIGKILL');
      fs.rmSync(jobDir(job), { recursive: true, force: true });
      record({ fixture: job.fixture, seed: job.seed, outcome, mutations: [], failure: { stage: 'worker', reason, message: '' }, ms: Date.now() - slot.started });
      dispatch();
    };

    const stopAll = () => {
      closed = true;
      clearInterval(watchdog);
      for (const s of slots) s.child.kill('SIGKILL');
    };
    const fatal = (e: Error) => {
      if (closed) return;
      stopAll();
      reject(e);
    };

    const dispatch = () => {
      if (closed) return;
      for (const slot of slots) {
        if (slot.job || !queue.length) continue;
        const job = queue.shift()!;
        slot.job = job;
        slot.started = Date.now();
        slot.timer = setTimeout(() => replace(slot, job, 'hang', `no result within ${opts.timeoutMs} ms`), opts.timeoutMs);
        slot.child.send(job);
      }
      if (!queue.length && slots.every((s) => !s.job)) {
        stopAll();
        resolve(results);
      }
    };

    const watchdog = setInterval(() => {
      for (const slot of slots) {
        if (!slot.job) continue;
        const rss = rssOf(slot.child.pid);
        if (rss !== undefined && rss > opts.rssLimitMb * 2 ** 20) replace(slot, slot.job, 'memory', `process memory ${Math.round(rss / 2 ** 20)} MB, above ${opts.rssLimitMb} MB`);
      }
    }, 100);

    for (let i = 0; i < Math.max(1, opts.concurrency); i++) {
      const slot = { started: 0, stderr: '' } as Slot;
      slots.push(slot);
      start(slot);
    }
    dispatch();
  });
}
