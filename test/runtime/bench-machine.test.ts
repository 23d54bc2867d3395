// The machine every benchmark names: on Linux also the CPU family and the vector extensions that select onnxruntime's
// kernels, read from /proc/cpuinfo (the model string alone, "AMD EPYC", hid a change from AVX2 to AVX-512 cores).
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { describe, expect, it } from 'vitest';
import { describeMachine } from '../../bench/machine';

describe('describeMachine', () => {
  it('names the cores, and where /proc/cpuinfo exists the family and the vector extensions it lists', () => {
    const m = describeMachine();
    expect(m.cores).toBe(cpus().length);
    expect(m.memoryGB).toBeGreaterThan(0);
    if (!existsSync('/proc/cpuinfo')) return;
    const flags = /^(flags|Features)\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[2].split(/\s+/) ?? [];
    // Every extension named is one the CPU lists, and the ones the kernels dispatch on are not missed.
    expect(m.vectorIsa?.filter((f) => !flags.includes(f))).toEqual([]);
    expect(m.vectorIsa).toEqual(expect.arrayContaining(['avx2', 'avx512f', 'amx_tile', 'neon'].filter((f) => flags.includes(f))));
    if (process.arch === 'x64') expect(m.cpuFamily).toMatch(/family \d+ model \d+$/);
  });
});
