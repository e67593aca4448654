/**
 * A tiny dependency-free SVG chart writer for the benchmark suite: line charts (linear or log axes) and
 * grouped bar charts, with axes, ticks, axis labels, a title and a legend. Output is a self-contained SVG
 * string (no fonts or scripts to fetch), readable on GitHub and convertible with rsvg-convert.
 */

/** One line of a line chart. `dashed` draws reference curves (e.g. a formula) apart from measurements. */
export interface LineSeries {
  name: string;
  points: [x: number, y: number][];
  dashed?: boolean;
}

/** An axis: its label, scale, and how tick values are written. */
export interface AxisOptions {
  label: string;
  /** `log2` suits sizes in bytes and rank counts; `log10` wide ranges. Log axes need positive values. */
  scale?: 'linear' | 'log2' | 'log10';
  format?: (v: number) => string;
  /** Force the axis to include this value (e.g. 0 for throughput). */
  includeZero?: boolean;
  /** Values are bytes: linear ticks fall on round numbers of KiB/MiB/GiB rather than of bytes. */
  bytes?: boolean;
}

export interface LineChartOptions {
  title: string;
  x: AxisOptions;
  y: AxisOptions;
  series: LineSeries[];
  width?: number;
  height?: number;
}

export interface BarChartOptions {
  title: string;
  categories: string[];
  /** One value per category; null leaves a gap (no measurement). */
  series: { name: string; values: (number | null)[] }[];
  y: AxisOptions;
  xLabel?: string;
  width?: number;
  height?: number;
}

/** Colour-blind-safe palette (Okabe-Ito), in series order. */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'];

const MARGIN = { left: 86, right: 190, top: 44, bottom: 64 };

/** Escapes text for SVG content and attributes. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const num = (v: number) => (Math.round(v * 100) / 100).toString();

/** A compact number: 1.5k, 2.3M, 0.25. */
export function formatCompact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

/** Bytes in binary units: 1 KiB, 64 MiB. */
export function formatBytes(v: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  let x = v;
  while (Math.abs(x) >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  return `${+x.toPrecision(3)} ${units[u]}`;
}

/** "Nice" linear ticks (steps of 1, 2 or 5 x 10^k) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    return niceTicks(lo - pad, hi + pad, count);
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  if (out[out.length - 1] < hi) out.push(+(out[out.length - 1] + step).toPrecision(12));
  return out;
}

/** Powers of the log base covering [lo, hi] (both > 0); thinned to at most ~8 ticks. */
export function logTicks(lo: number, hi: number, base: 2 | 10): number[] {
  const a = Math.floor(Math.log(lo) / Math.log(base) + 1e-9);
  const b = Math.ceil(Math.log(hi) / Math.log(base) - 1e-9);
  const every = Math.max(1, Math.ceil((b - a + 1) / 8));
  const out: number[] = [];
  for (let k = a; k <= Math.max(b, a + 1); k += every) out.push(base ** k);
  return out;
}

/** Maps data values of one axis to pixels, with the tick values to draw. */
interface Scale {
  ticks: number[];
  map(v: number): number;
}

function makeScale(values: number[], axis: AxisOptions, from: number, to: number): Scale {
  const scale = axis.scale ?? 'linear';
  if (scale !== 'linear') {
    const pos = values.filter((v) => v > 0);
    if (pos.length === 0) throw new Error(`axis "${axis.label}": a log scale needs positive values`);
    const base = scale === 'log2' ? 2 : 10;
    const ticks = logTicks(Math.min(...pos), Math.max(...pos), base);
    const [l0, l1] = [Math.log(ticks[0]), Math.log(ticks[ticks.length - 1])];
    return { ticks, map: (v) => from + ((Math.log(v) - l0) / (l1 - l0)) * (to - from) };
  }
  const lo = Math.min(...values, ...(axis.includeZero ? [0] : []));
  const hi = Math.max(...values, ...(axis.includeZero ? [0] : []));
  // byte axes: round ticks in the unit of the largest value (8 MiB steps, not 8,388,608-byte ones)
  const unit = axis.bytes
    ? 1024 ** Math.max(0, Math.floor(Math.log(Math.max(Math.abs(lo), Math.abs(hi), 1)) / Math.log(1024)))
    : 1;
  const ticks = niceTicks(lo / unit, hi / unit).map((v) => v * unit);
  const [t0, t1] = [ticks[0], ticks[ticks.length - 1]];
  return { ticks, map: (v) => from + ((v - t0) / (t1 - t0)) * (to - from) };
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${num(x)}" y="${num(y)}" ${attrs}>${escapeXml(s)}</text>`;
}

/** The frame shared by both chart kinds: background, title, y axis with grid, axis labels, legend. */
function frame(o: {
  width: number;
  height: number;
  title: string;
  yAxis: AxisOptions;
  yScale: Scale;
  xLabel: string;
  legend: { name: string; color: string; dashed?: boolean; bar?: boolean }[];
}): { open: string[]; close: string } {
  const { width: w, height: h } = o;
  const plotRight = w - MARGIN.right;
  const plotBottom = h - MARGIN.bottom;
  const fmt = o.yAxis.format ?? formatCompact;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="#ffffff"/>`,
    text(
      w / 2 - MARGIN.right / 2 + MARGIN.left / 2,
      24,
      o.title,
      'text-anchor="middle" font-size="15" font-weight="bold"',
    ),
  ];
  for (const t of o.yScale.ticks) {
    const y = o.yScale.map(t);
    parts.push(
      `<line x1="${MARGIN.left}" x2="${plotRight}" y1="${num(y)}" y2="${num(y)}" stroke="#e0e0e0"/>`,
      text(MARGIN.left - 6, y + 4, fmt(t), 'text-anchor="end"'),
    );
  }
  parts.push(
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${plotBottom}" stroke="#333"/>`,
    `<line x1="${MARGIN.left}" x2="${plotRight}" y1="${plotBottom}" y2="${plotBottom}" stroke="#333"/>`,
    text((MARGIN.left + plotRight) / 2, h - 14, o.xLabel, 'text-anchor="middle"'),
    text(
      14,
      (MARGIN.top + plotBottom) / 2,
      o.yAxis.label,
      `text-anchor="middle" transform="rotate(-90 14 ${num((MARGIN.top + plotBottom) / 2)})"`,
    ),
  );
  o.legend.forEach((l, i) => {
    const y = MARGIN.top + 8 + i * 20;
    const x = plotRight + 16;
    parts.push(
      l.bar
        ? `<rect x="${x}" y="${y - 6}" width="18" height="12" fill="${l.color}"/>`
        : `<line x1="${x}" x2="${x + 18}" y1="${y}" y2="${y}" stroke="${l.color}" stroke-width="2.5"${l.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
      text(x + 24, y + 4, l.name),
    );
  });
  return { open: parts, close: '</svg>\n' };
}

/** A line chart with markers; series with no points are left out of the plot but kept in the legend. */
export function lineChart(o: LineChartOptions): string {
  const width = o.width ?? 760;
  const height = o.height ?? 440;
  const all = o.series.flatMap((s) => s.points);
  if (all.length === 0) throw new Error(`lineChart "${o.title}": no data points`);
  const xScale = makeScale(
    all.map((p) => p[0]),
    o.x,
    MARGIN.left,
    width - MARGIN.right,
  );
  const yScale = makeScale(
    all.map((p) => p[1]),
    o.y,
    height - MARGIN.bottom,
    MARGIN.top,
  );
  const legend = o.series.map((s, i) => ({ name: s.name, color: PALETTE[i % PALETTE.length], dashed: s.dashed }));
  const { open: parts, close } = frame({
    width,
    height,
    title: o.title,
    yAxis: o.y,
    yScale,
    xLabel: o.x.label,
    legend,
  });
  const xFmt = o.x.format ?? formatCompact;
  for (const t of xScale.ticks) {
    const x = xScale.map(t);
    parts.push(
      `<line x1="${num(x)}" x2="${num(x)}" y1="${height - MARGIN.bottom}" y2="${height - MARGIN.bottom + 5}" stroke="#333"/>`,
      text(x, height - MARGIN.bottom + 18, xFmt(t), 'text-anchor="middle"'),
    );
  }
  o.series.forEach((s, i) => {
    const color = legend[i].color;
    const pts = [...s.points].sort((a, b) => a[0] - b[0]).map(([x, y]) => [xScale.map(x), yScale.map(y)]);
    if (pts.length === 0) return;
    const dash = s.dashed ? ' stroke-dasharray="5 3"' : '';
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${pts.map(([x, y]) => `${num(x)},${num(y)}`).join(' ')}"/>`,
    );
    for (const [x, y] of pts) parts.push(`<circle cx="${num(x)}" cy="${num(y)}" r="3.5" fill="${color}"/>`);
  });
  return `${parts.join('\n')}\n${close}`;
}

