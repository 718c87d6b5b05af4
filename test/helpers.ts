/**
 * End-to-end helpers: start the BUILT reference app (`apps/heimdall/dist/cli.js`)
 * as a separate process with a temporary config, wait for its `listening`
 * log line, and query it with the real `dig` and `kdig` clients.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = join(REPO, 'apps/heimdall/dist/cli.js');

/** A loopback port free on both UDP and TCP right now (dig's TCP retry needs the same port as UDP). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((res, rej) => {
      const srv = net.createServer();
      srv.once('error', rej);
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => res(p));
      });
    });
    const ok = await new Promise<boolean>((res) => {
      const s = dgram.createSocket('udp4');
      s.once('error', () => res(false));
      s.bind(port, '127.0.0.1', () => s.close(() => res(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port');
}

/** A running app process. */
export interface AppProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly adminUrl: string | null;
  /** The temporary config file the app was started with (rewrite it, then SIGHUP). */
  readonly configFile: string;
  /** The parsed `listening` log line. */
  readonly listening: Record<string, unknown>;
  /** stdout + stderr so far. */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process exits. */
  readonly exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after 10 s; resolves with the exit code. */
  stop(): Promise<number | string>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/**
 * Writes `config` to a temp file and runs the app with it (plus `extraArgs`;
 * `env`: added to this process's environment). Rejects if it exits or logs
 * nothing in 15 s.
 */
