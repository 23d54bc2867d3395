// Before any rule runs, sites written in a layout other than the standard one are rewritten into it (exactly), so
// that every rule reads one form. A site that cannot be re-laid out keeps its form and the reason is returned.
import type { RawSite } from '../../analysis/attention/site';
import { ShapeInfo } from '../../analysis/ir/shapes';
import type { GraphBuilder } from '../../analysis/ir/builder';
import type { SiteInfo } from '../../analysis/report/types';
import { LayoutError } from './score-operands';
import { nonStandardLayout, toStandardLayout } from './standard';
import { unpackProjection } from './unpack';

export interface Normalized {
  /** Site ids rewritten into the standard layout, with the layout they had. */
  sites: { id: number; from: string }[];
  /** Sites that kept their form but whose packed Q, K and V projection was split into three (unpack.ts). */
  unpacked: { id: number; why: string }[];
  /** Sites left as they were, with the reason. */
  kept: string[];
}

export function normalizeLayouts(b: GraphBuilder, raws: RawSite[], infos: SiteInfo[]): Normalized {
  const out: Normalized = { sites: [], unpacked: [], kept: [] };
  // The shapes before any site is rewritten: a rewritten site's output carries fewer named dimensions, and a later
  // site's Reshapes on its scores are judged by the dimensions the exporter wrote.
  const before = new ShapeInfo(b.model.graph);
  infos.forEach((info, i) => {
    const from = nonStandardLayout(info);
    if (!from) return;
    try {
      toStandardLayout(b, raws[i], info, before);
      out.sites.push({ id: info.id, from });
    } catch (e) {
      if (!(e instanceof LayoutError)) throw e;
      const why = e.message;
      try {
        // The head rewrites need only Q, K and V projections of their own, which a packed site can have as it is.
        unpackProjection(b, raws[i], info, before);
        out.unpacked.push({ id: info.id, why });
      } catch (u) {
        if (!(u instanceof LayoutError)) throw u;
        out.kept.push(`site ${info.id} (${from}) kept its layout: ${why}`);
      }
    }
  });
  if (out.sites.length || out.unpacked.length || out.kept.length) {
    b.removeUnused();
    b.sort();
  }
  return out;
}
