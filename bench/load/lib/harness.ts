/**
 * Pieces shared by the load harnesses (run.ts, native.ts, profile-native.ts):
 * command-line flags, starting a measured server, a measured row, and the
 * reference app's default chain.
 */
import type { ClientReport } from './dnsperf.js';
import type { Command } from './peers.js';
import { type Pinned, rssBytes, startPinned, waitForDns } from './proc.js';

/** The core the measured servers are pinned to. */
export const SERVER_CORE = 0;
/** The core of the load client (and the local upstream). */
export const CLIENT_CORE = 1;

/** The value after `--<name>` on the command line, else `fallback`. */
export function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

/** Starts a server pinned to `core` (the server core by default) and waits until it answers DNS. */
export async function startServer(name: string, cmd: Command, port: number, core: number | null = SERVER_CORE): Promise<Pinned> {
  const server = startPinned(name, core, cmd.command, cmd.args, cmd.env ? { ...process.env, ...cmd.env } : undefined);
  try {
    await waitForDns(port, '127.0.0.1', 'probe.bench.example', 20000, () => server.child.exitCode === null);
  } catch (err) {
    await server.stop();
    throw new Error(`${name} did not come up: ${(err as Error).message}\n${server.output().slice(-3000)}`);
  }
  return server;
}

/** One measured line of a results table. */
export interface LoadRow {
  scenario: string;
  server: string;
  qps: number;
  avgUs: number;
  p50Us: number | null;
  p99Us: number | null;
  p999Us: number | null;
  sent: number;
  completed: number;
  lost: number;
  cpuUsPerQuery: number;
  rssMB: number;
}

/**
 * A measured row: the client's report, then `extra` (in that place, so the
 * JSON keys keep their order), then the server's CPU µs per answered query
 * (`cpuUs` spent over the run) and its resident memory now.
 */
export function resultRow<E extends object>(
  scenario: string,
  server: Pinned,
  r: Omit<ClientReport, 'runSeconds' | 'rcodes'>,
  cpuUs: number,
  extra: E,
): LoadRow & E {
  return {
    scenario,
    server: server.name,
    qps: Math.round(r.qps),
    avgUs: Math.round(r.avgUs),
    p50Us: r.p50Us,
    p99Us: r.p99Us,
    p999Us: r.p999Us,
    sent: r.sent,
    completed: r.completed,
    lost: r.lost,
    ...extra,
    cpuUsPerQuery: r.completed > 0 ? Number((cpuUs / r.completed).toFixed(2)) : Number.NaN,
    rssMB: Number((rssBytes(server.pid) / 2 ** 20).toFixed(1)),
  };
}

/** A reference-app config serving UDP/TCP on `127.0.0.1:port`, admin off, logging warnings; `rest` follows (in that order). */
export function appConfig<R extends object>(port: number, rest: R) {
  return { listen: [`127.0.0.1:${port}`], admin: { enabled: false }, logLevel: 'warn', ...rest };
}

/**
 * The reference app's default chain after the acl (metrics → stats →
 * special-use → blocking with `blocklist` → cache (250k entries) → dedup →
 * upstream on UDP to `127.0.0.1:upstreamPort`); `stats: false` leaves stats out.
 */
export function defaultChain(blocklist: string, upstreamPort: number, stats = true): object[] {
  return [
    { use: 'metrics' },
    ...(stats ? [{ use: 'stats' }] : []),
    { use: 'special-use' },
    { use: 'blocking', options: { groups: { default: { block: [blocklist] } } } },
    { use: 'cache', options: { maxEntries: 250_000 } },
    { use: 'dedup' },
    { use: 'upstream', options: { servers: [`udp://127.0.0.1:${upstreamPort}`] } },
  ];
}
