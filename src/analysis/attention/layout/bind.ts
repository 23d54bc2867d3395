// Binds the named dimensions of an attention site — batch, query heads, KV heads, query and key positions, head
// sizes — across Q, K, V, the scores and the output, and derives the head map: which output features of each
// projection belong to which head, which rows of the output projection read each head, and which KV head each query
// head reads. Heads are numbered in the order of their columns in the Q weight (as the model code numbers them).
// A site whose bindings contradict each other is reported as such, so it goes to `unmatched` instead of a wrong number.
import type { Node, Value } from '../../ir/graph';
import type { Dim, HeadColumns, SiteBinding } from '../../report/types';
import { attrInt, type Ctx } from '../match';
import type { Trace } from '../trace';
import { axisSize, type Factor, type Layout } from './factors';
import { layoutBack, layoutForward, projectionLayout } from './walk';
import { einsumCore, matMulCore, type Core, type Side } from './core';

/** The layout of every value the walks went through (Q, K, V paths and the way to the output projection). */
export type Layouts = Map<Value, Layout>;

export type BindResult = { ok: true; binding: SiteBinding; layouts: Layouts } | { ok: false; reason: string; contradiction: boolean };

const soft = (reason: string): BindResult => ({ ok: false, reason, contradiction: false });
const hard = (reason: string): BindResult => ({ ok: false, reason, contradiction: true });

export interface BindInput {
  qk: Node;
  pv: Node;
  q: Trace;
  k: Trace;
  v: Trace;
  qIn: Value;
  kIn: Value;
  vIn: Value;
  /** Ops from the core's output to the output projection (exclusive), and that projection's node name. */
  outChain: Node[];
  oNode?: string;
  /** The scores to check against the bound dimensions (default: Q·Kᵀ's output); null: none are the whole site's (a
   * per-head plan computes each head group's scores apart). */
  scores?: Value | null;
}

interface Role {
  layout: Layout;
  node: string;
}

function roleLayout(ctx: Ctx, t: Trace, start: Value, name: string, record: Layouts): { ok: true; role: Role } | { ok: false; reason: string } {
  if (!t.projection || !t.projectionOut) return { ok: false, reason: `${name} has no projection` };
  const init = projectionLayout(ctx, t.projectionOut, t.activation);
  if (!init.ok) return init;
  const l = layoutBack(ctx, start, t.projectionOut, init.value, record);
  if (!l.ok) return { ok: false, reason: `${name}: ${l.reason}` };
  return { ok: true, role: { layout: l.value, node: t.projection.node } };
}

const meaningful = (fs: Factor[]) => fs.filter((f) => f.size !== 1);
const isHeadFactor = (f: Factor) => f.kind === 'feature' || f.kind === 'repeat';

export function bindSite(ctx: Ctx, s: BindInput): BindResult {
  if (s.qk.opType === 'FusedMatMul' && attrInt(s.qk, 'transA') === 1) return soft('Q·Kᵀ transposes Q');
  const kTransB = s.qk.opType === 'FusedMatMul' && attrInt(s.qk, 'transB') === 1;
  if (s.pv.opType === 'FusedMatMul' && (attrInt(s.pv, 'transA') === 1 || attrInt(s.pv, 'transB') === 1)) return soft('P·V transposes an operand');
  const layouts: Layouts = new Map();
  const q = roleLayout(ctx, s.q, s.qIn, 'Q', layouts);
  const k = roleLayout(ctx, s.k, s.kIn, 'K', layouts);
  const v = roleLayout(ctx, s.v, s.vIn, 'V', layouts);
  if (!q.ok) return soft(q.reason);
  if (!k.ok) return soft(k.reason);
  if (!v.ok) return soft(v.reason);
  const core = s.qk.opType === 'Einsum' || s.pv.opType === 'Einsum' ? einsumCore(ctx, s, q.role.layout, k.role.layout, v.role.layout, kTransB) : matMulCore(q.role.layout, k.role.layout, v.role.layout, kTransB);
  if (!core.ok) return soft(core.reason);
  return interpret(ctx, s, q.role, k.role, v.role, core.value, layouts);
}

