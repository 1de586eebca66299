import type { LeakResult, LeakSample } from './leak.js';
import { linearRegression } from './stats.js';

const MB = 2 ** 20;
const mb = (bytes: number | null) => (bytes === null ? '-' : `${(bytes / MB).toFixed(1)} MB`);

/** A small chart of post-GC heap (MB) against cycle, for a terminal. */
export function heapChart(samples: readonly LeakSample[], width = 60, height = 10): string {
  if (samples.length === 0) return '';
  const cols = Math.min(width, samples.length);
  // Each column shows the last sample of its bucket, so the right edge is the run's end.
  const points = Array.from({ length: cols }, (_, c) => samples[Math.min(samples.length - 1, Math.round(((c + 1) * samples.length) / cols) - 1)]!);
  const ys = points.map((p) => p.heapUsed / MB);
  let lo = Math.min(...ys);
  let hi = Math.max(...ys);
  if (hi - lo < 1) {
    const mid = (hi + lo) / 2;
    lo = mid - 0.5;
    hi = mid + 0.5;
  }
  const rows: string[] = [];
  for (let r = height - 1; r >= 0; r--) {
    const level = lo + ((hi - lo) * r) / (height - 1);
    const label = r === height - 1 || r === 0 || r === Math.floor(height / 2) ? `${level.toFixed(1).padStart(7)} MB |` : `${''.padStart(10)} |`;
    let line = '';
    for (const y of ys) line += Math.round(((y - lo) / (hi - lo)) * (height - 1)) === r ? '*' : ' ';
    rows.push(`${label}${line}`);
  }
  rows.push(`${''.padStart(10)} +${'-'.repeat(cols)}`);
  const first = String(points[0]!.cycle);
  const last = String(points[points.length - 1]!.cycle);
  rows.push(`${''.padStart(12)}cycle ${first}${last.padStart(Math.max(last.length + 1, cols - first.length - 6))}`);
  return `${rows.join('\n')}\n`;
}

/** The last line of the text report: a run stopped too early says so, never PASS or LEAK. */
function verdictLine(r: LeakResult): string {
  if (r.inconclusive) return `NO VERDICT: ${r.inconclusive}${r.reasons.length ? ` (so far: ${r.reasons.join('; ')})` : ''}`;
  return r.verdict === 'pass' ? 'PASS: no leak detected' : `LEAK: ${r.reasons.join('; ')}`;
}

