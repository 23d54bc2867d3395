// `dictionary s` (methods.md; MASA, "Share Your Attention"): for each projection kind (Q, K, V, O), the L layers'
// matrices are written as W(l) = Σₐ c(l,a)·D(a) over s shared atoms. The atoms and coefficients come from the SVD of
// the stacked, flattened matrices M (L × in·out): D(a) = σₐ·vₐ (the a-th right singular vector, scaled) and
// c(l,a) = U(l,a), the best rank-s fit in the least-squares sense. The file stores the atoms once per kind and s
// coefficients per layer; the graph rebuilds each weight at run time with a MatMul (coefficients × atoms) and a
// Reshape (and a Concat for packed QKV weights). With s = L the fit is exact.
//
// Matrices are grouped by kind and shape (a grouped-query model's K and V differ in shape from its Q); biases are
// left as they are. The fit streams the weights (dictionary-fit.ts): two passes over each kind's matrices, a few
// megabytes at a time, with the atoms written out as they are computed.
import { attr, type GraphBuilder } from '../../analysis/ir/builder';
import type { Value } from '../../analysis/ir/graph';
import { i64 } from '../../analysis/ir/tensor-data';
import { RuleError, siteById, type Rule, type RuleResult, type SiteChange } from '../rule';
import { cost, trackNodes } from '../prune/edit/report';
import { siteForm, siteStructure, StructureError, type SiteStructure } from '../prune/edit/structure';
import { decodeF32, encoder, rowReader } from '../prune/edit/mix';
import type { ResolvedProjection } from '../prune/edit/projection';
import { addWeight, setInput, type WeightDtype } from '../prune/edit/weights';
import { computeAtoms, fitDictionary, type FitSource } from './dictionary-fit';

export interface DictionaryParams {
  atoms: number;
}

const NAME = 'dictionary';
type Kind = 'q' | 'k' | 'v' | 'o';

/** One layer's matrix of one kind, as the weight input stores it (or its slice of a packed weight). */
interface Entry {
  site: number;
  s: SiteStructure;
  kind: Kind;
  proj: ResolvedProjection;
  stored: Region;
}

/** Rows [r0, r0 + rows) and columns [c0, c0 + cols) of a projection's weight in its node's layout. */
interface Region {
  proj: ResolvedProjection;
  r0: number;
  rows: number;
  c0: number;
  cols: number;
}