/** A grouped bar chart: one group per category, one bar per series; the y axis starts at 0. */
export function barChart(o: BarChartOptions): string {
  const width = o.width ?? 760;
  const height = o.height ?? 440;
  const values = o.series.flatMap((s) => s.values).filter((v): v is number => v !== null);
  if (values.length === 0) throw new Error(`barChart "${o.title}": no values`);
  for (const s of o.series) {
    if (s.values.length !== o.categories.length) {
      throw new Error(
        `barChart "${o.title}": series "${s.name}" has ${s.values.length} values for ${o.categories.length} categories`,
      );
    }
  }
  const yScale = makeScale(values, { ...o.y, scale: 'linear', includeZero: true }, height - MARGIN.bottom, MARGIN.top);
  const legend = o.series.map((s, i) => ({ name: s.name, color: PALETTE[i % PALETTE.length], bar: true }));
  const { open: parts, close } = frame({
    width,
    height,
    title: o.title,
    yAxis: o.y,
    yScale,
    xLabel: o.xLabel ?? '',
    legend,
  });
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const groupWidth = plotWidth / o.categories.length;
  const barWidth = (groupWidth * 0.8) / o.series.length;
  const fmt = o.y.format ?? formatCompact;
  const base = yScale.map(0);
  o.categories.forEach((c, ci) => {
    const gx = MARGIN.left + ci * groupWidth;
    // one line per comma-separated part, so that neighbouring labels do not run into each other
    c.split(', ').forEach((line, li) => {
      parts.push(text(gx + groupWidth / 2, height - MARGIN.bottom + 18 + li * 14, line, 'text-anchor="middle"'));
    });
    o.series.forEach((s, si) => {
      const v = s.values[ci];
      if (v === null) return;
      const x = gx + groupWidth * 0.1 + si * barWidth;
      const y = yScale.map(v);
      parts.push(
        `<rect x="${num(x)}" y="${num(Math.min(y, base))}" width="${num(barWidth * 0.92)}" height="${num(Math.abs(base - y))}" fill="${legend[si].color}"><title>${escapeXml(`${s.name}, ${c}: ${fmt(v)}`)}</title></rect>`,
      );
      // value labels only where they fit above their bar; the tooltip always has the value
      if (barWidth >= 44)
        parts.push(text(x + barWidth * 0.46, Math.min(y, base) - 4, fmt(v), 'text-anchor="middle" font-size="10"'));
    });
  });
  return `${parts.join('\n')}\n${close}`;
}