/** The verdict and figures, for a terminal. */
export function leakText(r: LeakResult): string {
  const lines = [
    `wcagai leak: ${r.cycles}${r.cycles < r.plannedCycles ? ` of ${r.plannedCycles} planned (stopped early)` : ''} cycle(s) x ${r.concurrent} concurrent scan(s) on ${r.pages} page(s) = ${r.scans} scans in ${(r.durationMs / 1_000).toFixed(1)} s (warm-up ${r.warmupCycles} cycle(s), ${r.heap.samples} samples after GC)`,
    '',
    heapChart(r.samples).trimEnd(),
    '',
    `heap (post-GC)   ${mb(r.heap.startBytes)} -> ${mb(r.heap.endBytes)} (growth ${mb(r.heap.growthBytes)}); slope ${(r.heap.slopeBytesPerCycle / 1024).toFixed(1)} KB/cycle, 95% CI [${r.heap.slopeCi.map((v) => (v === null ? '-' : (v / 1024).toFixed(1))).join(', ')}] KB/cycle, R² ${r.heap.r2.toFixed(3)}`,
    `external         ${mb(r.external.startBytes)} -> ${mb(r.external.endBytes)} (max ${mb(r.external.maxBytes)})`,
    `node rss         ${mb(r.rss.startBytes)} -> ${mb(r.rss.endBytes)} (max ${mb(r.rss.maxBytes)})`,
    `chromium tree    ${r.chromiumRss ? `${mb(r.chromiumRss.startBytes)} -> ${mb(r.chromiumRss.endBytes)} (max ${mb(r.chromiumRss.maxBytes)})` : 'not measured'}`,
    `active handles   ${r.handles.start} -> ${r.handles.end} (max ${r.handles.max})`,
    `errors           ${r.errors} of ${r.scans} (${(r.errorRate * 100).toFixed(1)}%)${Object.keys(r.errorCodes).length ? `: ${Object.entries(r.errorCodes).map(([c, n]) => `${c} ${n}`).join(', ')}` : ''}`,
    ...(r.snapshots.length ? [`heap snapshots   ${r.snapshots.join(', ')}`] : []),
    '',
    verdictLine(r),
  ];
  return `${lines.join('\n')}\n`;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** An SVG line chart of heap, external and RSS figures (MB) against cycle, with the fitted trend. */
export function leakSvg(r: LeakResult, width = 800, height = 360): string {
  const pad = { l: 60, r: 20, t: 20, b: 40 };
  const s = r.samples;
  if (s.length === 0) return '';
  const series: Array<{ name: string; color: string; values: number[] }> = [
    { name: 'heap used (post-GC)', color: '#0b5cad', values: s.map((x) => x.heapUsed / MB) },
    { name: 'external', color: '#7a3fb0', values: s.map((x) => x.external / MB) },
  ];
  const x0 = s[0]!.cycle;
  const x1 = Math.max(s[s.length - 1]!.cycle, x0 + 1);
  const all = series.flatMap((x) => x.values);
  const y0 = Math.min(0, ...all);
  const y1 = Math.max(...all) * 1.1 || 1;
  const px = (c: number) => pad.l + ((c - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const py = (v: number) => height - pad.b - ((v - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  const path = (values: number[]) => values.map((v, i) => `${i ? 'L' : 'M'}${px(s[i]!.cycle).toFixed(1)},${py(v).toFixed(1)}`).join(' ');
  const fit = linearRegression(
    s.map((x) => x.cycle),
    s.map((x) => x.heapUsed / MB),
  );
  const trend = `M${px(x0).toFixed(1)},${py(fit.intercept + fit.slope * x0).toFixed(1)} L${px(x1).toFixed(1)},${py(fit.intercept + fit.slope * x1).toFixed(1)}`;
  const ticks = Array.from({ length: 5 }, (_, i) => y0 + ((y1 - y0) * i) / 4);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="Heap used after GC against cycle">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...ticks.map((t) => `<line x1="${pad.l}" x2="${width - pad.r}" y1="${py(t).toFixed(1)}" y2="${py(t).toFixed(1)}" stroke="#ddd"/><text x="${pad.l - 6}" y="${(py(t) + 4).toFixed(1)}" text-anchor="end" font-size="11" fill="#333">${t.toFixed(1)}</text>`),
    `<text x="14" y="${height / 2}" transform="rotate(-90 14 ${height / 2})" text-anchor="middle" font-size="12" fill="#333">MB</text>`,
    `<text x="${(width + pad.l) / 2}" y="${height - 8}" text-anchor="middle" font-size="12" fill="#333">cycle (${x0} to ${x1})</text>`,
    ...series.map((x) => `<path d="${path(x.values)}" fill="none" stroke="${x.color}" stroke-width="2"/>`),
    `<path d="${trend}" fill="none" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="6 4"/>`,
    ...series.map((x, i) => `<text x="${pad.l + 10 + i * 200}" y="${pad.t + 4}" font-size="12" fill="${x.color}">&#9632; ${esc(x.name)}</text>`),
    `<text x="${pad.l + 410}" y="${pad.t + 4}" font-size="12" fill="#c0392b">- - fitted trend</text>`,
    '</svg>',
  ].join('\n');
}

/** A self-contained HTML page: verdict, figures and the chart inline. */
export function leakHtml(r: LeakResult, generatedAt = new Date().toISOString()): string {
  const heading = r.inconclusive ? 'NO VERDICT' : r.verdict.toUpperCase();
  const rows: Array<[string, string]> = [
    ['verdict', r.inconclusive ? `none: ${r.inconclusive}` : r.verdict === 'pass' ? 'pass' : `leak: ${r.reasons.join('; ')}`],
    ['cycles × concurrent', `${r.cycles} × ${r.concurrent} = ${r.scans} scans on ${r.pages} page(s) (warm-up ${r.warmupCycles})`],
    ['duration', `${(r.durationMs / 1_000).toFixed(1)} s`],
    ['heap (post-GC)', `${mb(r.heap.startBytes)} → ${mb(r.heap.endBytes)}, growth ${mb(r.heap.growthBytes)}`],
    ['slope', `${(r.heap.slopeBytesPerCycle / 1024).toFixed(2)} KB/cycle, 95% CI [${r.heap.slopeCi.map((v) => (v === null ? '–' : (v / 1024).toFixed(2))).join(', ')}], R² ${r.heap.r2.toFixed(3)}`],
    ['projected growth', mb(r.heap.projectedGrowthBytes)],
    ['external', `${mb(r.external.startBytes)} → ${mb(r.external.endBytes)}`],
    ['node RSS', `${mb(r.rss.startBytes)} → ${mb(r.rss.endBytes)} (max ${mb(r.rss.maxBytes)})`],
    ['chromium tree RSS', r.chromiumRss ? `${mb(r.chromiumRss.startBytes)} → ${mb(r.chromiumRss.endBytes)} (max ${mb(r.chromiumRss.maxBytes)})` : 'not measured'],
    ['active handles', `${r.handles.start} → ${r.handles.end} (max ${r.handles.max})`],
    ['errors', `${r.errors} (${(r.errorRate * 100).toFixed(1)}%)`],
    ['criteria', `growth ≤ ${mb(r.criteria.maxGrowthBytes)}, trend ≤ ${mb(r.criteria.toleranceBytes)} over the run, errors ≤ ${(r.criteria.maxErrorRate * 100).toFixed(0)}%`],
  ];
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>wcagai leak report: ${esc(heading.toLowerCase())}</title>
<style>body{font-family:system-ui,sans-serif;max-width:860px;margin:2rem auto;color:#1a1a1a}th{text-align:left;padding-right:1rem;vertical-align:top}td,th{padding:.2rem .5rem}.pass{color:#1e7e34}.leak{color:#b00020}.none{color:#8a5a00}</style></head>
<body>
<h1>wcagai leak: <span class="${r.inconclusive ? 'none' : r.verdict}">${esc(heading)}</span></h1>
<p>Generated ${esc(generatedAt)}.</p>
${leakSvg(r)}
<table>
${rows.map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${esc(v)}</td></tr>`).join('\n')}
</table>
</body>
</html>
`;
}