function interpret(ctx: Ctx, s: BindInput, q: Role, k: Role, v: Role, core: Core, layouts: Layouts): BindResult {
  const { qs, ks, vs, qb, kb, vb } = core;
  const d = featureRun(qs.cols);
  const dk = featureRun(ks.cols);
  const dv = featureRun(vs.cols);
  if (!d || !dk || !dv) return soft('the head size of Q, K or V is not one run of features');
  if (d.size !== dk.size) return hard(`Q's head size ${d.size} differs from K's ${dk.size}`);
  if (!tokensOnly(qs.rows) || !tokensOnly(ks.rows) || !tokensOnly(vs.rows)) return soft('a positions axis holds features');
  const heads = pairHeads(qb, kb, vb, q.layout.offset, k.layout.offset, v.layout.offset);
  if (!heads.ok) return heads.contradiction ? hard(heads.reason) : soft(heads.reason);
  const { qBase, kBase, vBase } = heads;
  const qRank = ranks(qBase);
  if (qRank.size !== qBase.length) return hard('two query heads read the same Q columns');
  const kRank = ranks(kBase);
  const vRank = ranks(vBase);
  const H = qBase.length;
  const qToKv = new Array<number>(H);
  const qToV = new Array<number>(H);
  qBase.forEach((b, i) => {
    qToKv[qRank.get(b)!] = kRank.get(kBase[i])!;
    qToV[qRank.get(b)!] = vRank.get(vBase[i])!;
  });
  if (qToKv.some((x, h) => x !== qToV[h])) return hard('K and V group the query heads differently');
  const kvHeads = kRank.size;
  if (H % kvHeads !== 0) return hard(`${kvHeads} KV heads do not divide ${H} query heads`);
  const scoreCheck = s.scores === null ? undefined : checkScores(ctx, s.scores ?? s.qk.outputs[0], qb, ks);
  if (scoreCheck) return hard(scoreCheck);
  const out = outputRows(ctx, s, qb, qs.rows, q.layout.offset, qRank, dv.size, layouts, core.outOrder);
  const windows = windowParts(qb, qs.rows);
  const tokens = tokenAxes(ctx, s, qb, kb, vb, qs, ks, vs, out.ok ? out.tokens : undefined);
  const label = (f: Factor) => (f.kind !== 'token' ? 'head' : windows.has(f) ? 'window' : 'batch');
  return {
    ok: true,
    layouts,
    binding: {
      batch: tokenSize(qb.map((a) => a.filter((f) => !windows.has(f)))),
      ...(windows.size ? { windows: tokenSize([[...windows]]) } : {}),
      heads: H,
      kvHeads,
      headDim: d.size,
      vHeadDim: dv.size,
      queryPositions: axisSize(qs.rows),
      keyPositions: axisSize(ks.rows),
      scoreAxes: scoreAxes(qb, label),
      qToKv,
      q: headColumns(q.node, sortedBases(qRank), d.offsets),
      k: headColumns(k.node, sortedBases(kRank), dk.offsets),
      v: headColumns(v.node, sortedBases(vRank), dv.offsets),
      ...(out.ok ? { o: out.value } : { oUnbound: out.reason }),
      ...(tokens ? { tokens } : {}),
      ...(core.equations ? { einsum: core.equations } : {}),
    },
  };
}

/**
 * What each axis of the scores holds. An exporter given a fixed batch of 1 leaves that axis without a factor (a size-1
 * axis carries no index); when no other leading axis holds the batch, the first such axis is that batch of one.
 */
function scoreAxes(qb: Factor[][], label: (f: Factor) => 'batch' | 'window' | 'head'): SiteBinding['scoreAxes'] {
  const lead = qb.map((a) => meaningful(a).map(label));
  if (!lead.some((a) => a.includes('batch'))) {
    const empty = lead.findIndex((a) => a.length === 0);
    if (empty === 0) lead[0] = ['batch'];
  }
  return [...lead, ['query'], ['key']];
}

type Token = Extract<Factor, { kind: 'token' }>;
const isPart = (f: Factor): f is Token & { stride: number } => f.kind === 'token' && f.stride !== undefined;
const sameAxis = (a: Token, b: Token) => a.source === b.source && a.axis === b.axis;

