// Attention maps: one site's probabilities per head as a heatmap, the head statistics, and a sparse pattern drawn over
// the map with its recall (the share of the attention mass that the pattern keeps).
import { h, table } from '../dom';
import { num, pct } from '../logic/format';
import type { AttentionMaps } from '../../src/protocol';
import { axisTicks, cellAt, colour, describeCell, drawablePattern, headRecalls, heatmapImage, maskedMass } from '../logic/heatmap';
import { patternOfSteps } from '../../src/shared/rule-steps';
import { unitsOf } from '../logic/units';
import { renderCalibration } from './calibration';
import type { ViewContext } from './context';

/** The dropdown's value for "no pattern" (FAST treats an empty option value as the option's text). */
const NONE = 'none';

export function renderMaps(root: HTMLElement, ctx: ViewContext): void {
  const session = ctx.state.session;
  const report = session?.report;
  root.append(h('h2', null, 'Attention maps'));
  if (!session || !report) {
    root.append(h('p', { class: 'empty' }, 'Maps are available once the model is analyzed.'));
    return;
  }
  if (report.sites.length === 0) {
    root.append(h('p', { class: 'empty' }, 'The model has no attention sites.'));
    return;
  }
  const ui = ctx.state.ui;
  const maps = session.maps;
  const site = ui.mapsSite ?? maps?.site ?? report.sites[0].id;
  const patterns = [...new Set([
    ...session.variants.map((v) => patternOfSteps(v.steps)),
    maps?.pattern ?? null,
    ui.mapsPattern,
  ].filter((p): p is string => !!p))];
  const pattern = ui.mapsPattern ?? NONE;

  root.append(h('div', { class: 'actions' },
    h('div', { class: 'field inline' },
      h('label', { for: 'maps-site' }, 'Site'),
      h('vscode-dropdown', { id: 'maps-site', on: { change: (e) => ctx.setUi({ mapsSite: Number((e.target as HTMLInputElement).value) }) } },
        ...report.sites.map((s) => h('vscode-option', { value: String(s.id), selected: s.id === site }, `site ${s.id} (${s.kind}${s.causal ? ', causal' : ''})`))),
    ),
    h('div', { class: 'field inline' },
      h('label', { for: 'maps-pattern' }, 'Sparse pattern'),
      h('vscode-dropdown', { id: 'maps-pattern', on: { change: (e) => { const v = (e.target as HTMLInputElement).value; ctx.setUi({ mapsPattern: v === NONE ? null : v }); } } },
        h('vscode-option', { value: NONE, selected: pattern === NONE }, 'none'),
        ...patterns.map((p) => h('vscode-option', { value: p, selected: p === pattern }, p))),
    ),
    ctx.interactive
      ? h('vscode-button', { id: 'run-maps', on: { click: () => ctx.post({ type: 'showAttentionMaps', site, pattern: ui.mapsPattern }) } }, 'Compute maps')
      : null,
    ctx.interactive ? h('span', { class: 'help' }, unitsOf(report).vision
      ? 'images of the model’s own size (its patch grid)'
      : session.settings.mapsSequenceLength > 0
        ? `${session.settings.mapsSequenceLength} tokens (attentionLens.maps.sequenceLength)`
        : 'the model’s own length (or 512), as far as a dashboard can draw; the map says which') : null,
  ));
  renderCalibration(root, ctx);

  if (!maps || maps.site !== site) {
    root.append(h('p', { class: 'empty' }, `No maps of site ${site} yet${ctx.interactive ? ': Compute maps runs the model and records its attention probabilities.' : '.'}`));
    return;
  }
  const [heads, queries, keys] = maps.dims;
  const head = Math.min(ui.mapsHead, heads - 1);
  const drawn = drawablePattern(ui.mapsPattern);
  const measuredHere = drawn !== null && ui.mapsPattern !== maps.pattern;

  root.append(h('p', { class: 'meta' },
    `Site ${maps.site}, ${heads} heads, ${queries} queries × ${keys} keys, on ${maps.ep}; inputs ${maps.inputs}${maps.lengthNote ? ` (${maps.lengthNote})` : ''}. ` +
    `Rows sum to 1 within ${num(maps.maxRowSumError, 8)}${maps.causal ? `; largest mass on future keys ${num(maps.maxFutureMass, 8)}` : ' (not causal: every query sees every key)'}.`));

  const headSelect = h('vscode-dropdown', { id: 'maps-head', on: { change: (e) => ctx.setUi({ mapsHead: Number((e.target as HTMLInputElement).value) }) } },
    ...Array.from({ length: heads }, (_, i) => h('vscode-option', { value: String(i), selected: i === head }, `head ${i}`)));
  root.append(h('div', { class: 'field inline' }, h('label', { for: 'maps-head' }, 'Head'), headSelect));

  const image = heatmapImage(maps, head, drawn);
  const hover = h('p', { class: 'map-hover', id: 'map-hover', 'aria-live': 'polite' }, 'Point at the map for a value.');
  const canvas = h('canvas', {
    id: 'heatmap',
    class: 'heatmap',
    width: keys,
    height: queries,
    tabindex: 0,
    role: 'img',
    'aria-label': `attention probabilities of site ${maps.site}, head ${head}: queries down, keys across${drawn ? `; keys outside ${ui.mapsPattern} dimmed` : ''}. Left and right arrows change the head.`,
    on: {
      keydown: (e) => {
        const k = (e as KeyboardEvent).key;
        if (k === 'ArrowRight' || k === 'ArrowLeft') {
          e.preventDefault();
          ctx.setUi({ mapsHead: (head + (k === 'ArrowRight' ? 1 : heads - 1)) % heads });
          document.getElementById('heatmap')?.focus();
        }
      },
      mousemove: (e) => {
        const m = e as MouseEvent;
        const r = (m.target as HTMLElement).getBoundingClientRect();
        const cell = cellAt(maps, head, (m.clientX - r.left) / r.width, (m.clientY - r.top) / r.height);
        if (cell) hover.textContent = describeCell(cell);
      },
    },
  });
  canvas.getContext('2d')?.putImageData(new ImageData(image.data, image.width, image.height), 0, 0);
  const legend = h('canvas', { class: 'legend', width: 128, height: 1, 'aria-hidden': 'true' });
  const ld = new Uint8ClampedArray(128 * 4);
  for (let i = 0; i < 128; i++) ld.set([...colour(i / 127), 255], i * 4);
  legend.getContext('2d')?.putImageData(new ImageData(ld, 128, 1), 0, 0);
  const offset = keys - queries;
  const queryLabels = maps.tokens ? maps.tokens.slice(offset) : null;
  const figure = h('figure', { class: 'map' },
    h('div', { class: 'map-frame' },
      axis('y', queries, queryLabels, maps.tokens ? 'queries (tokens)' : 'queries'),
      canvas,
      h('span', null),
      axis('x', keys, maps.tokens, maps.tokens ? 'keys (tokens)' : 'keys')),
    hover,
    h('figcaption', null,
      h('span', null, '0'), legend, h('span', null, `${num(image.max, 3)} (colour ∝ √p)`),
      drawn ? h('span', { class: 'help' }, ` · dimmed: keys ${ui.mapsPattern} hides`) : null),
  );

  const withRecall = maps.pattern !== null || measuredHere;
  const columns = ['head', 'entropy (nats)', 'first-token mass', 'mean distance', 'diagonal mass',
    ...(maps.pattern ? [`recall (${maps.pattern})`] : []), ...(measuredHere ? [`recall (${ui.mapsPattern}, from this map)`] : [])];
  const rows = maps.heads.map((s) => [
    `${s.head}${s.head === head ? ' ◀' : ''}`,
    num(s.entropy, 3),
    pct(s.firstTokenMass),
    num(s.meanDistance, 2),
    pct(s.diagonalMass),
    ...(maps.pattern ? [pct(s.recall)] : []),
    ...(measuredHere && drawn ? [pct(maskedMass(maps, s.head, drawn))] : []),
  ]);
  const stats = table(`Head statistics of site ${maps.site}${withRecall ? ' (recall: share of the attention mass inside the pattern)' : ''}`, columns, rows, { class: 'heads', id: 'heads-table' });
  root.append(h('div', { class: 'map-row' }, figure, stats));
  root.append(headsGrid(ctx, maps, head, drawn, ui.mapsPattern));
}

