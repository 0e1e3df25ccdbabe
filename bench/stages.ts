// CPU per request split by where the gateway spends it, from a sampled V8 CPU
// profile (node --cpu-prof) of a wrk run: every sample is charged to the
// nearest gateway module on its stack (dist/<folder>/<file>.js, so a
// JSON.parse or an undici write called from a stage counts for that stage's
// module), or, with no gateway frame on the stack, to the library or runtime
// part it ran in (undici, hono, node internals, garbage collection). Shares
// of the profile times the run's measured CPU per request give µs per
// request; the profiler's own cost is in the run's CPU, so read the split,
// not the total.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  /** µs, V8's clock. */
  endTime: number;
  startTime: number;
}

export interface StageShare {
  part: string;
  share: number;
  usPerRequest: number;
}

function libraryPart(url: string, fn: string): string {
  if (fn === '(garbage collector)') return '(garbage collection)';
  if (fn === '(program)') return '(runtime, native)';
  if (url.includes('node_modules/undici')) return 'undici (no gateway frame)';
  if (url.includes('node_modules/hono') || url.includes('node_modules/@hono')) return 'hono (no gateway frame)';
  if (url.includes('node_modules/pino') || url.includes('thread-stream') || url.includes('sonic-boom')) return 'pino (no gateway frame)';
  if (url.includes('node_modules/prom-client')) return 'prom-client (no gateway frame)';
  if (url.startsWith('node:')) return 'node internals (no gateway frame)';
  return url === '' ? '(runtime, native)' : 'other libraries (no gateway frame)';
}

/**
 * The split of one profile; idle samples are left out, and so is everything
 * before the last `lastUs` µs of it (the process's start-up and warm-up: the
 * profiled process is stopped right after its measured run).
 */
export function splitProfile(profile: Profile, cpuUsPerRequest: number, o: { lastUs?: number; distMarker?: string } = {}): StageShare[] {
  const distMarker = o.distMarker ?? '/dist/';
  const from = o.lastUs === undefined ? -Infinity : profile.endTime - o.lastUs;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const partOf = new Map<number, string>();
  const part = (id: number): string => {
    const known = partOf.get(id);
    if (known !== undefined) return known;
    const leaf = byId.get(id)!;
    let found = '';
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const url = byId.get(at)!.callFrame.url;
      const i = url.lastIndexOf(distMarker);
      if (i >= 0 && !url.includes('node_modules')) {
        found = url.slice(i + distMarker.length).replace(/\.js$/, '');
        break;
      }
    }
    const result = found || libraryPart(leaf.callFrame.url, leaf.callFrame.functionName);
    partOf.set(id, result);
    return result;
  };
  const time = new Map<string, number>();
  let total = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    at += dt;
    if (at < from || byId.get(id)?.callFrame.functionName === '(idle)') return;
    const p = part(id);
    time.set(p, (time.get(p) ?? 0) + dt);
    total += dt;
  });
  return [...time]
    .map(([p, t]) => ({ part: p, share: t / total, usPerRequest: (t / total) * cpuUsPerRequest }))
    .sort((a, b) => b.share - a.share);
}

/** Reads the one .cpuprofile a process wrote into `dir`. */
export function readProfile(dir: string): Profile {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  return JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
}

/** The split as printed lines: parts under 1% folded into one. */
export function formatSplit(split: StageShare[]): string[] {
  const shown = split.filter((s) => s.share >= 0.01);
  const rest = split.filter((s) => s.share < 0.01);
  const rows = shown.map((s) => `| ${s.part} | ${(s.share * 100).toFixed(1)}% | ${s.usPerRequest.toFixed(0)} |`);
  if (rest.length > 0) {
    const share = rest.reduce((sum, s) => sum + s.share, 0);
    const us = rest.reduce((sum, s) => sum + s.usPerRequest, 0);
    rows.push(`| ${rest.length} parts under 1% each | ${(share * 100).toFixed(1)}% | ${us.toFixed(0)} |`);
  }
  return ['| where (nearest gateway module) | share of CPU | µs per request |', '|---|---:|---:|', ...rows];
}
