// Byte-level mutations: what a damaged download, a bad disk or a hostile file does to a model without knowing its
// format. Most of a model file is weights (raw_data), where a flipped bit changes a number and nothing else, so
// positions are biased towards the head of the file (the graph's nodes, which exporters write first) and its tail
// (inputs, outputs, value_info and opset imports, written last).
import type { Rng } from './rng';

const HEAD = 64 * 1024;
const TAIL = 8 * 1024;

function position(rng: Rng, length: number): number {
  if (length <= 1) return 0;
  const r = rng.next();
  if (r < 0.45) return rng.int(Math.min(length, HEAD));
  if (r < 0.7) return Math.max(0, length - 1 - rng.int(Math.min(length, TAIL)));
  return rng.int(length);
}

type ByteMutation = (rng: Rng, b: Uint8Array) => { bytes: Uint8Array; what: string };

/** The parts one after another in one array. */
export const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

const MUTATIONS: (readonly [ByteMutation, number])[] = [
  [(rng, b) => {
    const out = b.slice();
    const n = rng.range(1, 8);
    for (let i = 0; i < n; i++) out[position(rng, out.length)] ^= 1 << rng.int(8);
    return { bytes: out, what: `flip ${n} bit(s)` };
  }, 4],
  [(rng, b) => {
    const at = rng.chance(0.3) ? rng.int(Math.min(b.length, 256)) : position(rng, b.length);
    return { bytes: b.slice(0, at), what: `truncate to ${at} bytes` };
  }, 2],
  [(rng, b) => {
    const at = position(rng, b.length);
    const n = rng.range(1, 16);
    return { bytes: concat(b.subarray(0, at), rng.bytes(n), b.subarray(at)), what: `insert ${n} random byte(s) at ${at}` };
  }, 2],
  [(rng, b) => {
    const at = position(rng, b.length);
    const n = rng.range(1, 64);
    return { bytes: concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + n))), what: `delete ${n} byte(s) at ${at}` };
  }, 2],
  [(rng, b) => {
    // A piece of the file copied elsewhere: well-formed protobuf fragments in the wrong place.
    const from = position(rng, b.length);
    const n = rng.range(1, 512);
    const piece = b.slice(from, from + n);
    const to = position(rng, b.length);
    const replace = rng.chance(0.5);
    const bytes = replace ? concat(b.subarray(0, to), piece, b.subarray(Math.min(b.length, to + piece.length))) : concat(b.subarray(0, to), piece, b.subarray(to));
    return { bytes, what: `splice ${piece.length} byte(s) from ${from} ${replace ? 'over' : 'into'} ${to}` };
  }, 2],
  [(rng, b) => {
    const out = b.slice();
    const at = position(rng, out.length);
    const v = rng.pick([0x00, 0xff, 0x7f, 0x80, 0x01, 0x0a, 0x12]);
    if (out.length) out[at] = v;
    return { bytes: out, what: `set byte ${at} to 0x${v.toString(16)}` };
  }, 2],
  [(rng, b) => {
    // A length or count varint that claims far more than the file holds (or overflows 64 bits).
    const at = position(rng, b.length);
    const bomb = rng.pick([[0xff, 0xff, 0xff, 0xff, 0x0f], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]]);
    return { bytes: concat(b.subarray(0, at), Uint8Array.from(bomb), b.subarray(at + 1)), what: `varint bomb at ${at}` };
  }, 1],
];

/** One to three byte-level mutations. */
export function mutateBytes(rng: Rng, bytes: Uint8Array): { bytes: Uint8Array; what: string[] } {
  const what: string[] = [];
  let out = bytes;
  const n = rng.weighted([[1, 6], [2, 3], [3, 1]] as const);
  for (let i = 0; i < n; i++) {
    const r = rng.weighted(MUTATIONS)(rng, out);
    out = r.bytes;
    what.push(r.what);
  }
  return { bytes: out, what };
}
