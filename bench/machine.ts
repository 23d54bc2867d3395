// What every benchmark names as its machine. The CPU's model string alone is not enough: this project's shared VMs all
// report "AMD EPYC", but the one of 2026-12-02 was a Zen 5 with AVX-512 (what the earlier ones were was not recorded),
// and onnxruntime's MLAS kernels (the products and the flash attention kernel) take different code paths by vector
// extension, so results compare only on the same family, model and extensions. Linux names them in /proc/cpuinfo;
// elsewhere they are left out.
import { readFileSync } from 'node:fs';
import { cpus, platform, totalmem } from 'node:os';

export interface Machine {
  platform: string;
  cpu: string | undefined;
  cores: number;
  memoryGB: number;
  node: string;
  /** x86 family and model numbers (e.g. AMD family 26 = Zen 5), where the OS says. */
  cpuFamily?: string;
  /** The vector extensions the kernels dispatch on, of those present: avx2, avx512f, avx512_bf16, amx_tile, ... */
  vectorIsa?: string[];
}

const ISA = ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx512_bf16', 'avx_vnni', 'amx_tile', 'amx_bf16', 'neon', 'asimd', 'sve'];

export function describeMachine(): Machine {
  const cpu = cpus();
  const m: Machine = { platform: `${platform()} ${process.arch}`, cpu: cpu[0]?.model.trim(), cores: cpu.length, memoryGB: Math.round(totalmem() / 2 ** 30), node: process.version };
  return { ...m, ...cpuInfo() };
}

function cpuInfo(): Pick<Machine, 'cpuFamily' | 'vectorIsa'> {
  let text: string;
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return {};
  }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const flags = new Set((field('flags') ?? field('Features') ?? '').split(/\s+/));
  const family = field('cpu family');
  const model = field('model');
  return {
    ...(family !== undefined ? { cpuFamily: `${field('vendor_id') ?? ''} family ${family} model ${model ?? '?'}`.trim() } : {}),
    vectorIsa: ISA.filter((f) => flags.has(f)),
  };
}