/**
 * Token factors of Q's leading axes that are outer parts of the activation axis Q's positions were cut from: the
 * windows of windowed attention ([batch, windows, heads, positions in a window, head size]).
 */
function windowParts(qb: Factor[][], rows: Factor[]): Set<Factor> {
  const cut = meaningful(rows).filter(isPart);
  return new Set(qb.flat().filter((f) => isPart(f) && cut.some((r) => sameAxis(r, f))));
}

/** One head's features: the offsets of its columns relative to the head's first column, in index order. */
function featureRun(fs: Factor[]): { size: number; offsets: number[] } | undefined {
  const m = meaningful(fs);
  if (m.some((f) => f.kind !== 'feature')) return undefined;
  let offsets = [0];
  for (const f of m) {
    const stride = (f as { stride: number }).stride;
    const next: number[] = [];
    for (const o of offsets) for (let i = 0; i < (f.size as number); i++) next.push(o + i * stride);
    offsets = next;
  }
  return { size: offsets.length, offsets };
}

function tokensOnly(fs: Factor[]): boolean {
  return meaningful(fs).every((f) => f.kind === 'token');
}

function tokenSize(batch: Factor[][]): Dim {
  const t = meaningful(batch.flat()).filter((f) => f.kind === 'token');
  if (t.length === 0) return 1;
  if (t.length === 1) return t[0].size;
  return t.every((f) => typeof f.size === 'number') ? product(t) : null;
}

type Pairing = { ok: true; qBase: number[]; kBase: number[]; vBase: number[] } | { ok: false; reason: string; contradiction: boolean };

/**
 * Pairs the query heads with K's and V's head factors axis by axis (a size-1 axis of K or V broadcasts over Q's),
 * and returns, for every query head in Q's index order, the first column of it and of the K and V head it reads.
 */
function pairHeads(qb: Factor[][], kb: Factor[][], vb: Factor[][], qOff: number, kOff: number, vOff: number): Pairing {
  const qf: Factor[] = [];
  const kf: Factor[] = [];
  const vf: Factor[] = [];
  for (let i = 0; i < qb.length; i++) {
    const qa = meaningful(qb[i]).filter(isHeadFactor);
    if (meaningful(qb[i]).some((f) => f.kind !== 'token' && !isHeadFactor(f))) return { ok: false, reason: 'Q has an unexpected factor', contradiction: false };
    if (qa.some((f) => f.kind === 'repeat')) return { ok: false, reason: 'Q is repeated across heads', contradiction: true };
    const qn = product(qa);
    for (const [src, dst, name] of [[kb[i], kf, 'K'], [vb[i], vf, 'V']] as const) {
      const fa = meaningful(src).filter(isHeadFactor);
      const n = product(fa);
      if (n === qn) dst.push(...fa);
      else if (n === 1) dst.push({ kind: 'repeat', size: qn });
      else return { ok: false, reason: `${name} has ${n} heads on an axis where Q has ${qn}`, contradiction: true };
    }
    qf.push(...qa);
  }
  const H = product(qf);
  return { ok: true, qBase: bases(qf, H, qOff), kBase: bases(kf, H, kOff), vBase: bases(vf, H, vOff) };
}

function product(fs: Factor[]): number {
  return fs.reduce((n, f) => n * (f.size as number), 1);
}

/** First column of each linear index over the factors (major to minor); repeats have stride 0. */
function bases(fs: Factor[], n: number, offset: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let rest = i;
    let col = offset;
    for (let j = fs.length - 1; j >= 0; j--) {
      const f = fs[j];
      const size = f.size as number;
      const digit = rest % size;
      rest = Math.floor(rest / size);
      if (f.kind === 'feature' || f.kind === 'head') col += digit * f.stride;
    }
    out.push(col);
  }
  return out;
}

/** Each distinct first column's rank in column order: the head number. */
function ranks(b: number[]): Map<number, number> {
  const sorted = [...new Set(b)].sort((x, y) => x - y);
  return new Map(sorted.map((x, i) => [x, i]));
}

function sortedBases(r: Map<number, number>): number[] {
  return [...r.keys()].sort((x, y) => x - y);
}

