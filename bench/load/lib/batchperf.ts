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
import type { DnsperfOptions, DnsperfResult } from './dnsperf.js';
import { hasTaskset, track } from './proc.js';

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

/** Options: dnsperf's, plus `outstanding` (default 4000) and `clients` sockets (default 4). */
export async function runBatchperf(opts: DnsperfOptions): Promise<DnsperfResult> {
  const bin = buildBatchperf(opts.tmpDir);
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
    String(opts.outstanding ?? 4000),
    '-t',
    String((opts.timeout ?? 1) * 1000),
  ];
  if (opts.seconds !== undefined) args.push('-l', String(opts.seconds));
  if (opts.maxRuns !== undefined) args.push('-n', String(opts.maxRuns));
  if (opts.qps !== undefined) args.push('-Q', String(opts.qps));
  const core = opts.core === undefined ? 1 : opts.core;
  const argv = core !== null && hasTaskset ? ['taskset', '-c', String(core), bin, ...args] : [bin, ...args];
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
  const r = JSON.parse(out.trim()) as {
    sent: number;
    completed: number;
    lost: number;
    qps: number;
    runSeconds: number;
    avgUs: number;
    p50Us: number;
    p99Us: number;
    p999Us: number;
    rcodes: Record<string, number>;
  };
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
