/**
 * Summarises a V8 `.cpuprofile` (`node --cpu-prof`): the top frames by self
 * time and the share of each area (Node's http2 / streams / TLS internals,
 * Heimdall's core and plugins, GC). `(idle)` is left out of the shares.
 * Usage as a script: `cpuprofile.ts <file.cpuprofile> [top]`.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The area a frame belongs to. */
function area(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)';
  if (url.startsWith('node:internal/http2')) return 'node http2';
  if (url.startsWith('node:internal/streams') || url === 'node:stream') return 'node streams';
  if (url.startsWith('node:_tls') || url.startsWith('node:internal/tls') || url === 'node:tls') return 'node tls';
  if (url.startsWith('node:net') || url.startsWith('node:internal/stream_base')) return 'node net';
  if (url.startsWith('node:')) return 'node other';
  if (url.includes('/packages/core/src/transport/')) return 'heimdall transport';
  if (url.includes('/packages/core/')) return 'heimdall core';
  if (url.includes('/plugins/')) return 'heimdall plugins';
  return 'other js';
}

/** Text lines: total sampled time, the areas' shares, then the `top` frames by self time. */
export function summarizeProfile(file: string, top = 25): string[] {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const frames = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') continue;
    total += us;
    const key = `${f.functionName || '(anonymous)'} ${f.url === '' ? '' : `${f.url.startsWith('node:') ? f.url : basename(f.url)}:${f.lineNumber + 1}`}`.trim();
    frames.set(key, (frames.get(key) ?? 0) + us);
    const a = area(f.url, f.functionName);
    areas.set(a, (areas.get(a) ?? 0) + us);
  }
  const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)} %`;
  const out = [`busy (non-idle) samples: ${(total / 1e6).toFixed(2)} s`, 'by area (self time):'];
  for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1])) out.push(`  ${pct(us)}  ${a}`);
  out.push(`top ${top} frames by self time:`);
  for (const [k, us] of [...frames].sort((x, y) => y[1] - x[1]).slice(0, top)) out.push(`  ${pct(us)}  ${k}`);
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(summarizeProfile(process.argv[2]!, Number(process.argv[3] ?? 25)).join('\n'));
}