function headColumns(node: string, starts: number[], offsets: number[]): HeadColumns {
  const contiguous = offsets.every((o, i) => o === i);
  return { node, starts, width: offsets.length, ...(contiguous ? {} : { offsets }) };
}

/** Score dims the shape inference knows must agree with the bound ones. */
function checkScores(ctx: Ctx, scores: Value, qb: Factor[][], ks: Side): string | undefined {
  const shape = ctx.shapes.shape(scores);
  if (!shape) return undefined;
  if (shape.length !== qb.length + 2) return `the scores have ${shape.length} axes, Q·Kᵀ gives ${qb.length + 2}`;
  for (let i = 0; i < qb.length; i++) {
    const want = axisSize(qb[i]);
    const got = shape[i];
    if (typeof want === 'number' && typeof got === 'number' && want !== got && want !== 1 && got !== 1) return `score axis ${i} is ${got}, the bound heads give ${want}`;
  }
  const t = axisSize(ks.rows);
  const got = shape[shape.length - 1];
  if (typeof t === 'number' && typeof got === 'number' && t !== got) return `the scores have ${got} keys, K has ${t}`;
  return undefined;
}

type Rows = { ok: true; value: HeadColumns; tokens: Factor[][] } | { ok: false; reason: string };

type TokenAxes = NonNullable<SiteBinding['tokens']>;

/**
 * Which activation axis is the batch and which the positions, for each projection (and the window size when the
 * positions axis is cut into windows of consecutive positions); undefined when the axes are not taken this directly.
 */
function tokenAxes(ctx: Ctx, s: BindInput, qb: Factor[][], kb: Factor[][], vb: Factor[][], qs: Side, ks: Side, vs: Side, outTokens: Factor[][] | undefined): TokenAxes | undefined {
  const one = (batch: Factor[][], rows: Factor[], t: Trace) => {
    const act = t.activation;
    const rank = ctx.shapes.shape(act)?.length;
    const b = meaningful(batch.flat()).filter((f): f is Token => f.kind === 'token');
    const r = meaningful(rows);
    if (act && rank === 3 && r.length === 0) return oneQuery(ctx, act, b);
    if (!act || !rank || r.length !== 1 || r[0].kind !== 'token' || r[0].source !== act.name) return undefined;
    const pos = r[0];
    // Positions cut into windows: the innermost part, with exactly one outer part (the windows) among the batch axes.
    const win = b.filter((f) => sameAxis(f, pos));
    if (pos.stride !== undefined && (pos.stride !== 1 || typeof pos.size !== 'number' || win.length !== 1 || win[0].stride !== pos.size)) return undefined;
    if (pos.stride === undefined && win.length) return undefined;
    const rest = b.filter((f) => !win.includes(f));
    if (rest.length > 1 || (rest[0] && (rest[0].source !== act.name || rest[0].stride !== undefined))) return undefined;
    const batchAxis = rest[0]?.axis ?? batchOfOne(ctx, act, pos.axis);
    return { ...(batchAxis !== undefined ? { batch: batchAxis } : {}), positions: pos.axis, rank, ...(win.length ? { window: pos.size as number } : {}) };
  };
  const q = one(qb, qs.rows, s.q);
  const k = one(kb, ks.rows, s.k);
  const v = one(vb, vs.rows, s.v);
  if (!q || !k || !v) return undefined;
  const out = outTokens && outputTokens(outTokens, qb, qs.rows);
  return { q, k, v, ...(out ? { out } : {}) };
}

/**
 * One query position (a learned pooling probe tiled to the batch, a decoding step exported with a fixed length): the
 * positions axis has no factor; it is the size-1 axis beside the batch and the features.
 */
function oneQuery(ctx: Ctx, act: Value, batch: Token[]): { batch: number; positions: number; rank: number } | undefined {
  if (batch.length !== 1 || batch[0].source !== act.name || batch[0].stride !== undefined) return undefined;
  const positions = [0, 1].find((a) => a !== batch[0].axis);
  return positions !== undefined && ctx.shapes.shape(act)?.[positions] === 1 ? { batch: batch[0].axis, positions, rank: 3 } : undefined;
}