export async function startApp(config: Record<string, unknown>, extraArgs: string[] = [], env: Record<string, string> = {}): Promise<AppProcess> {
  const dir = mkdtempSync(join(os.tmpdir(), 'heimdall-e2e-'));
  const file = join(dir, 'heimdall.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  const child = spawn(process.execPath, [CLI, '--config', file, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  running.add(child);
  let out = '';
  const exited = new Promise<number | string>((res) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      rmSync(dir, { recursive: true, force: true });
      res(code ?? signal ?? -1);
    }),
  );
  const listening = await new Promise<Record<string, unknown>>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no 'listening' line in 15 s:\n${out}`)), 15_000);
    let buffered = '';
    child.stderr!.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stdout!.on('data', (c: Buffer) => {
      const text = c.toString();
      out += text;
      buffered += text;
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf('\n');
        try {
          const j = JSON.parse(line) as Record<string, unknown>;
          if (j.msg === 'listening') {
            clearTimeout(timer);
            res(j);
          }
        } catch {
          // not JSON (query log to stdout is JSON too; anything else is ignored)
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`app exited (${code}) before listening:\n${out}`));
    });
  });
  const addr = (listening.addresses as string[])[0]!;
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  return {
    child,
    port,
    configFile: file,
    adminUrl: (listening.admin as string | null) ?? null,
    listening,
    output: () => out,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        const code = await exited;
        clearTimeout(t);
        return code;
      }
      return exited;
    },
  };
}

/** Runs the CLI with arguments and returns its exit code and output (for --help and config errors). */
export function runCli(args: string[], timeoutMs = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [CLI, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** One parsed answer line of dig/kdig. */
export interface DigRecord {
  name: string;
  ttl: number;
  type: string;
  data: string;
}

/** What dig or kdig printed, parsed. */
export interface DigResult {
  raw: string;
  status: string;
  flags: string[];
  question: string;
  answers: DigRecord[];
  authority: DigRecord[];
  /** The EDNS UDP size the server advertised, when the response had OPT. */
  ednsUdp: number | null;
  /** dig said it retried over TCP after a truncated answer. */
  retriedTcp: boolean;
}

function parseRecords(section: string): DigRecord[] {
  const out: DigRecord[] = [];
  for (const line of section.split('\n')) {
    const m = /^(\S+)\s+(\d+)\s+(?:IN\s+)?([A-Z0-9]+)\s+(.*)$/.exec(line.trim());
    if (m && !line.startsWith(';')) out.push({ name: m[1]!, ttl: Number(m[2]), type: m[3]!, data: m[4]! });
  }
  return out;
}

function section(raw: string, title: RegExp): string {
  const m = title.exec(raw);
  if (!m) return '';
  const rest = raw.slice(m.index + m[0].length);
  const end = rest.search(/\n\s*\n|\n;; /);
  return end < 0 ? rest : rest.slice(0, end);
}

/** Parses dig's and kdig's default output. */
export function parseDig(raw: string): DigResult {
  const status = /status: ([A-Z]+)/.exec(raw)?.[1] ?? 'NONE';
  const flags = (/flags: ([a-z ]+);/.exec(raw)?.[1] ?? /Flags: ([a-z ]+);/.exec(raw)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
  const question =
    (
      section(raw, /;; QUESTION SECTION:\n/)
        .trim()
        .split('\n')[0] ?? ''
    )
      .replace(/^;+/, '')
      .trim()
      .split(/\s+/)[0] ?? '';
  const edns = /udp: (\d+)/i.exec(raw) ?? /UDP size: (\d+)/i.exec(raw);
  return {
    raw,
    status,
    flags,
    question,
    answers: parseRecords(section(raw, /;; ANSWER SECTION:\n/)),
    authority: parseRecords(section(raw, /;; AUTHORITY SECTION:\n/)),
    ednsUdp: edns ? Number(edns[1]) : null,
    retriedTcp: /Truncated, retrying in TCP mode/.test(raw),
  };
}

/** Runs `dig @127.0.0.1 -p port …args` (async: the fake upstream lives in this process). Pass `@::1` in args for another server. */
export function dig(port: number, args: string[], bin = 'dig'): Promise<DigResult> {
  // An `@server` among args replaces the default 127.0.0.1.
  const server = args.some((a) => a.startsWith('@')) ? [] : ['@127.0.0.1'];
  const base = bin === 'kdig' ? [...server, '-p', String(port), '+timeout=3', '+retry=0'] : [...server, '-p', String(port), '+time=3', '+tries=1'];
  return new Promise((res, rej) => {
    execFile(bin, [...base, ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err && !stdout) rej(new Error(`${bin} ${args.join(' ')} failed: ${err.message} ${stderr}`));
      else res(parseDig(stdout));
    });
  });
}

/** `kdig` with the same parsing. */
export const kdig = (port: number, args: string[]): Promise<DigResult> => dig(port, args, 'kdig');

/** Sends an HTTP request to the admin server. */
export async function admin(base: string, path: string, init: RequestInit = {}): Promise<{ status: number; text: string; json: () => unknown }> {
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

/**
 * Starts the app on a free loopback port with its admin server on another,
 * logging at `info`, with the chain `plugins` (config entries) and
 * `extraArgs`. With `--workers`: resolves once the primary logged `cluster
 * ready`, `adminUrl` then being the primary's admin server.
 */
export async function startServing(plugins: unknown[], extraArgs: string[] = []): Promise<AppProcess> {
  const port = await freePort();
  const adminPort = await freePort();
  const app = await startApp({ listen: [`127.0.0.1:${port}`], admin: { listen: `127.0.0.1:${adminPort}` }, logLevel: 'info', plugins }, extraArgs);
  if (!extraArgs.includes('--workers')) return app;
  // The first worker's `listening` line came; wait for the primary's `cluster ready`, and for every worker's
  // `listening` line: pino writes asynchronously (sonic-boom, sync: false), so a worker's line can reach the
  // shared pipe after the primary has heard from the worker over IPC and logged `cluster ready` (seen once in a
  // full CI run under load: one listening line when the test looked).
  const n = Number(extraArgs[extraArgs.indexOf('--workers') + 1]);
  const listening = () => new Set([...app.output().matchAll(/"pid":(\d+)[^\n]*"msg":"listening"/g)].map((m) => m[1])).size;
  const deadline = Date.now() + 15_000;
  while (!/cluster ready/.test(app.output()) || (Number.isInteger(n) && listening() < n)) {
    if (Date.now() > deadline) {
      await app.stop();
      throw new Error(`no 'cluster ready' and ${n} 'listening' lines in 15 s:\n${app.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { ...app, adminUrl: `http://127.0.0.1:${adminPort}` };
}
