/**
 * Minimal SVG charts, no dependencies: a line chart (numeric x, linear or log) and a grouped bar
 * chart (categories, optional min–max whiskers), both with axes, ticks, labels, a legend and
 * optional dashed reference lines.
 */

const WIDTH = 760;
const HEIGHT = 440;
const MARGIN = { left: 78, right: 24, top: 64, bottom: 62 } as const;
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

export interface Reference {
  readonly label: string;
  /** A horizontal line at this y (x undefined), or a vertical one at this x. */
  readonly y?: number;
  readonly x?: number;
}

export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
  /** Draw a marker at each point (default: only when there are at most 20 points). */
  readonly markers?: boolean;
}

export interface LineChart {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly xLog?: boolean;
  /** The x axis ticks (needed with `xLog`; otherwise round values are chosen). */
  readonly xTicks?: readonly { readonly value: number; readonly label: string }[];
  readonly yMin?: number;
  readonly yMax?: number;
  readonly references?: readonly Reference[];
}

export interface BarSeries {
  readonly name: string;
  /** One value per category; undefined: no bar (failed run). */
  readonly values: readonly (number | undefined)[];
  /** Whiskers: min and max per category. */
  readonly ranges?: readonly (readonly [number, number] | undefined)[];
}

export interface BarChart {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly categories: readonly string[];
  readonly series: readonly BarSeries[];
  readonly references?: readonly Reference[];
}

const esc = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (x: number): string => (Math.round(x * 10) / 10).toString();

function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${num(x)}" y="${num(y)}" ${attrs}>${esc(content)}</text>`;
}

/** About `count` round tick values, the first <= min and the last >= max. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * magnitude >= raw) ?? 10) * magnitude;
  const first = Math.floor(min / step + 1e-9);
  const last = Math.ceil(max / step - 1e-9);
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) ticks.push(Number((k * step).toPrecision(12)));
  return ticks;
}

/** Tick label: at most 3 decimals, thousands separated. */
export function formatTick(v: number): string {
  return v.toLocaleString('en-US', { maximumFractionDigits: 3 });
}

function frame(title: string, xLabel: string, yLabel: string, body: string[]): string {
  const cx = MARGIN.left + PLOT_W / 2;
  const cy = MARGIN.top + PLOT_H / 2;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" ` +
      `viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    text(WIDTH / 2, 22, title, 'text-anchor="middle" font-size="15" font-weight="bold"'),
    ...body,
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${PLOT_W}" height="${PLOT_H}" ` +
      'fill="none" stroke="#333"/>',
    text(cx, HEIGHT - 16, xLabel, 'text-anchor="middle"'),
    text(18, cy, yLabel, `text-anchor="middle" transform="rotate(-90 18 ${num(cy)})"`),
    '</svg>',
    '',
  ].join('\n');
}

function legend(names: readonly string[]): string[] {
  let x = MARGIN.left;
  return names.flatMap((name, i) => {
    const item = [
      `<rect x="${num(x)}" y="38" width="14" height="10" fill="${COLORS[i % COLORS.length]}"/>`,
      text(x + 19, 47, name),
    ];
    x += 34 + name.length * 6.6;
    return item;
  });
}

function yAxis(ticks: readonly number[], y: (v: number) => number): string[] {
  return ticks.flatMap((t) => [
    `<line x1="${MARGIN.left}" x2="${MARGIN.left + PLOT_W}" y1="${num(y(t))}" y2="${num(y(t))}" stroke="#e4e4e4"/>`,
    text(MARGIN.left - 6, y(t) + 4, formatTick(t), 'text-anchor="end"'),
  ]);
}

function references(
  refs: readonly Reference[],
  x: (v: number) => number,
  y: (v: number) => number,
): string[] {
  return refs.flatMap((r) => {
    const style = 'stroke="#555" stroke-dasharray="6 4"';
    if (r.y !== undefined) {
      const yy = num(y(r.y));
      return [
        `<line x1="${MARGIN.left}" x2="${MARGIN.left + PLOT_W}" y1="${yy}" y2="${yy}" ${style}/>`,
        text(MARGIN.left + PLOT_W - 4, y(r.y) - 4, r.label, 'text-anchor="end" fill="#555"'),
      ];
    }
    if (r.x === undefined) return [];
    const xx = num(x(r.x));
    const right = x(r.x) > MARGIN.left + PLOT_W / 2;
    const anchor = `fill="#555" text-anchor="${right ? 'end' : 'start'}"`;
    return [
      `<line x1="${xx}" x2="${xx}" y1="${MARGIN.top}" y2="${MARGIN.top + PLOT_H}" ${style}/>`,
      text(x(r.x) + (right ? -4 : 4), MARGIN.top + PLOT_H - 6, r.label, anchor),
    ];
  });
}

