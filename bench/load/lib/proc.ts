/**
 * Process helpers for the load harness: start servers pinned to a CPU core,
 * read their CPU time and resident memory from /proc, find free loopback
 * ports, wait until a DNS server answers, and make sure every child dies
 * with the harness (normal exit, error, Ctrl-C).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

const children = new Set<ChildProcess>();
let cleanupInstalled = false;

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  const killAll = (): void => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    children.clear();
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      killAll();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (err) => {
    console.error(err);
    killAll();
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    console.error(err);
    killAll();
    process.exit(1);
  });
}

/** Kills `child` (SIGKILL) if it is still running when the harness exits. */
export function track(child: ChildProcess): void {
  installCleanup();
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** Whether `taskset` exists (util-linux); without it processes run unpinned. */
export const hasTaskset: boolean = spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status === 0;

/** A child process started by {@link startPinned}. */
export interface Pinned {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything the child wrote to stdout and stderr, capped at 64 KiB (for error messages). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `command args…` pinned to CPU `core` with `taskset -c` (which execs,
 * so the pid is the server's own pid). The child is killed when the harness
 * exits for any reason.
 */
export function startPinned(name: string, core: number | null, command: string, args: string[], env?: NodeJS.ProcessEnv): Pinned {
  installCleanup();
  const argv = core !== null && hasTaskset ? ['taskset', '-c', String(core), command, ...args] : [command, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  children.add(child);
  let out = '';
  const collect = (chunk: Buffer): void => {
    if (out.length < 65536) out += chunk.toString('utf8');
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => children.delete(child));
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  return {
    name,
    child,
    pid: child.pid,
    output: () => out,
    async stop(graceMs = 3000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** User and system CPU time (all threads) of a process, in clock ticks. */
function cpuTicks(pid: number): { utime: number; stime: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { utime: Number(fields[11]), stime: Number(fields[12]) };
}

/** CPU time (user + system, all threads) of a process, in microseconds. Resolution: one clock tick (10 ms). */
export function cpuMicros(pid: number): number {
  const { utime, stime } = cpuTicks(pid);
  return ((utime + stime) * 1e6) / CLK_TCK;
}

/** The system (kernel) part of {@link cpuMicros}: syscalls, and on loopback the delivery of what the process sends. */
export function sysCpuMicros(pid: number): number {
  return (cpuTicks(pid).stime * 1e6) / CLK_TCK;
}

/**
 * CPU µs of each thread of a process (by thread name, summed over threads of
 * the same name) and the main thread's involuntary context switches (times it
 * was preempted: by its own helper threads when pinned to one core, or by
 * another process).
 */
export function threadCpu(pid: number): { byName: Map<string, number>; preempted: number } {
  const byName = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const us = ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
      const key = Number(tid) === pid ? 'main' : name;
      byName.set(key, (byName.get(key) ?? 0) + us);
    } catch {
      // the thread ended
    }
  }
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const preempted = Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  return { byName, preempted };
}

/** Resident set size of a process in bytes (VmRSS from /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

/** Sum of RSS over a process and its direct children (cluster workers). */
export function treeRssBytes(pid: number): number {
  let total = rssBytes(pid);
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    for (const kid of kids) total += rssBytes(Number(kid));
  } catch {
    // children file not available: the process alone
  }
  return total;
}

/** A loopback port free on both UDP and TCP right now. */
export async function freePort(address = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, address, () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const sock = dgram.createSocket('udp4');
      sock.once('error', () => resolve(false));
      sock.bind(port, address, () => sock.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no free port found on loopback');
}

/** A minimal DNS query for `name`/A with the given ID (wire format). */
export function dnsQuery(name: string, id = 0x1234, qtype = 1): Buffer {
  const labels = name.split('.').filter(Boolean);
  const qname = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])), Buffer.from([0])]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(qtype, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([header, qname, tail]);
}

/**
 * The bare servers' answer to `name`/A, ID 0 (patch the ID per query): the
 * query with QR|RD|RA, ANCOUNT=1, plus one A record 192.0.2.1, TTL 3600.
 */
export function precomputedAnswer(name: string): Buffer {
  const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1]);
  const out = Buffer.concat([dnsQuery(name, 0), answer]);
  out.writeUInt16BE(0x8180, 2);
  out.writeUInt16BE(1, 6);
  return out;
}

/**
 * Sends `name`/A to `address:port` over UDP until any reply arrives (every
 * 100 ms), or rejects after `timeoutMs`. Returns the reply's RCODE.
 */
export async function waitForDns(port: number, address = '127.0.0.1', name = 'probe.example', timeoutMs = 15000, isAlive?: () => boolean): Promise<number> {
  const sock = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  try {
    return await new Promise<number>((resolve, reject) => {
      const query = dnsQuery(name, 0x4242);
      const started = Date.now();
      const timer = setInterval(() => {
        if (isAlive && !isAlive()) {
          clearInterval(timer);
          reject(new Error('server exited before answering'));
          return;
        }
        if (Date.now() - started > timeoutMs) {
          clearInterval(timer);
          reject(new Error(`no DNS answer from ${address}:${port} within ${timeoutMs} ms`));
          return;
        }
        sock.send(query, port, address);
      }, 100);
      sock.on('message', (msg) => {
        if (msg.length >= 12 && msg.readUInt16BE(0) === 0x4242) {
          clearInterval(timer);
          resolve(msg[3]! & 0x0f);
        }
      });
      sock.send(query, port, address);
    });
  } finally {
    sock.close();
  }
}

/** Sleeps `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs a load script's `main` and exits: 0 when it resolves, 1 with the error
 * printed when it rejects (the children started with {@link startPinned} are
 * killed on exit either way).
 */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