/**
 * A [batch, positions, features] activation exported with a fixed batch of 1 has no batch factor: the one axis that is
 * neither the positions nor the projected features, when its size is 1.
 */
function batchOfOne(ctx: Ctx, act: Value, positions: number): number | undefined {
  const shape = ctx.shapes.shape(act);
  if (shape?.length !== 3) return undefined;
  const other = [0, 1].find((a) => a !== positions);
  return other !== undefined && shape[other] === 1 ? other : undefined;
}

/**
 * What each leading axis of the output projection's input holds: Q's batch or its positions (a positions axis that
 * was cut into windows counts as positions once its windows are merged back in front of it).
 */
function outputTokens(axes: Factor[][], qb: Factor[][], rows: Factor[]): ('batch' | 'positions')[][] | undefined {
  const qBatch = meaningful(qb.flat()).find((f): f is Token => f.kind === 'token' && f.stride === undefined);
  const qRow = meaningful(rows)[0] as Token;
  const out: ('batch' | 'positions')[][] = [];
  for (const a of axes) {
    const labels = meaningful(a).map((f) => {
      if (f.kind !== 'token') return undefined;
      if (qBatch && sameAxis(f, qBatch) && f.stride === undefined) return 'batch';
      if (!sameAxis(f, qRow)) return undefined;
      return f.stride === undefined || f.stride === 1 ? 'positions' : 'window';
    });
    const group: ('batch' | 'positions')[] = [];
    for (let i = 0; i < labels.length; i++) {
      const l = labels[i];
      if (l === undefined) return undefined;
      if (l === 'window') {
        if (labels[i + 1] !== 'positions') return undefined;
        continue; // the windows in front of their positions: the whole positions axis
      }
      group.push(l);
    }
    out.push(group);
  }
  return out;
}

/** Which input rows of the output projection carry each head: the core's output followed to that projection. */
function outputRows(ctx: Ctx, s: BindInput, qb: Factor[][], rows: Factor[], qOff: number, qRank: Map<number, number>, dv: number, layouts: Layouts, outOrder?: number[]): Rows {
  if (!s.oNode) return { ok: false, reason: 'no output projection' };
  const axes: Factor[][] = qb.map((a) => meaningful(a).map((f) => (f.kind === 'feature' ? { kind: 'head', size: f.size as number, stride: (f as { stride: number }).stride } : f)));
  axes.push(rows, [{ kind: 'dv', size: dv }]);
  const ordered = outOrder ? outOrder.map((i) => axes[i]) : axes;
  const l = layoutForward(ctx, s.outChain, { axes: ordered, offset: 0 }, layouts);
  if (!l.ok) return l;
  const last = meaningful(l.value.axes[l.value.axes.length - 1] ?? []);
  if (l.value.axes.slice(0, -1).some((a) => !tokensOnly(a))) return { ok: false, reason: 'heads are not merged into the last axis before the output projection' };
  if (last.some((f) => f.kind !== 'head' && f.kind !== 'dv')) return { ok: false, reason: 'the output projection reads other features' };
  const H = qRank.size;
  const starts = new Array<number>(H).fill(-1);
  const offsets: number[][] = Array.from({ length: H }, () => []);
  const n = product(last);
  for (let p = 0; p < n; p++) {
    let rest = p;
    let col = qOff;
    let d = 0;
    for (let j = last.length - 1; j >= 0; j--) {
      const f = last[j];
      const size = f.size as number;
      const digit = rest % size;
      rest = Math.floor(rest / size);
      if (f.kind === 'head') col += digit * f.stride;
      else d = digit;
    }
    const h = qRank.get(col);
    if (h === undefined) return { ok: false, reason: 'the output projection reads a head Q does not have' };
    offsets[h][d] = p;
  }
  for (let h = 0; h < H; h++) starts[h] = offsets[h][0];
  const rel = offsets[0].map((p) => p - starts[0]);
  const same = offsets.every((o) => o.every((p, i) => p - o[0] === rel[i]));
  if (!same) return { ok: false, reason: 'heads are merged in different orders' };
  return { ok: true, value: headColumns(s.oNode, starts, rel), tokens: l.value.axes.slice(0, -1) };
}
