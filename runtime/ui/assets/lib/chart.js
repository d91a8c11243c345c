// A line chart in SVG over a fixed window of per-second buckets, drawn
// from live data (no library: a few polylines).

const SVG = 'http://www.w3.org/2000/svg';

function el(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

/// series: [{name, cls, values: number[]}] (oldest first, one per second).
export function lineChart(title, unit, series, seconds) {
  const w = 600, hgt = 140, pad = 28;
  const max = Math.max(1, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
  const svg = el('svg', { viewBox: `0 0 ${w} ${hgt}`, class: 'chart', role: 'img' });
  const label = series.map((s) => {
    const last = [...s.values].reverse().find((v) => v !== null);
    return `${s.name} ${last === undefined ? '–' : fmt(last)} ${unit}`;
  }).join(', ');
  svg.setAttribute('aria-label', `${title}: ${label}`);
  svg.append(el('line', { x1: pad, y1: hgt - pad, x2: w, y2: hgt - pad, class: 'axis' }));
  const top = el('text', { x: 2, y: 12, class: 'tick' });
  top.textContent = `${fmt(max)} ${unit}`;
  const left = el('text', { x: pad, y: hgt - 8, class: 'tick' });
  left.textContent = `-${seconds}s`;
  svg.append(top, left);
  for (const s of series) {
    const pts = [];
    s.values.forEach((v, i) => {
      if (v === null) return;
      const x = pad + ((w - pad) * i) / Math.max(1, s.values.length - 1);
      const y = hgt - pad - ((hgt - pad - 16) * v) / max;
      pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    });
    svg.append(el('polyline', { points: pts.join(' '), class: `line ${s.cls}` }));
  }
  const fig = document.createElement('figure');
  const cap = document.createElement('figcaption');
  cap.textContent = `${title} — ${label}`;
  fig.append(cap, svg);
  return fig;
}

function fmt(v) {
  return v >= 100 ? Math.round(v).toString() : v.toFixed(v >= 10 ? 1 : 2).replace(/\.?0+$/, '');
}
