// Number formatting for the dashboard. Pure.
import type { Dim } from '../../src/shared/analysis-report';

const UNITS = ['', 'K', 'M', 'G', 'T', 'P'];

/** 1234567 → "1.23M"; keeps three significant digits. */
export function count(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  let v = Math.abs(n);
  let u = 0;
  while (v >= 1000 && u < UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  const digits = v >= 100 || u === 0 ? 0 : v >= 10 ? 1 : 2;
  return `${n < 0 ? '-' : ''}${v.toFixed(digits)}${UNITS[u]}`;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

export function ms(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return n >= 100 ? `${n.toFixed(0)} ms` : n >= 10 ? `${n.toFixed(1)} ms` : `${n.toFixed(2)} ms`;
}

export function pct(n: number | null | undefined, digits = 1): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return `${(100 * n).toFixed(digits)}%`;
}

export function ratio(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  if (!Number.isFinite(n)) return '∞';
  return `${n.toFixed(n >= 10 ? 1 : 2)}×`;
}

/** Small or large values in exponent form, others with `digits` decimals. */
export function num(n: number | null | undefined, digits = 4): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  if (!Number.isFinite(n)) return n > 0 ? '∞' : '-∞';
  if (n !== 0 && (Math.abs(n) < 10 ** -digits || Math.abs(n) >= 1e6)) return n.toExponential(2);
  return n.toFixed(digits);
}

/** Relative change: "−75.0%" / "+3.2%" / "no change". */
export function change(before: number, after: number): string {
  if (before === after) return 'no change';
  if (before === 0) return after > 0 ? 'new' : '–';
  const r = (after - before) / before;
  return `${r > 0 ? '+' : '−'}${Math.abs(100 * r).toFixed(1)}%`;
}

export function shape(dims: Dim[]): string {
  return `[${dims.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}
