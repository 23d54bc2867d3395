// protobufjs decodes int64 as Long objects (when the `long` package is present) or as numbers. Shapes, attribute ints
// and offsets in real models fit in 53 bits except sentinels such as INT64_MAX in Slice ends, which we clamp.
export type IntLike = number | { toNumber(): number } | string | bigint | null | undefined;

export function toNum(v: IntLike): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') return Number(v);
  return v.toNumber();
}
