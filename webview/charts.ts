// chart.js, registered with only what the dashboards draw, coloured from VS Code's theme variables (the page's CSS
// maps them to --al-* with fallbacks for an exported report). Animation is off: numbers should appear, not move.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartConfiguration,
  Legend,
  LineController,
  LineElement,
  LinearScale,
  LogarithmicScale,
  PointElement,
  type Scale,
  Title,
  Tooltip,
} from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LogarithmicScale, LineController, LineElement, PointElement, Legend, Title, Tooltip);

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}

export interface Theme {
  foreground: string;
  grid: string;
  series: string[];
  font: string;
}

export function theme(): Theme {
  return {
    foreground: cssVar('--al-chart-fg', '#616161'),
    grid: cssVar('--al-chart-lines', 'rgba(128,128,128,0.35)'),
    series: ['--al-chart-1', '--al-chart-2', '--al-chart-3', '--al-chart-4', '--al-chart-5', '--al-chart-6'].map((v, i) =>
      cssVar(v, ['#3794ff', '#d18616', '#89d185', '#b180d7', '#f14c4c', '#cca700'][i]),
    ),
    font: cssVar('--al-font', 'sans-serif'),
  };
}

/** Colour of the i-th series with an alpha, for a lighter second bar of the same model. */
export function withAlpha(colour: string, alpha: number): string {
  const m = /^#([0-9a-f]{6})$/i.exec(colour);
  if (!m) return colour;
  const n = Number.parseInt(m[1], 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

const live = new Set<Chart>();

/** Creates a chart on a fresh canvas inside `host`; charts of a previous render are destroyed by `destroyCharts`. */
export function chart(host: HTMLElement, label: string, config: ChartConfiguration): HTMLCanvasElement {
  const t = theme();
  Chart.defaults.color = t.foreground;
  Chart.defaults.borderColor = t.grid;
  Chart.defaults.font.family = t.font;
  const canvas = document.createElement('canvas');
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', label);
  const box = document.createElement('div');
  box.className = 'chart';
  box.append(canvas);
  host.append(box);
  const c = new Chart(canvas, {
    ...config,
    options: { animation: false, responsive: true, maintainAspectRatio: false, ...config.options },
  });
  live.add(c);
  // A screen reader hears the x axis as drawn: its title and the values it labels (the same text a person sees).
  const x = c.scales.x;
  if (x && x.type !== 'category') {
    const title = (x.options as { title?: { display?: boolean; text?: string } }).title;
    const labels = x.ticks.map((t) => String(t.label ?? '')).filter((l) => l !== '');
    canvas.setAttribute('aria-label', `${label}; x axis${title?.display && title.text ? ` (${title.text})` : ''}: ${labels.length ? labels.join(', ') : 'no values'}`);
  }
  return canvas;
}

/**
 * A logarithmic axis that ticks at the values that were measured and labels every one. chart.js's own log labels
 * show only values whose leading digit is 1, 2, 3 or 5, so 64, 128, 256, 512 got no label at all.
 */
export function measuredLogAxis(values: number[], title: string) {
  return {
    type: 'logarithmic' as const,
    title: { display: true, text: title },
    afterBuildTicks: (axis: Scale) => {
      axis.ticks = values.map((value) => ({ value }));
    },
    ticks: { callback: (value: number | string) => String(value) },
  };
}

export function destroyCharts(): void {
  for (const c of live) c.destroy();
  live.clear();
}
