/**
 * Runs dnsperf (2.10, Debian package `dnsperf`) pinned to a core and parses
 * its report. Latency percentiles come from dnsperf's verbose mode (`-v`,
 * one line per answered query with its latency), written to a temp file and
 * folded into a microsecond histogram, so a 1.5M-query run costs a few MB of
 * memory here. Verbose output does not lower dnsperf's throughput measurably
 * (measured: 145.9k vs 151.7k QPS against the raw server, within noise).
 */
import { spawn } from 'node:child_process';
import { createReadStream, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { hasTaskset, track } from './proc.js';

/** What to run. */
export interface DnsperfOptions {
  port: number;
  address?: string;
  /** Query file, one `name TYPE` per line. */
  queryFile: string;
  /** Time limit in seconds (`-l`). */
  seconds?: number;
  /** Run through the file at most this many times (`-n`). */
  maxRuns?: number;
  /** Fixed query rate (`-Q`); unset = as fast as the server answers. */
  qps?: number;
  /** Outstanding queries (`-q`), default 200. */
  outstanding?: number;
  /** Client sockets (`-c`), default 4. */
  clients?: number;
  /** Per-query timeout in seconds (`-t`), default 2. */
  timeout?: number;
  /** CPU core for dnsperf (`taskset -c`), default 1. */
  core?: number | null;
  /** Directory for the verbose output file. */
  tmpDir: string;
  /** Transport (`-m`): udp (default), tcp, dot or doh; each client keeps its connection for the run. */
  mode?: 'udp' | 'tcp' | 'dot' | 'doh';
  /** More dnsperf arguments (e.g. `-O doh-uri=…`). */
  extra?: string[];
}

/** What a load client reports (dnsperf, batchperf, doh-load). Latencies in microseconds. */
export interface ClientReport {
  sent: number;
  completed: number;
  lost: number;
  qps: number;
  runSeconds: number;
  avgUs: number;
  p50Us: number | null;
  p99Us: number | null;
  p999Us: number | null;
  rcodes: Record<string, number>;
}

/** Parsed dnsperf report. Latencies in microseconds. */
export interface DnsperfResult extends ClientReport {
  minUs: number;
  maxUs: number;
}

/**
 * The arguments dnsperf and batchperf share: `-s -p -d -c -q -t`, then
 * `flags`, then `-l -n -Q` where set. `outstanding` and `timeout` are the
 * client's own (defaults and unit).
 */
export function loadClientArgs(opts: DnsperfOptions, outstanding: number, timeout: string, flags: string[] = []): string[] {
  const args = [
    '-s',
    opts.address ?? '127.0.0.1',
    '-p',
    String(opts.port),
    '-d',
    opts.queryFile,
    '-c',
    String(opts.clients ?? 4),
    '-q',
    String(outstanding),
    '-t',
    timeout,
    ...flags,
  ];
  if (opts.seconds !== undefined) args.push('-l', String(opts.seconds));
  if (opts.maxRuns !== undefined) args.push('-n', String(opts.maxRuns));
  if (opts.qps !== undefined) args.push('-Q', String(opts.qps));
  return args;
}

/** `bin args` pinned to `core` with taskset (core 1 when undefined; unpinned when null or without taskset). */
export function pinnedArgv(core: number | null | undefined, bin: string, args: string[]): string[] {
  const c = core === undefined ? 1 : core;
  return c !== null && hasTaskset ? ['taskset', '-c', String(c), bin, ...args] : [bin, ...args];
}

const num = (text: string, re: RegExp): number => {
  const m = re.exec(text);
  return m ? Number(m[1]) : Number.NaN;
};

/** Parses the "Statistics:" block of a dnsperf report. */
export function parseDnsperfReport(text: string): Omit<DnsperfResult, 'p50Us' | 'p99Us' | 'p999Us'> {
  const rcodes: Record<string, number> = {};
  const rc = /Response codes:\s+(.*)/.exec(text);
  if (rc) {
    for (const part of rc[1]!.split(',')) {
      const m = /([A-Z]+)\s+(\d+)/.exec(part.trim());
      if (m) rcodes[m[1]!] = Number(m[2]);
    }
  }
  const lat = /Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)/.exec(text);
  return {
    sent: num(text, /Queries sent:\s+(\d+)/),
    completed: num(text, /Queries completed:\s+(\d+)/),
    lost: num(text, /Queries lost:\s+(\d+)/),
    qps: num(text, /Queries per second:\s+([\d.]+)/),
    runSeconds: num(text, /Run time \(s\):\s+([\d.]+)/),
    avgUs: lat ? Number(lat[1]) * 1e6 : Number.NaN,
    minUs: lat ? Number(lat[2]) * 1e6 : Number.NaN,
    maxUs: lat ? Number(lat[3]) * 1e6 : Number.NaN,
    rcodes,
  };
}

/** Latency histogram with 1 µs buckets up to 2 s (larger values land in the last bucket). */
class Histogram {
  private readonly buckets = new Uint32Array(2_000_001);
  count = 0;
  add(us: number): void {
    this.buckets[Math.min(Math.round(us), 2_000_000)]!++;
    this.count++;
  }
  percentile(p: number): number | null {
    if (this.count === 0) return null;
    const target = Math.ceil(this.count * p);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= target) return i;
    }
    return this.buckets.length - 1;
  }
}

/** Runs dnsperf once and returns the parsed report with percentiles. */
export async function runDnsperf(opts: DnsperfOptions): Promise<DnsperfResult> {
  const args = loadClientArgs(opts, opts.outstanding ?? 200, String(opts.timeout ?? 2), ['-v']);
  if (opts.mode !== undefined && opts.mode !== 'udp') args.push('-m', opts.mode);
  if (opts.extra) args.push(...opts.extra);
  const argv = pinnedArgv(opts.core, 'dnsperf', args);
  const verboseFile = join(opts.tmpDir, `dnsperf-${process.pid}-${Date.now()}.out`);
  const { openSync, closeSync } = await import('node:fs');
  const fd = openSync(verboseFile, 'w');
  let stderr = '';
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, 'pipe'] });
    track(child);
    child.stderr!.on('data', (chunk: Buffer) => {
      if (stderr.length < 65536) stderr += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('exit', (c) => resolve(c ?? 1));
  });
  closeSync(fd);
  try {
    const hist = new Histogram();
    let report = '';
    let inStats = false;
    const lines = createInterface({ input: createReadStream(verboseFile), crlfDelay: Number.POSITIVE_INFINITY });
    for await (const line of lines) {
      if (line.charCodeAt(0) === 62 /* > */) {
        const space = line.lastIndexOf(' ');
        hist.add(Number(line.slice(space + 1)) * 1e6);
      } else if (inStats || line.startsWith('Statistics:')) {
        inStats = true;
        report += line + '\n';
      }
    }
    if (code !== 0 || !report) throw new Error(`dnsperf exited ${code}: ${stderr.slice(0, 2000)}`);
    return { ...parseDnsperfReport(report), p50Us: hist.percentile(0.5), p99Us: hist.percentile(0.99), p999Us: hist.percentile(0.999) };
  } finally {
    rmSync(verboseFile, { force: true });
  }
}
