// Speed: p50/p90 latency bars of the original and the variants at one sequence length, the speedups (over the original
// and over the fastest exact dense model) with their intervals next to the bounds the removed FLOPs allow, the
// warnings that say when not to trust them, the sequence-length sweep on log-log axes, and attention's share of the
// kernel time. A speedup is styled as a win only when its interval excludes 1 and stays within its bound.
import { chart, measuredLogAxis, theme, withAlpha } from '../charts';
import { DENSE_BASELINE } from '../../src/shared/run-results';
import { h, table } from '../dom';
import { ms, pct, ratio } from '../logic/format';
import { type Comparison, defaultSeq, latencyCell, models, nextRunText, shareSeries, speedRows, speedupCell, sweepSeries } from '../logic/speed';
import { lengthTitle, positions, throughput, throughputTitle, unitsOf } from '../logic/units';
import type { ViewContext } from './context';
import { renderDecode } from './decode';

export function renderSpeed(root: HTMLElement, ctx: ViewContext): void {
  const session = ctx.state.session;
  const units = unitsOf(session?.report);
  root.append(h('h2', null, 'Speed'));
  if (ctx.interactive) {
    // What the button will do, said as such: these lengths are the next run's, not results (a cancelled run has none).
    root.append(h('div', { class: 'actions' },
      h('vscode-button', { id: 'run-benchmark', disabled: !session?.report, on: { click: () => ctx.post({ type: 'benchmark' }) } }, 'Benchmark variants'),
      h('span', { class: 'help', id: 'benchmark-plan' }, session ? nextRunText(session, units) : ''),
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
  root.append(h('p', { class: 'meta', id: 'speed-meta' },
    `Measured at ${seqs.length === 1 ? positions(seqs[0], units) : `${seqs.join(', ')} ${units.unit}`} on ${speed.ep}, at least ${speed.iterations} timed runs${speed.minTimeMs ? ` and ${speed.minTimeMs / 1000} s` : ''}${seqs.length > 1 ? ' per length' : ''} after ${speed.warmup} warm-up, models interleaved run by run; ${new Date(speed.finishedAt).toLocaleString()}.`));
  for (const w of speed.warnings) root.append(h('p', { class: 'warning' }, `⚠ ${w}`));

  root.append(h('div', { class: 'field inline' },
    h('label', { for: 'speed-seq' }, units.vision ? 'Patches' : 'Sequence length'),
    h('vscode-dropdown', { id: 'speed-seq', on: { change: (e) => ctx.setUi({ speedSeq: Number((e.target as HTMLInputElement).value) }) } },
      ...seqs.map((s) => h('vscode-option', { value: String(s), selected: s === seq }, String(s)))),
  ));

  const at = positions(seq, units);
  const rows = speedRows(speed, seq);
  const bars = h('div', { class: 'chart-box', id: 'latency-chart' });
  root.append(h('h3', null, units.vision ? `Latency per image (${at})` : `Latency at ${at}`), bars);
  chart(bars, `p50 and p90 latency at ${at}`, {
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
  const boundCell = (c: Comparison) => (c.boundNote ? h('span', { class: 'bound-note', title: c.boundNote }, 'other kernels') : ratio(c.modelBound));
  root.append(table(
    `Latency and speedup at ${at}`,
    [
      'model', 'p50 [95% CI]', 'p90', throughputTitle(units), 'speedup vs original', 'model bound',
      ...(showBaseline ? [`vs ${baseline.label} (dense baseline)`, 'bound vs baseline'] : []),
      'attention-FLOP bound', 'attention share', 'score-path share',
    ],
    rows.map((r) => [
      r.isBaseline && showBaseline ? `${r.label} ★` : r.label,
      latencyCell(r.point),
      ms(r.point?.latencyMs.p90),
      throughput(r.point, units),
      cell(r.vsOriginal),
      boundCell(r.vsOriginal),
      ...(showBaseline ? [cell(r.vsBaseline), boundCell(r.vsBaseline)] : []),
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
    `${showBaseline ? `Dense baseline (★): the fastest model that computes exactly what the original computes at ${at} (${baseline.label}); its bound uses its own FLOPs and profile. ` : ''}` +
    `${rows.some((r) => r.key === DENSE_BASELINE) ? 'No variant computes exactly what the original does, so the benchmark added the original with its attention fused into onnxruntime’s fastest exact kernel for the provider (“fused”, the fuse rule): the dense model a deployment would run. ' : ''}` +
    'Attention-FLOP bound: attention FLOPs before over after. Model bound: what the whole model could gain if the score path’s share of the reference’s kernel time (from onnxruntime’s profiler) shrank with its FLOPs, and, for a variant that no longer builds the attention mask, the reference’s mask building went too.'));

  if (seqs.length < 2) {
    root.append(h('p', { class: 'empty', id: 'no-sweep' }, units.vision
      ? 'An image model runs at its own image size: there is no sequence length to sweep.'
      : 'One length was measured: the sweep and share charts need two or more (attentionLens.sweep.sequenceLengths).'));
    return;
  }
  const seqAxis = measuredLogAxis(seqs, lengthTitle(units));
  const sweep = h('div', { class: 'chart-box', id: 'sweep-chart' });
  root.append(h('h3', null, 'Sequence-length sweep (p50, log-log)'), sweep);
  chart(sweep, `p50 latency against ${units.unit}, log-log`, {
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
    chart(box, `attention share of kernel time against ${units.unit}`, {
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
