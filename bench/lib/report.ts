/**
 * Turning the runs into what a reader looks at: the summary per contestant, the table
 * with its ratios, the targets (reported, never asserted), and the SVG bar chart.
 */
import type { LoadFigures } from './load.ts';

export type ContestantId = 'floor1' | 'floor2' | 'floor3' | 'broker1' | 'brokerN';

export interface Summary {
  id: ContestantId;
  label: string;
  connections: number;
  /** Medians over the rounds. */
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Sums over the rounds. */
  requests: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** The highest RSS sampled in any round. */
  peakRssBytes: number;
  rounds: LoadFigures[];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function summarise(id: ContestantId, label: string, connections: number, rounds: LoadFigures[]): Summary {
  return {
    id,
    label,
    connections,
    requestsPerSecond: median(rounds.map((r) => r.requestsPerSecond)),
    p50Ms: median(rounds.map((r) => r.latencyMs.p50)),
    p99Ms: median(rounds.map((r) => r.latencyMs.p99)),
    requests: rounds.reduce((n, r) => n + r.requests, 0),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    timeouts: rounds.reduce((n, r) => n + r.timeouts, 0),
    non2xx: rounds.reduce((n, r) => n + r.non2xx, 0),
    peakRssBytes: Math.max(...rounds.map((r) => r.peakRssBytes)),
    rounds,
  };
}

export interface Target {
  name: string;
  met: boolean;
  figure: string;
}

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);
const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1));

