// The two inner loops of the dictionary fit as WebAssembly SIMD (f64x2), because plain JavaScript runs them at a few
// hundred million multiply-adds a second and a 7B model's fit needs about 50 billion: the Gram matrix of 32 layers of
// 16.7 M weights per kind (L²N/2), then the atoms (rank·L·N). The project has no compiler for WebAssembly, so the
// module is assembled here from its opcodes (spec: https://webassembly.github.io/spec/core/binary/).
//
// Rows are float32, as weights are stored (half the bytes to move); every product and sum is float64.
// - gram24(a0, a1, b0, b1, b2, b3, bytes, out): the 2×4 dot products of rows a0, a1 with rows b0…b3 (`bytes` long, a
//   multiple of 8) written to out[0..7] as float64. Each lane sums every other element; the lanes are added last.
// - atoms4(x, stride, L, w, bytes, out, outStride, sig): for four atoms p at once, out_p[k] = σ_p · Σ_l w(l,p)·x_l[k],
//   the sum in order of l, each element on its own (so it equals the scalar loop exactly). x_l = x + l·stride (float32),
//   out_p = out + p·outStride (float64); w holds (l, p) as f64x2 splats, sig the four σ likewise.
//
// `wasmKernels()` is null where WebAssembly SIMD is missing; callers then use their JavaScript loops.

export interface WasmKernels {
  memory: WebAssembly.Memory;
  gram24(a0: number, a1: number, b0: number, b1: number, b2: number, b3: number, bytes: number, out: number): void;
  atoms4(x: number, stride: number, L: number, w: number, bytes: number, out: number, outStride: number, sig: number): void;
}

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
/** Signed LEB128, as i32.const takes it (64 is 0xC0 0x00: a lone 0x40 would be -64). */
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
};
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'ascii')];

const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  i32: (v: number) => [0x41, ...sleb(v)],
  add: [0x6a],
  mul: [0x6c],
  shl: [0x74],
  ltU: [0x49],
  eqz: [0x45],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (d: number) => [0x0c, ...uleb(d)],
  brIf: (d: number) => [0x0d, ...uleb(d)],
  f64store: (offset: number) => [0x39, 3, ...uleb(offset)],
  f64add: [0xa0],
  vload: (offset: number) => [0xfd, ...uleb(0), 3, ...uleb(offset)],
  /** Two float32 at the address, widened to f64x2 (v128.load64_zero, then f64x2.promote_low_f32x4). */
  load2f32: (offset: number) => [0xfd, ...uleb(93), 2, ...uleb(offset), 0xfd, ...uleb(95)],
  vstore: (offset: number) => [0xfd, ...uleb(11), 3, ...uleb(offset)],
  vzero: [0xfd, ...uleb(12), ...new Array<number>(16).fill(0)],
  lane: (i: number) => [0xfd, ...uleb(33), i], // f64x2.extract_lane
  vadd: [0xfd, ...uleb(240)], // f64x2.add
  vmul: [0xfd, ...uleb(242)], // f64x2.mul
};

/** `while (counter < limit) { body; counter += step }` */
function whileLess(counter: number, limit: number, step: number, body: number[]): number[] {
  return [
    ...op.block, ...op.loop,
    ...op.get(counter), ...op.get(limit), ...op.ltU, ...op.eqz, ...op.brIf(1),
    ...body,
    ...op.get(counter), ...op.i32(step), ...op.add, ...op.set(counter),
    ...op.br(0),
    ...op.end, ...op.end,
  ];
}

