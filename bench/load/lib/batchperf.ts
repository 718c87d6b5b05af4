/**
 * The batched load client (client/batchperf.c): sendmmsg/recvmmsg, N queries
 * in flight or a fixed rate, a fixed duration; QPS and latency percentiles.
 * Built with `cc` at bench time into the run's temp dir (no binary is
 * committed). Same result shape as dnsperf's, so the harness can use either.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ClientReport, type DnsperfOptions, type DnsperfResult, loadClientArgs, pinnedArgv } from './dnsperf.js';
import { track } from './proc.js';

const source = join(dirname(fileURLToPath(import.meta.url)), '../client/batchperf.c');
let built: string | null = null;

/** Compiles batchperf into `dir` (once per run). Throws when no C compiler is there. */
export function buildBatchperf(dir: string): string {
  if (built !== null && existsSync(built)) return built;
  const bin = join(dir, 'batchperf');
  const r = spawnSync(process.env.CC ?? 'cc', ['-O2', '-Wall', '-o', bin, source], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`could not build batchperf with cc: ${r.error?.message ?? r.stderr}`);
  built = bin;
  return bin;
}

const rawMmsgSource = join(dirname(fileURLToPath(import.meta.url)), '../servers/raw-mmsg.c');

/** Compiles the C floor server (servers/raw-mmsg.c: recvmmsg/sendmmsg, precomputed answers) into `dir`. */
export function buildRawMmsg(dir: string): string {
  const bin = join(dir, 'raw-mmsg');
  if (existsSync(bin)) return bin;
  const r = spawnSync(process.env.CC ?? 'cc', ['-O2', '-Wall', '-o', bin, rawMmsgSource], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`could not build raw-mmsg with cc: ${r.error?.message ?? r.stderr}`);
  return bin;
}

/**
 * Options: dnsperf's, plus `outstanding` (default 4000) and `clients` sockets
 * (default 4); `slowLog`: a file for every answer slower than `slowUs`
 * (default 100) and every stall of the client's own loop (batchperf -L/-T,
 * fixed-rate runs: see {@link slowAnswers}).
 */
export async function runBatchperf(opts: DnsperfOptions & { slowLog?: string; slowUs?: number }): Promise<DnsperfResult> {
  const bin = buildBatchperf(opts.tmpDir);
  const args = loadClientArgs(opts, opts.outstanding ?? 4000, String((opts.timeout ?? 1) * 1000));
  if (opts.slowLog !== undefined) args.push('-L', opts.slowLog, '-T', String(opts.slowUs ?? 100));
  const argv = pinnedArgv(opts.core, bin, args);
  let out = '';
  let err = '';
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (c) => resolve(c ?? 1));
  });
  if (code !== 0) throw new Error(`batchperf exited ${code}: ${err.slice(0, 2000)}`);
  // Percentiles are -1 where there is none.
  const r = JSON.parse(out.trim()) as Omit<ClientReport, 'p50Us' | 'p99Us' | 'p999Us'> & { p50Us: number; p99Us: number; p999Us: number };
  return {
    ...r,
    minUs: Number.NaN,
    maxUs: Number.NaN,
    p50Us: r.p50Us < 0 ? null : r.p50Us,
    p99Us: r.p99Us < 0 ? null : r.p99Us,
    p999Us: r.p999Us < 0 ? null : r.p999Us,
  };
}

/** CPU time (user + system) of a process and its direct children (cluster workers), µs. */
export function treeCpuMicros(pid: number, cpuMicros: (pid: number) => number): number {
  let total = cpuMicros(pid);
  try {
    for (const kid of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) total += cpuMicros(Number(kid));
  } catch {
    // no children file: the process alone
  }
  return total;
}

/** What a batchperf slow log says about a fixed-rate run's tail. */
export interface SlowAnswers {
  /** Answers slower than the threshold. */
  readonly slow: number;
  /** Of those, sent while the client's own loop was stalled (the client's noise, not the server's). */
  readonly duringClientStall: number;
  /** Client loop stalls over the threshold, and their total µs. */
  readonly clientStalls: number;
  readonly clientStallUs: number;
  /** Groups of slow answers sent within 2 ms of each other (one server stall each), per second of run. */
  readonly bursts: number;
  readonly burstsPerSecond: number;
  /** Median answers per burst and median burst span (first to last send, plus the last latency), µs. */
  readonly medianBurstSize: number;
  readonly medianBurstUs: number;
  /** Most common gaps between burst starts, rounded to 10 ms (a period: 10 ms timers, GC every few hundred ms…), as `gap ms ×count`. */
  readonly commonGaps: string;
}

/** Reads a batchperf slow log (`-L`) of a run of `seconds`: how the slow answers cluster. */
export function slowAnswers(file: string, seconds: number): SlowAnswers {
  const answers: Array<[number, number]> = [];
  const stalls: Array<[number, number]> = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [kind, a, b] = line.split(' ');
    if (kind === 'a') answers.push([Number(a), Number(b)]);
    else if (kind === 'c') stalls.push([Number(a), Number(b)]);
  }
  answers.sort((x, y) => x[0] - y[0]);
  let duringClientStall = 0;
  for (const [sent, lat] of answers) {
    if (stalls.some(([at, us]) => at + us >= sent && at <= sent + lat)) duringClientStall++;
  }
  const bursts: Array<{ start: number; end: number; n: number }> = [];
  for (const [sent, lat] of answers) {
    const last = bursts[bursts.length - 1];
    if (last !== undefined && sent - last.end <= 2000) {
      last.end = Math.max(last.end, sent + lat);
      last.n++;
    } else bursts.push({ start: sent, end: sent + lat, n: 1 });
  }
  const median = (xs: number[]): number => (xs.length === 0 ? 0 : [...xs].sort((p, q) => p - q)[xs.length >> 1]!);
  const gaps = new Map<number, number>();
  for (let i = 1; i < bursts.length; i++) {
    const g = Math.round((bursts[i]!.start - bursts[i - 1]!.start) / 10_000) * 10;
    gaps.set(g, (gaps.get(g) ?? 0) + 1);
  }
  return {
    slow: answers.length,
    duringClientStall,
    clientStalls: stalls.length,
    clientStallUs: stalls.reduce((s, [, us]) => s + us, 0),
    bursts: bursts.length,
    burstsPerSecond: bursts.length / seconds,
    medianBurstSize: median(bursts.map((b) => b.n)),
    medianBurstUs: median(bursts.map((b) => b.end - b.start)),
    commonGaps: [...gaps]
      .sort((x, y) => y[1] - x[1])
      .slice(0, 4)
      .map(([g, n]) => `${g} ms ×${n}`)
      .join(', '),
  };
}
