/**
 * A small hand-written SVG line chart: one panel per metric, one line per run, shared x axis.
 * (The plot needs lines, ticks and a legend only; a plotting library would bring a DOM or a canvas.)
 */
export interface Series {
  readonly label: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  readonly dashed?: boolean;
}

export interface Panel {
  readonly title: string;
  readonly series: readonly Series[];
}

const W = 360;
const H = 252;
const M = { left: 48, right: 12, top: 40, bottom: 34 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const niceTicks = (lo: number, hi: number, n = 5): number[] => {
  const span = hi - lo || 1;
  const step0 = span / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= step0)!;
  // Counted in whole steps: t += step stalls where step is below half an ulp of t (a range of a few ulps).
  const first = Math.ceil(lo / step);
  const count = Math.min(Math.floor((hi + 1e-9) / step) - first + 1, 4 * n);
  return Array.from({ length: Math.max(count, 0) }, (_, i) => Number(((first + i) * step).toFixed(10)));
};

const panel = (p: Panel, xLabel: string, dx: number): string => {
  const pts = p.series.flatMap((s) => s.points);
  const xs = pts.map((q) => q[0]).filter(Number.isFinite);
  const ys = pts.map((q) => q[1]).filter(Number.isFinite);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const pad = (y1 - y0) * 0.05 || 0.5;
  [y0, y1] = [y0 - pad, y1 + pad];
  const sx = (x: number) => dx + M.left + ((x - x0) / (x1 - x0 || 1)) * (W - M.left - M.right);
  const sy = (y: number) => M.top + (1 - (y - y0) / (y1 - y0 || 1)) * (H - M.top - M.bottom);
  const out: string[] = [];
  out.push(`<text x="${dx + W / 2}" y="16" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  out.push(`<rect x="${dx + M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#999"/>`);
  for (const t of niceTicks(y0, y1))
    out.push(
      `<line x1="${dx + M.left}" x2="${dx + W - M.right}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`,
      `<text x="${dx + M.left - 4}" y="${sy(t) + 4}" text-anchor="end" font-size="10">${t}</text>`,
    );
  for (const t of niceTicks(x0, x1))
    out.push(`<text x="${sx(t)}" y="${H - M.bottom + 14}" text-anchor="middle" font-size="10">${t}</text>`);
  out.push(`<text x="${dx + W / 2}" y="${H - 6}" text-anchor="middle" font-size="11">${esc(xLabel)}</text>`);
  p.series.forEach((s, i) => {
    const d = s.points
      .filter((q) => Number.isFinite(q[1]))
      .map((q, k) => `${k === 0 ? 'M' : 'L'}${sx(q[0]).toFixed(1)},${sy(q[1]).toFixed(1)}`)
      .join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="5,4"' : ''}/>`);
    // The legend sits in one row between the title and the plot area, never over the lines.
    const lx = dx + M.left + i * 110;
    out.push(
      `<line x1="${lx}" x2="${lx + 16}" y1="${M.top - 8}" y2="${M.top - 8}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="4,3"' : ''}/>`,
      `<text x="${lx + 20}" y="${M.top - 4}" font-size="10">${esc(s.label)}</text>`,
    );
  });
  return out.join('\n');
};

/** Panels side by side in one SVG document. */
export const lineChartSvg = (panels: readonly Panel[], xLabel: string): string =>
  [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W * panels.length}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...panels.map((p, i) => panel(p, xLabel, i * W)),
    '</svg>',
    '',
  ].join('\n');
