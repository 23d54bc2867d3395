// Speed: p50/p90 latency bars of the original and the variants at one sequence length, the speedups (over the original
// and over the fastest exact dense model) with their intervals next to the bounds the removed FLOPs allow, the
// warnings that say when not to trust them, the sequence-length sweep on log-log axes, and attention's share of the
// kernel time. A speedup is styled as a win only when its interval excludes 1 and stays within its bound.
import type { Scale } from 'chart.js';
import { chart, theme, withAlpha } from '../charts';
import { h, table } from '../dom';
import { ms, pct, ratio } from '../logic/format';
import { type Comparison, defaultSeq, latencyCell, models, shareSeries, speedRows, speedupCell, sweepSeries } from '../logic/speed';
import type { ViewContext } from './context';
import { renderDecode } from './decode';

export function renderSpeed(root: HTMLElement, ctx: ViewContext): void {
  const session = ctx.state.session;
  root.append(h('h2', null, 'Speed'));
  if (ctx.interactive) {
    root.append(h('div', { class: 'actions' },
      h('vscode-button', { id: 'run-benchmark', disabled: !session?.report, on: { click: () => ctx.post({ type: 'benchmark' }) } }, 'Benchmark variants'),
      h('span', { class: 'help' }, session
        ? `${session.variants.length} variant(s); sequence lengths ${session.settings.sequenceLengths.join(', ')}; at least ${session.settings.iterations} timed runs${session.settings.minTimeMs ? ` and ${session.settings.minTimeMs / 1000} s` : ''} per length after ${session.settings.warmup} warm-up; providers ${session.settings.executionProviders.join(', ')}`
        : ''),
    ));
  }
  const speed = session?.speed;
  if (!speed) {
    root.append(h('p', { class: 'empty' }, 'No benchmark yet. Benchmark Variants times the original and every variant at each sequence length of the sweep.'));
    renderDecode(root, ctx);
    return;
  }
  const seqs = [...new Set(speed.points.map((p) => p.seq))].sort((a, b) => a - b);
  const seq = ctx.state.ui.speedSeq !== null && seqs.includes(ctx.state.ui.speedSeq) ? ctx.state.ui.speedSeq : defaultSeq(speed);
  if (seq === null) {
    root.append(h('p', { class: 'empty' }, 'The benchmark returned no timings.'));
    return;
  }
  const t = theme();
  const refs = models(speed);
  const colourOf = (key: string) => t.series[refs.findIndex((m) => m.key === key) % t.series.length];
  root.append(h('p', { class: 'meta' },
    `On ${speed.ep}, at least ${speed.iterations} timed runs${speed.minTimeMs ? ` and ${speed.minTimeMs / 1000} s` : ''} per length after ${speed.warmup} warm-up, models interleaved run by run; ${new Date(speed.finishedAt).toLocaleString()}.`));
  for (const w of speed.warnings) root.append(h('p', { class: 'warning' }, `⚠ ${w}`));

  root.append(h('div', { class: 'field inline' },
    h('label', { for: 'speed-seq' }, 'Sequence length'),
    h('vscode-dropdown', { id: 'speed-seq', on: { change: (e) => ctx.setUi({ speedSeq: Number((e.target as HTMLInputElement).value) }) } },
      ...seqs.map((s) => h('vscode-option', { value: String(s), selected: s === seq }, String(s)))),
  ));

  // Log axes tick at the lengths that were measured, not at chart.js's 1-2-5 steps.
  const seqAxis = {
    type: 'logarithmic' as const,
    title: { display: true, text: 'tokens' },
    afterBuildTicks: (axis: Scale) => {
      axis.ticks = seqs.map((value) => ({ value }));
    },
  };
  const rows = speedRows(speed, seq);
  const bars = h('div', { class: 'chart-box', id: 'latency-chart' });
  root.append(h('h3', null, `Latency at ${seq} tokens`), bars);
  chart(bars, `p50 and p90 latency at ${seq} tokens`, {
    type: 'bar',
    data: {
      labels: rows.map((r) => r.label),
      datasets: [
        { label: 'p50 (ms)', data: rows.map((r) => r.point?.latencyMs.p50 ?? null), backgroundColor: rows.map((r) => colourOf(r.key)) },
        { label: 'p90 (ms)', data: rows.map((r) => r.point?.latencyMs.p90 ?? null), backgroundColor: rows.map((r) => withAlpha(colourOf(r.key), 0.45)) },
      ],
    },
    options: { scales: { y: { beginAtZero: true, title: { display: true, text: 'ms' } } }, plugins: { legend: { position: 'bottom' } } },
  });

  const baseline = rows.find((r) => r.isBaseline);
  const showBaseline = baseline !== undefined && baseline.key !== rows[0].key;
  const cell = (c: Comparison) => {
    const v = speedupCell(c);
    return h('span', { class: `speedup ${v.verdict}`, title: v.title }, v.text);
  };
  root.append(table(
    `Latency and speedup at ${seq} tokens`,
    [
      'model', 'p50 [95% CI]', 'p90', 'tokens/s', 'speedup vs original', 'model bound',
      ...(showBaseline ? [`vs ${baseline.label} (dense baseline)`, 'bound vs baseline'] : []),
      'attention-FLOP bound', 'attention share', 'score-path share',
    ],
    rows.map((r) => [
      r.isBaseline && showBaseline ? `${r.label} ★` : r.label,
      latencyCell(r.point),
      ms(r.point?.latencyMs.p90),
      r.point ? r.point.tokensPerSecond.toFixed(0) : '–',
      cell(r.vsOriginal),
      ratio(r.vsOriginal.modelBound),
      ...(showBaseline ? [cell(r.vsBaseline), ratio(r.vsBaseline.modelBound)] : []),
      ratio(r.vsOriginal.attentionBound),
      pct(r.point?.attentionShare),
      pct(r.point?.attentionCoreShare),
    ]),
    { class: 'speed', id: 'speed-table' },
  ));
  // Each reason once: a busy machine is the same sentence on every row of a length.
  const said = new Set<string>();
  const warnings = h('ul', { class: 'warnings', id: 'speed-warnings' });
  for (const r of rows) {
    for (const w of r.warnings) {
      const line = w.startsWith('the machine was busy') ? `⚠ ${w}` : `⚠ ${r.label}: ${w}`;
      if (!said.has(line)) warnings.append(h('li', { class: 'warning' }, line));
      said.add(line);
    }
  }
  if (said.size) root.append(warnings);
  root.append(h('p', { class: 'help' },
    'Speedup: the reference’s median over the model’s, with a 95% bootstrap interval (runs paired by round, as they were interleaved); ' +
    '“≈1” marks one not distinguishable from 1, ⚠ one above its model bound (a measurement problem, not a win). ' +
    `${showBaseline ? `Dense baseline (★): the fastest model that computes exactly what the original computes at ${seq} tokens (${baseline.label}); its bound uses its own FLOPs and profile. ` : ''}` +
    'Attention-FLOP bound: attention FLOPs before over after. Model bound: what the whole model could gain if the score path’s share of the reference’s kernel time (from onnxruntime’s profiler) shrank with its FLOPs.'));

  const sweep = h('div', { class: 'chart-box', id: 'sweep-chart' });
  root.append(h('h3', null, 'Sequence-length sweep (p50, log-log)'), sweep);
  chart(sweep, 'p50 latency against sequence length, log-log', {
    type: 'line',
    data: {
      datasets: sweepSeries(speed).map((s) => ({ label: s.label, data: s.points, borderColor: colourOf(s.key), backgroundColor: colourOf(s.key), pointRadius: 3 })),
    },
    options: {
      parsing: false,
      scales: {
        x: seqAxis,
        y: { type: 'logarithmic', title: { display: true, text: 'p50 ms' } },
      },
      plugins: { legend: { position: 'bottom' } },
    },
  });

  const share = shareSeries(speed, 'attentionShare');
  const core = shareSeries(speed, 'attentionCoreShare');
  if (share.length) {
    const box = h('div', { class: 'chart-box', id: 'share-chart' });
    root.append(h('h3', null, 'Attention’s share of kernel time'), box);
    chart(box, 'attention share of kernel time against sequence length', {
      type: 'line',
      data: {
        datasets: [
          ...share.map((s) => ({ label: `${s.label}: attention`, data: s.points, borderColor: colourOf(s.key), backgroundColor: colourOf(s.key) })),
          ...core.map((s) => ({ label: `${s.label}: score path`, data: s.points, borderColor: colourOf(s.key), backgroundColor: colourOf(s.key), borderDash: [5, 4] })),
        ],
      },
      options: {
        parsing: false,
        scales: { x: seqAxis, y: { min: 0, max: 100, title: { display: true, text: '% of kernel time' } } },
        plugins: { legend: { position: 'bottom' } },
      },
    });
  }
  renderDecode(root, ctx);
}