export function lineChart(c: LineChart): string {
  const all = c.series.flatMap((s) => s.points);
  const refs = c.references ?? [];
  const xs = [...all.map((p) => p[0]), ...refs.flatMap((r) => (r.x === undefined ? [] : [r.x]))];
  const ys = [...all.map((p) => p[1]), ...refs.flatMap((r) => (r.y === undefined ? [] : [r.y]))];
  const tx = (v: number): number => (c.xLog ? Math.log10(v) : v);
  let x0 = Math.min(...xs.map(tx));
  let x1 = Math.max(...xs.map(tx));
  if (!(x1 > x0)) [x0, x1] = [x0 - 1, x0 + 1];
  // Room to the right for the label of a vertical reference line at the largest x.
  const pad = c.xLog || refs.some((r) => r.x !== undefined) ? 0.05 * (x1 - x0) : 0;
  const autoTicks = c.xLog ? [] : niceTicks(x0, x1 + pad);
  [x0, x1] = c.xLog ? [x0 - pad, x1 + pad] : [autoTicks[0] ?? x0, autoTicks.at(-1) ?? x1];
  const yTicks = niceTicks(c.yMin ?? Math.min(0, ...ys), c.yMax ?? Math.max(...ys) * 1.08);
  const y0 = yTicks[0] ?? 0;
  const y1 = Math.max(yTicks.at(-1) ?? 1, y0 + 1e-9);
  const x = (v: number): number => MARGIN.left + ((tx(v) - x0) / (x1 - x0)) * PLOT_W;
  const y = (v: number): number => MARGIN.top + PLOT_H - ((v - y0) / (y1 - y0)) * PLOT_H;
  const xTicks = c.xTicks ?? autoTicks.map((v) => ({ value: v, label: formatTick(v) }));
  const body = [
    ...yAxis(yTicks, y),
    ...xTicks.map((t) =>
      text(x(t.value), MARGIN.top + PLOT_H + 16, t.label, 'text-anchor="middle"'),
    ),
    ...references(refs, x, y),
    ...c.series.flatMap((s, i) => {
      const color = COLORS[i % COLORS.length] ?? 'black';
      const path = s.points.map((p) => `${num(x(p[0]))},${num(y(p[1]))}`).join(' ');
      const markers =
        (s.markers ?? s.points.length <= 20)
          ? s.points.map(
              (p) => `<circle cx="${num(x(p[0]))}" cy="${num(y(p[1]))}" r="3.5" fill="${color}"/>`,
            )
          : [];
      return [
        `<polyline points="${path}" fill="none" stroke="${color}" stroke-width="2"/>`,
        ...markers,
      ];
    }),
    ...legend(c.series.map((s) => s.name)),
  ];
  return frame(c.title, c.xLabel, c.yLabel, body);
}

export function barChart(c: BarChart): string {
  const values = c.series.flatMap((s) => [
    ...s.values.flatMap((v) => (v === undefined ? [] : [v])),
    ...(s.ranges ?? []).flatMap((r) => (r ? [r[1]] : [])),
  ]);
  const refs = c.references ?? [];
  const top = Math.max(1e-9, ...values, ...refs.flatMap((r) => (r.y === undefined ? [] : [r.y])));
  const yTicks = niceTicks(0, top * 1.08);
  const y1 = yTicks.at(-1) ?? top;
  const y = (v: number): number => MARGIN.top + PLOT_H - (v / y1) * PLOT_H;
  const slot = PLOT_W / c.categories.length;
  const barW = (slot * 0.7) / c.series.length;
  const bar = (k: number, i: number, v: number, range?: readonly [number, number]): string[] => {
    const color = COLORS[k % COLORS.length] ?? 'black';
    const left = MARGIN.left + slot * i + slot * 0.15 + barW * k;
    const mid = left + barW / 2;
    const tick = (r: number): string =>
      `<line x1="${num(mid - 5)}" x2="${num(mid + 5)}" y1="${num(y(r))}" y2="${num(y(r))}" stroke="black"/>`;
    return [
      `<rect x="${num(left)}" y="${num(y(v))}" width="${num(barW)}" height="${num(y(0) - y(v))}" fill="${color}"/>`,
      text(
        mid,
        y(range ? range[1] : v) - 5,
        formatTick(Math.round(v * 10) / 10),
        'text-anchor="middle" font-size="11"',
      ),
      ...(range
        ? [
            `<line x1="${num(mid)}" x2="${num(mid)}" y1="${num(y(range[0]))}" y2="${num(y(range[1]))}" stroke="black"/>`,
            tick(range[0]),
            tick(range[1]),
          ]
        : []),
    ];
  };
  const body = [
    ...yAxis(yTicks, y),
    ...c.categories.map((name, i) =>
      text(MARGIN.left + slot * (i + 0.5), MARGIN.top + PLOT_H + 16, name, 'text-anchor="middle"'),
    ),
    ...c.series.flatMap((s, k) =>
      c.categories.flatMap((_, i) => {
        const v = s.values[i];
        return v === undefined ? [] : bar(k, i, v, s.ranges?.[i]);
      }),
    ),
    ...references(refs, () => 0, y),
    ...legend(c.series.map((s) => s.name)),
  ];
  return frame(c.title, c.xLabel, c.yLabel, body);
}
