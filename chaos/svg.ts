/**
 * Just enough SVG to draw the report's charts in the manner of Jepsen's
 * plots: a shared time axis, fault intervals as shaded bands behind the
 * data, lines and points. Pure string building, no dependencies, so the
 * page is one self-contained file.
 */

export const WIDTH = 1000;
export const MARGIN = Object.freeze({ left: 64, right: 16, top: 14, bottom: 30 });

export const FAULT_COLORS: Readonly<Record<string, string>> = { kill: '#d62728', pause: '#1f77b4', partition: '#9467bd', disk: '#8c564b' };

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export interface Band {
  readonly startS: number;
  readonly endS: number;
  readonly kind: string;
  readonly label: string;
}

export interface Frame {
  readonly height: number;
  readonly maxS: number;
  /** x pixel of a time in seconds. */
  x(s: number): number;
  readonly plotTop: number;
  readonly plotBottom: number;
}

export function frame(height: number, maxS: number): Frame {
  const span = Math.max(1, maxS);
  const inner = WIDTH - MARGIN.left - MARGIN.right;
  return { height, maxS: span, x: (s) => MARGIN.left + (Math.min(Math.max(s, 0), span) / span) * inner, plotTop: MARGIN.top, plotBottom: height - MARGIN.bottom };
}

/** A round step for about `n` ticks over `span`. */
export function niceStep(span: number, n: number): number {
  const raw = span / Math.max(1, n);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3.5 ? 2 : norm < 7.5 ? 5 : 10) * mag;
}

export function fmt(v: number): string {
  if (Number.isInteger(v) && Math.abs(v) < 1_000_000) return String(v);
  if (Math.abs(v) >= 1_000_000) return `${+(v / 1_000_000).toFixed(2)}M`;
  return `${+v.toPrecision(3)}`;
}

/** The time axis along the bottom, with a light grid. */
export function timeAxis(f: Frame): string {
  const step = niceStep(f.maxS, 10);
  const parts: string[] = [`<line x1="${MARGIN.left}" y1="${f.plotBottom}" x2="${WIDTH - MARGIN.right}" y2="${f.plotBottom}" stroke="#333"/>`];
  for (let s = 0; s <= f.maxS + 1e-9; s += step) {
    const x = f.x(s).toFixed(1);
    parts.push(`<line x1="${x}" y1="${f.plotTop}" x2="${x}" y2="${f.plotBottom}" stroke="#eee"/>`);
    parts.push(`<text x="${x}" y="${f.plotBottom + 16}" font-size="11" text-anchor="middle">${fmt(s)}</text>`);
  }
  parts.push(`<text x="${WIDTH - MARGIN.right}" y="${f.height - 2}" font-size="11" text-anchor="end">seconds since start</text>`);
  return parts.join('');
}

/** A y axis: `y` maps a value to a pixel; ticks are given. */
export function yAxis(f: Frame, ticks: readonly number[], y: (v: number) => number, label: string): string {
  const parts: string[] = [`<line x1="${MARGIN.left}" y1="${f.plotTop}" x2="${MARGIN.left}" y2="${f.plotBottom}" stroke="#333"/>`];
  for (const t of ticks) {
    const py = y(t).toFixed(1);
    parts.push(`<line x1="${MARGIN.left}" y1="${py}" x2="${WIDTH - MARGIN.right}" y2="${py}" stroke="#eee"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${py}" font-size="11" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`);
  }
  parts.push(`<text x="14" y="${(f.plotTop + f.plotBottom) / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 14 ${(f.plotTop + f.plotBottom) / 2})">${esc(label)}</text>`);
  return parts.join('');
}

export function linearY(f: Frame, max: number): { y: (v: number) => number; ticks: number[] } {
  const top = Math.max(1, max) * 1.08;
  const step = niceStep(top, 5);
  const ticks: number[] = [];
  for (let v = 0; v <= top; v += step) ticks.push(v);
  return { y: (v) => f.plotBottom - (Math.max(0, v) / top) * (f.plotBottom - f.plotTop), ticks };
}

export function logY(f: Frame, min: number, max: number): { y: (v: number) => number; ticks: number[] } {
  const lo = Math.floor(Math.log10(Math.max(0.1, min)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(1, max))));
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
  return { y: (v) => f.plotBottom - ((Math.log10(Math.max(10 ** lo, v)) - lo) / (hi - lo)) * (f.plotBottom - f.plotTop), ticks };
}

/** Faults as translucent bands behind the data, each with its description on hover. */
export function bands(f: Frame, list: readonly Band[]): string {
  return list
    .map((b) => {
      const x1 = f.x(b.startS);
      const w = Math.max(1, f.x(b.endS) - x1);
      return `<rect x="${x1.toFixed(1)}" y="${f.plotTop}" width="${w.toFixed(1)}" height="${f.plotBottom - f.plotTop}" fill="${FAULT_COLORS[b.kind] ?? '#999'}" fill-opacity="0.13"><title>${esc(b.label)}</title></rect>`;
    })
    .join('');
}

export function polyline(f: Frame, points: readonly (readonly [number, number])[], y: (v: number) => number, color: string, width = 1.5): string {
  if (points.length === 0) return '';
  const d = points.map(([s, v]) => `${f.x(s).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  return `<polyline points="${d}" fill="none" stroke="${color}" stroke-width="${width}"/>`;
}

export function dots(f: Frame, points: readonly (readonly [number, number])[], y: (v: number) => number, color: string, r = 1.6): string {
  return points.map(([s, v]) => `<circle cx="${f.x(s).toFixed(1)}" cy="${y(v).toFixed(1)}" r="${r}" fill="${color}" fill-opacity="0.55"/>`).join('');
}

export function svg(f: Frame, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${f.height}" viewBox="0 0 ${WIDTH} ${f.height}" font-family="sans-serif">${body}</svg>`;
}

export function legend(items: readonly { readonly label: string; readonly color: string; readonly band?: boolean }[]): string {
  return `<div class="legend">${items
    .map((i) => `<span><i style="background:${i.color};${i.band === true ? 'opacity:0.35' : ''}"></i>${esc(i.label)}</span>`)
    .join('')}</div>`;
}