function gram24(): number[] {
  // params 0-7: a0 a1 b0 b1 b2 b3 bytes out; locals: 8 k, 9 x0, 10 x1, 11 y, 12-19 acc[p][q]
  const [k, x0, x1, y] = [8, 9, 10, 11];
  const acc = (p: number, q: number) => 12 + p * 4 + q;
  const load = (row: number) => [...op.get(row), ...op.get(k), ...op.add, ...op.load2f32(0)];
  const body: number[] = [...load(0), ...op.set(x0), ...load(1), ...op.set(x1)];
  for (let q = 0; q < 4; q++) {
    body.push(...load(2 + q), ...op.set(y));
    for (const [p, x] of [[0, x0], [1, x1]]) body.push(...op.get(acc(p, q)), ...op.get(x), ...op.get(y), ...op.vmul, ...op.vadd, ...op.set(acc(p, q)));
  }
  const code = whileLess(k, 6, 8, body);
  for (let p = 0; p < 2; p++) {
    for (let q = 0; q < 4; q++) code.push(...op.get(7), ...op.get(acc(p, q)), ...op.lane(0), ...op.get(acc(p, q)), ...op.lane(1), ...op.f64add, ...op.f64store((p * 4 + q) * 8));
  }
  return [...vec([[1, I32], [11, V128]]), ...code, ...op.end];
}

function atoms4(): number[] {
  // params 0-7: x stride L w bytes out outStride sig; locals: 8 k, 9 l, 10 xa, 11 wa, 12-15 acc[p], 16 xv
  const [x, stride, L, w, bytes, out, outStride, sig] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [k, l, xa, wa, xv] = [8, 9, 10, 11, 16];
  const acc = (p: number) => 12 + p;
  const inner: number[] = [...op.get(xa), ...op.load2f32(0), ...op.set(xv)];
  for (let p = 0; p < 4; p++) inner.push(...op.get(acc(p)), ...op.get(xv), ...op.get(wa), ...op.vload(p * 16), ...op.vmul, ...op.vadd, ...op.set(acc(p)));
  inner.push(...op.get(xa), ...op.get(stride), ...op.add, ...op.set(xa), ...op.get(wa), ...op.i32(64), ...op.add, ...op.set(wa));
  const body: number[] = [];
  for (let p = 0; p < 4; p++) body.push(...op.vzero, ...op.set(acc(p)));
  body.push(...op.i32(0), ...op.set(l), ...op.get(x), ...op.get(k), ...op.add, ...op.set(xa), ...op.get(w), ...op.set(wa));
  body.push(...whileLess(l, L, 1, inner));
  for (let p = 0; p < 4; p++) {
    // out_p + 2k: the output is float64, twice as wide as the float32 input
    body.push(...op.get(out), ...op.get(outStride), ...op.i32(p), ...op.mul, ...op.add, ...op.get(k), ...op.i32(1), ...op.shl, ...op.add);
    body.push(...op.get(acc(p)), ...op.get(sig), ...op.vload(p * 16), ...op.vmul, ...op.vstore(0));
  }
  return [...vec([[4, I32], [5, V128]]), ...whileLess(k, bytes, 8, body), ...op.end];
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const fn = (params: number) => [0x60, ...vec(new Array<number[]>(params).fill([I32])), ...vec([])];
  const types = section(1, vec([fn(8), fn(8)]));
  const funcs = section(3, vec([[0], [1]]));
  const memory = section(5, vec([[0x00, 1]]));
  const exports = section(7, vec([[...name('memory'), 0x02, 0], [...name('gram24'), 0x00, 0], [...name('atoms4'), 0x00, 1]]));
  const bodies = [gram24(), atoms4()].map((b) => [...uleb(b.length), ...b]);
  const code = section(10, vec(bodies));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...types, ...funcs, ...memory, ...exports, ...code]);
}

let cached: WasmKernels | null | undefined;

/** The kernels (one instance per thread), or null where this runtime has no WebAssembly SIMD. */
export function wasmKernels(): WasmKernels | null {
  if (cached !== undefined) return cached;
  const bytes = moduleBytes();
  if (typeof WebAssembly === 'undefined' || !WebAssembly.validate(bytes)) return (cached = null);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes));
  return (cached = instance.exports as unknown as WasmKernels);
}

/** The kernels' memory with at least `bytes` bytes. */
export function ensureMemory(k: WasmKernels, bytes: number): void {
  const have = k.memory.buffer.byteLength;
  if (have < bytes) k.memory.grow(Math.ceil((bytes - have) / 65536));
}