function pad(cells: string[], widths: number[], rightAligned: boolean[]): string {
  return cells.map((c, i) => (rightAligned[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
}

export function table(byConnections: Map<number, Summary[]>): string {
  const header = ['contestant', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'non-2xx', 'peak RSS MB', '÷ floor 2', '÷ floor 3', '÷ floor 1'];
  const right = [false, true, true, true, true, true, true, true, true, true];
  const lines: string[] = [];
  for (const [connections, summaries] of byConnections) {
    const floor1 = summaries.find((s) => s.id === 'floor1');
    const floor2 = summaries.find((s) => s.id === 'floor2');
    const floor3 = summaries.find((s) => s.id === 'floor3');
    const rows = summaries.map((s) => [
      s.label,
      int(s.requestsPerSecond),
      ms(s.p50Ms),
      ms(s.p99Ms),
      String(s.errors + s.timeouts),
      String(s.non2xx),
      mb(s.peakRssBytes),
      s.id.startsWith('broker') && floor2 ? (s.requestsPerSecond / floor2.requestsPerSecond).toFixed(2) : '',
      s.id.startsWith('broker') && floor3 ? (s.requestsPerSecond / floor3.requestsPerSecond).toFixed(2) : '',
      s.id.startsWith('broker') && floor1 ? (s.requestsPerSecond / floor1.requestsPerSecond).toFixed(2) : '',
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    lines.push(`${connections} connections (median of ${summaries[0]?.rounds.length ?? 0} rounds)`);
    lines.push(pad(header, widths, right));
    lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const row of rows) lines.push(pad(row, widths, right));
    lines.push('');
  }
  return lines.join('\n');
}

/**
 * The front door's targets (issue 9): the broker at least 4 × floor 2 (a bare Next.js
 * forward) and at least 0.8 × floor 3 (a bare node:http + undici forward), with a p99 at
 * most 2 ms above floor 3's.
 */
export function throughputTargets(byConnections: Map<number, Summary[]>): Target[] {
  const targets: Target[] = [];
  for (const [connections, summaries] of byConnections) {
    const floor2 = summaries.find((s) => s.id === 'floor2');
    const floor3 = summaries.find((s) => s.id === 'floor3');
    for (const broker of summaries.filter((s) => s.id.startsWith('broker'))) {
      if (floor2) {
        const ratio = broker.requestsPerSecond / floor2.requestsPerSecond;
        targets.push({
          name: `throughput ≥ 4 × floor 2 — ${broker.label}, ${connections} connections`,
          met: ratio >= 4,
          figure: `${ratio.toFixed(2)} × (${int(broker.requestsPerSecond)} vs ${int(floor2.requestsPerSecond)} req/s)`,
        });
      }
      if (floor3) {
        const ratio = broker.requestsPerSecond / floor3.requestsPerSecond;
        targets.push({
          name: `throughput ≥ 0.8 × floor 3 — ${broker.label}, ${connections} connections`,
          met: ratio >= 0.8,
          figure: `${ratio.toFixed(2)} × (${int(broker.requestsPerSecond)} vs ${int(floor3.requestsPerSecond)} req/s)`,
        });
        const extra = broker.p99Ms - floor3.p99Ms;
        targets.push({
          name: `p99 ≤ floor 3 p99 + 2 ms — ${broker.label}, ${connections} connections`,
          met: extra <= 2,
          figure: `${ms(broker.p99Ms)} ms vs ${ms(floor3.p99Ms)} ms (${extra >= 0 ? '+' : ''}${ms(extra)} ms)`,
        });
      }
    }
  }
  return targets;
}

export function formatTargets(targets: Target[]): string {
  const width = Math.max(...targets.map((t) => t.name.length));
  return targets.map((t) => `${t.met ? 'MET   ' : 'MISSED'}  ${t.name.padEnd(width)}  ${t.figure}`).join('\n');
}

/* ------------------------------------------------------------------------------------ */
/* The chart: hand-written SVG, no dependency.                                           */

const COLOURS: Record<ContestantId, string> = {
  floor1: '#9aa5b1',
  floor2: '#52606d',
  floor3: '#7b8794',
  broker1: '#2f80ed',
  brokerN: '#1a4f9c',
};

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Grouped bars of requests per second, one group per connection count, with each bar's
 * figure and p99 written on it; the caption names the machine and the date.
 */
export function barChart(byConnections: Map<number, Summary[]>, caption: string): string {
  const width = 760;
  const height = 400;
  const left = 70;
  const right = 20;
  const top = 72;
  const bottom = 96;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const groups = [...byConnections.entries()];
  const maxValue = Math.max(1, ...groups.flatMap(([, s]) => s.map((x) => x.requestsPerSecond)));
  const step = niceStep(maxValue / 5);
  const top_ = Math.ceil(maxValue / step) * step;
  const y = (v: number) => top + plotH - (v / top_) * plotH;

  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="${left}" y="24" font-size="16" font-weight="600" fill="#1f2933">Requests per second (higher is better), median of rounds</text>`);
  parts.push(`<text x="${left}" y="42" fill="#52606d">${escapeXml('Each bar: req/s and p99 latency. Above the broker\'s bars: its throughput ÷ floor 2 (a bare Next.js fetch route).')}</text>`);
  for (let v = 0; v <= top_ + 1e-9; v += step) {
    parts.push(`<line x1="${left}" x2="${width - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e4e7eb"/>`);
    parts.push(`<text x="${left - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#52606d">${Math.round(v).toLocaleString('en-US')}</text>`);
  }
  const groupW = plotW / Math.max(1, groups.length);
  groups.forEach(([connections, summaries], g) => {
    const barW = Math.min(70, (groupW - 40) / Math.max(1, summaries.length));
    const start = left + g * groupW + (groupW - barW * summaries.length) / 2;
    const floor2 = summaries.find((s) => s.id === 'floor2');
    summaries.forEach((s, i) => {
      const x = start + i * barW;
      const yTop = y(s.requestsPerSecond);
      if (s.id.startsWith('broker') && floor2) {
        const ratio = s.requestsPerSecond / floor2.requestsPerSecond;
        parts.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${(yTop - 31).toFixed(1)}" text-anchor="middle" fill="${COLOURS[s.id]}" font-size="11" font-weight="600">${ratio.toFixed(2)}×</text>`);
      }
      parts.push(`<rect x="${(x + 3).toFixed(1)}" y="${yTop.toFixed(1)}" width="${(barW - 6).toFixed(1)}" height="${(top + plotH - yTop).toFixed(1)}" fill="${COLOURS[s.id]}"><title>${escapeXml(`${s.label}, ${connections} connections: ${Math.round(s.requestsPerSecond)} req/s, p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms`)}</title></rect>`);
      parts.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${(yTop - 18).toFixed(1)}" text-anchor="middle" fill="#1f2933" font-weight="600">${Math.round(s.requestsPerSecond).toLocaleString('en-US')}</text>`);
      parts.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${(yTop - 5).toFixed(1)}" text-anchor="middle" fill="#52606d" font-size="11">p99 ${ms(s.p99Ms)} ms</text>`);
    });
    parts.push(`<text x="${(left + g * groupW + groupW / 2).toFixed(1)}" y="${top + plotH + 20}" text-anchor="middle" fill="#1f2933" font-weight="600">${connections} connections</text>`);
  });
  parts.push(`<line x1="${left}" x2="${width - right}" y1="${top + plotH}" y2="${top + plotH}" stroke="#9aa5b1"/>`);
  // Legend
  let lx = left;
  const ly = top + plotH + 44;
  for (const c of groups[0]?.[1] ?? []) {
    parts.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${COLOURS[c.id]}"/>`);
    parts.push(`<text x="${lx + 17}" y="${ly}" fill="#1f2933">${escapeXml(c.label)}</text>`);
    lx += 17 + c.label.length * 6.1 + 18;
  }
  parts.push(`<text x="${left}" y="${height - 14}" fill="#52606d" font-size="11">${escapeXml(caption)}</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}
