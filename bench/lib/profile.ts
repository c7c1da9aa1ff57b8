/**
 * `--cpu-prof`: the broker runs under `node --cpu-prof`, and its profile (written when it
 * exits) is summarised here as the functions with the most self time — where the
 * broker's own overhead goes when it misses a target.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

export interface HotSpot {
  name: string;
  where: string;
  selfPercent: number;
}

function where(url: string, line: number): string {
  if (!url) return '';
  const trimmed = url.replace(/^file:\/\//, '');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(trimmed);
  if (pkg) return `${pkg[1]}/${pkg[2].split('/').slice(-2).join('/')}:${line + 1}`;
  const app = /\.next\/(.*)$/.exec(trimmed);
  if (app) return `.next/${app[1].split('/').slice(-1)[0]}:${line + 1}`;
  return `${trimmed}:${line + 1}`;
}

/** The newest `.cpuprofile` in `dir`, summarised: the top `limit` functions by self time. */
export function hotSpots(dir: string, limit = 20): { file: string; seconds: number; spots: HotSpot[]; byArea: HotSpot[] } | undefined {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  const file = files.at(-1);
  if (!file) return undefined;
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const counts = new Map<number, number>();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const total = profile.samples.length || 1;
  const idle = new Set(['(idle)', '(program)']);
  const byFunction = new Map<string, HotSpot>();
  const byArea = new Map<string, HotSpot>();
  let busy = 0;
  for (const node of profile.nodes) {
    const hits = counts.get(node.id) ?? 0;
    if (hits === 0 || idle.has(node.callFrame.functionName)) continue;
    busy += hits;
    const name = node.callFrame.functionName || '(anonymous)';
    const at = where(node.callFrame.url, node.callFrame.lineNumber);
    const key = `${name} ${at}`;
    const entry = byFunction.get(key) ?? { name, where: at, selfPercent: 0 };
    entry.selfPercent += (hits / total) * 100;
    byFunction.set(key, entry);
    const area = areaOf(node.callFrame.url, node.callFrame.functionName);
    const a = byArea.get(area) ?? { name: area, where: '', selfPercent: 0 };
    a.selfPercent += (hits / total) * 100;
    byArea.set(area, a);
  }
  const rank = (m: Map<string, HotSpot>) => [...m.values()].sort((x, y) => y.selfPercent - x.selfPercent);
  return {
    file: join(dir, file),
    seconds: (profile.endTime - profile.startTime) / 1e6,
    spots: rank(byFunction).slice(0, limit),
    byArea: [...rank(byArea), { name: 'busy (not idle)', where: '', selfPercent: (busy / total) * 100 }],
  };
}

function areaOf(url: string, functionName: string): string {
  if (functionName === '(garbage collector)') return 'garbage collector';
  if (!url) return 'native / V8 builtins';
  if (url.startsWith('node:')) return 'node core';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1];
  if (url.includes('/.next/')) return 'the app bundle (.next)';
  return 'other';
}
