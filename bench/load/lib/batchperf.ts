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

/** Options: dnsperf's, plus `outstanding` (default 4000) and `clients` sockets (default 4). */
export async function runBatchperf(opts: DnsperfOptions): Promise<DnsperfResult> {
  const bin = buildBatchperf(opts.tmpDir);
  const args = loadClientArgs(opts, opts.outstanding ?? 4000, String((opts.timeout ?? 1) * 1000));
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
