// The timing loop of the in-process CPU-time benchmarks (bench:attention-ops, bench:rewrites-cpu): sessions run
// interleaved round by round, one untimed round first (the first run of each session allocates its buffers, and its
// outputs are handed to `first` for the exactness checks), then wall time and this process's CPU time per run.
import type * as ort from 'onnxruntime-node';

export interface Rounds {
  cpu: Map<string, number[]>;
  wall: Map<string, number[]>;
}

export async function timeRounds(
  sessions: [string, ort.InferenceSession][], feeds: Record<string, ort.Tensor>, rounds: number,
  first: (name: string, output: Float32Array) => void,
): Promise<Rounds> {
  const r: Rounds = { cpu: new Map(), wall: new Map() };
  for (let round = 0; round <= rounds; round++) {
    for (const [name, s] of sessions) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const out = await s.run(feeds);
      const t = performance.now() - t0;
      const c = process.cpuUsage(c0);
      if (round === 0) {
        first(name, out[s.outputNames[0]].data as Float32Array);
        continue;
      }
      (r.wall.get(name) ?? r.wall.set(name, []).get(name)!).push(t);
      (r.cpu.get(name) ?? r.cpu.set(name, []).get(name)!).push((c.user + c.system) / 1000);
    }
  }
  return r;
}

export const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)];

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
