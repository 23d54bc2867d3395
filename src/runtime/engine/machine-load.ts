// How much of the machine other processes used while we timed: all cores' busy time (os.cpus) minus this process's
// own CPU time (process.cpuUsage, every thread of the worker, onnxruntime's included), over the elapsed wall time
// times the core count. An editor redrawing a progress bar, a test suite next door or a build all show up here, and
// they are what makes the same benchmark slower and noisier than on an idle machine.
import { cpus } from 'node:os';

interface Mark {
  wallMs: number;
  busyMs: number;
  ownMs: number;
  cores: number;
}

function busyMs(): { busy: number; cores: number } {
  const all = cpus();
  let busy = 0;
  for (const c of all) busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  return { busy, cores: all.length };
}

export function markLoad(): Mark {
  const { busy, cores } = busyMs();
  const own = process.cpuUsage();
  return { wallMs: performance.now(), busyMs: busy, ownMs: (own.user + own.system) / 1000, cores };
}

/**
 * Other processes' share of all cores' time since `start`, in [0, 1]; null when it cannot be told (no CPU list, as
 * on some sandboxes, or an interval too short for the kernel's 10 ms accounting ticks).
 */
export function otherCpuShare(start: Mark, end: Mark = markLoad()): number | null {
  const wall = end.wallMs - start.wallMs;
  if (end.cores === 0 || end.cores !== start.cores || wall < 200) return null;
  const others = end.busyMs - start.busyMs - (end.ownMs - start.ownMs);
  return Math.min(1, Math.max(0, others / (wall * end.cores)));
}