/** Labels along one side of the map, placed at their cells' centres (CSSOM positions: the CSP forbids style attributes). */
function axis(which: 'x' | 'y', n: number, labels: string[] | null, title: string): HTMLElement {
  const box = h('div', { class: `map-axis ${which}`, id: `map-axis-${which}`, 'aria-hidden': 'true' });
  for (const t of axisTicks(n, labels)) {
    const tick = h('span', { class: 'tick', title: `${which === 'x' ? 'key' : 'query'} ${t.index}` }, t.text);
    if (which === 'x') tick.style.left = `${100 * t.at}%`;
    else tick.style.top = `${100 * t.at}%`;
    box.append(tick);
  }
  box.append(h('span', { class: 'axis-title' }, title));
  return box;
}

/** Every head of the site, small, each with the pattern's recall; a click shows that head above. */
function headsGrid(ctx: ViewContext, maps: AttentionMaps, selected: number, drawn: ReturnType<typeof drawablePattern>, pattern: string | null): HTMLElement {
  const recalls = headRecalls(maps, drawn ? pattern : null);
  const grid = h('section', { class: 'heads-grid', id: 'heads-grid', 'aria-label': `every head of site ${maps.site}` });
  for (let head = 0; head < maps.dims[0]; head++) {
    const image = heatmapImage(maps, head, drawn);
    const thumb = h('canvas', { class: 'head-thumb', width: image.width, height: image.height, 'aria-hidden': 'true' });
    thumb.getContext('2d')?.putImageData(new ImageData(image.data, image.width, image.height), 0, 0);
    const recall = recalls[head];
    grid.append(h('button', {
      class: `head-cell${head === selected ? ' selected' : ''}`, id: `head-cell-${head}`, type: 'button',
      'aria-label': `head ${head}${recall !== null ? `, recall ${pct(recall)}` : ''}`,
      on: { click: () => ctx.setUi({ mapsHead: head }) },
    }, thumb, h('span', { class: 'head-caption' }, `head ${head}${recall !== null ? ` · recall ${pct(recall)}` : ''}`)));
  }
  return grid;
}