export const dictionary: Rule<DictionaryParams> = {
  name: NAME,
  family: 'shared',
  editsProjections: true,
  summary: 'Q/K/V/O weights of all layers as combinations of s shared atoms (SVD fit)',
  validate(params) {
    const s = params?.atoms;
    if (!Number.isInteger(s) || s < 1) throw new RuleError(NAME, `the number of atoms must be a positive integer, got ${String(s)}`);
  },
  skipReason(site) {
    if (!siteForm(site.form)) return `${site.form} sites are not supported`;
    if (!site.projections.q || !site.projections.k || !site.projections.v) return 'its Q, K and V projections were not all found';
    return null;
  },
  apply(ctx, siteIds, params): RuleResult {
    const warnings: string[] = [];
    const nodes = trackNodes(ctx.builder);
    const entries: Entry[] = [];
    const structures = new Map<number, SiteStructure>();
    for (const id of siteIds) {
      const { info, raw } = siteById(ctx, id);
      let s: SiteStructure;
      try {
        s = siteStructure(ctx.builder.graph, raw, info);
      } catch (e) {
        if (e instanceof StructureError) throw new RuleError(NAME, `site ${id}: ${e.message}`);
        throw e;
      }
      structures.set(id, s);
      for (const kind of ['q', 'k', 'v', 'o'] as const) {
        const proj = s.proj[kind];
        if (!proj) continue;
        entries.push({ site: id, s, kind, proj, stored: storedSlice(s, kind, proj) });
      }
    }
    // Fit one dictionary per kind and shape.
    const groups = new Map<string, Entry[]>();
    for (const e of entries) {
      const key = `${e.kind}:${e.stored.rows}x${e.stored.cols}:${e.proj.dtype}`;
      groups.set(key, [...(groups.get(key) ?? []), e]);
    }
    const rebuilt = new Map<Entry, Value>();
    const perSite = new Map<number, { before: number; after: number; atoms: Record<string, number> }>();
    for (const [key, group] of groups) {
      const [kind, shape] = key.split(':');
      const L = group.length;
      const rank = Math.min(params.atoms, L);
      if (params.atoms >= L) warnings.push(`${kind.toUpperCase()} ${shape}: ${params.atoms} atoms for ${L} matrices is full rank (exact, nothing saved)`);
      const { rows, cols } = group[0].stored;
      const dtype: WeightDtype = group[0].proj.dtype;
      const sources = group.map((e) => regionSource(e.stored));
      const options = { align: cols, checkpoint: ctx.builder.checkpoint };
      const fitted = fitDictionary(sources, rank, options);
      const es = dtype === 'float16' ? 2 : 4;
      const n = rows * cols;
      const encode = encoder(dtype);
      const atomsValue = ctx.builder.computedInitializer(ctx.builder.uniqueName(`dictionary.${kind}.${shape}.atoms`), dtype, [rank, n], (write) =>
        computeAtoms(sources, fitted, (a, at, values) => write((a * n + at) * es, encode(values)), options),
      );
      const coefficients = fitted.coefficients;
      const target = ctx.builder.initializer(ctx.builder.uniqueName(`dictionary.${kind}.${shape}.shape`), [2], i64([rows, cols]));
      group.forEach((e, l) => {
        const base = `${e.s.anchor.name}::${NAME}/${kind}`;
        const coef = addWeight(ctx.builder, `${base}_coefficients`, [1, rank], coefficients.subarray(l * rank, (l + 1) * rank), dtype);
        const flat = ctx.builder.op('MatMul', [coef, atomsValue], { name: `${base}_combine` });
        rebuilt.set(e, ctx.builder.op('Reshape', [flat, target], { name: `${base}_weight` }));
        const stat = perSite.get(e.site) ?? { before: 0, after: 0, atoms: {} };
        // Stored per site after the rewrite: its own coefficients plus an equal share of the kind's atoms.
        stat.before += rows * cols;
        stat.after += rank + (rank * rows * cols) / L;
        stat.atoms[kind] = rank;
        perSite.set(e.site, stat);
      });
    }
    // Point every projection at its rebuilt weight (packed weights: the rebuilt parts concatenated).
    const byNode = new Map<ResolvedProjection['node'], Entry[]>();
    for (const e of entries) byNode.set(e.proj.node, [...(byNode.get(e.proj.node) ?? []), e]);
    for (const [node, list] of byNode) {
      const p = list[0].proj;
      let weight: Value;
      if (list.length === 1) weight = rebuilt.get(list[0])!;
      else {
        const parts = list.map((e) => ({ e, start: e.s.packed!.parts.find((x) => x.role === e.kind)!.start })).sort((a, b) => a.start - b.start);
        weight = ctx.builder.op('Concat', parts.map((x) => rebuilt.get(x.e)!), {
          name: `${list[0].s.anchor.name}::${NAME}/qkv_weight`,
          attrs: { axis: attr.int(p.outIn ? 0 : 1) },
        });
      }
      setInput(node, p.weightInput, weight);
    }
    ctx.builder.removeUnused();
    const counted = nodes();
    const changes: SiteChange[] = siteIds.map((id, i) => {
      const s = structures.get(id)!;
      const stat = perSite.get(id) ?? { before: 0, after: 0, atoms: {} };
      const c = cost(s.heads, s.headDim, s.vHeadDim, ctx.seqLen);
      return {
        site: id,
        before: { weightParams: stat.before },
        after: { weightParams: Math.round(stat.after), atoms: stat.atoms },
        flopsBefore: c.flops,
        flopsAfter: c.flops,
        bytesBefore: c.bytes,
        bytesAfter: c.bytes,
        // The rebuild nodes of all sites are counted once, on the first site.
        nodesAdded: i === 0 ? counted.nodesAdded : 0,
        nodesRemoved: i === 0 ? counted.nodesRemoved : 0,
      };
    });
    return { changes, warnings };
  },
};

/** The kind's matrix in the layout the weight input stores it, cut out of a packed weight where needed. */
function storedSlice(s: SiteStructure, kind: Kind, p: ResolvedProjection): Region {
  const whole = { proj: p, r0: 0, rows: p.weight.rows, c0: 0, cols: p.weight.cols };
  if (kind === 'o' || !s.packed) return whole;
  const part = s.packed.parts.find((x) => x.role === kind)!;
  // Features are rows of an [out, in] weight and columns of an [in, out] one.
  return p.outIn ? { ...whole, r0: part.start, rows: part.end - part.start } : { ...whole, c0: part.start, cols: part.end - part.start };
}

/** The region flattened row by row, read in pieces (whole rows of the weight, then the region's columns). */
function regionSource(r: Region): FitSource {
  const dtype = r.proj.dtype;
  const es = dtype === 'float16' ? 2 : 4;
  const read = rowReader(r.proj.weight, es);
  const width = r.proj.weight.cols;
  const whole = r.c0 === 0 && r.cols === width;
  let scratch = new Uint8Array(0);
  return {
    length: r.rows * r.cols,
    read(offset, into) {
      const n = into.length;
      if (whole && dtype === 'float32' && !r.proj.weight.transposed && !r.proj.weight.select) {
        // Whole rows of a float32 weight are contiguous: read them straight into place.
        r.proj.weight.tensor.readInto((r.r0 * width + offset) * 4, new Uint8Array(into.buffer, into.byteOffset, into.byteLength));
        return;
      }
      const first = Math.floor(offset / r.cols);
      const last = Math.floor((offset + n - 1) / r.cols);
      const bytes = (last - first + 1) * width * es;
      if (scratch.length < bytes) scratch = new Uint8Array(bytes);
      const all = decodeF32(read(r.r0 + first, last - first + 1, scratch), dtype);
      for (let row = first, done = 0; done < n; row++) {
        const from = row === first ? offset % r.cols : 0;
        const take = Math.min(r.cols - from, n - done);
        const at = (row - first) * width + r.c0 + from;
        into.set(all.subarray(at, at + take), done);
        done += take;
      }
    },
  };
}
