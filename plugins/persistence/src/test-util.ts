/**
 * Test helpers: temporary directories, a resolver holding one persistence
 * instance, synthetic cache keys and entries (the tier stores bytes; the
 * cache's own format is the cache's business), a child-process host.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CACHE_TIERS, type CacheTier, type Clock, type Logger, STATE_STORE, type StateStore } from '@heimdall/core';
import { createLogger } from '@heimdall/core/pipeline';
import { type TestResolver, testResolver } from '@heimdall/testing';
import { CorruptValues } from './corrupt.js';
import { PersistenceEnv } from './env.js';
import { Maintenance } from './maintenance.js';
import type { PersistenceOptions } from './options.js';
import { persistence } from './plugin.js';
import { PersistenceStats } from './stats.js';
import type { DiskStateStore } from './state.js';
import type { DiskTier } from './tier.js';

const dirs: string[] = [];

/** A new empty temporary directory (removed by {@link cleanupDirs}). */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'heimdall-persistence-'));
  dirs.push(d);
  return d;
}

export function cleanupDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** What a test needs from one running instance. */
export interface Instance {
  readonly resolver: TestResolver;
  readonly tier: DiskTier;
  readonly state: DiskStateStore;
  readonly env: PersistenceEnv;
  readonly stats: PersistenceStats;
  readonly maintenance: Maintenance;
  readonly corrupt: CorruptValues;
  stop(): Promise<void>;
}

/** Builds and starts a resolver with `persistence(options)` (silent unless given a logger). */
export async function startInstance(options: Partial<PersistenceOptions> & { dir: string }, clock?: Clock, logger?: Logger): Promise<Instance> {
  const resolver = testResolver([persistence(options)], { ...(clock ? { clock } : {}), ...(logger ? { logger } : {}) });
  await resolver.start();
  const scope = resolver.scope('persistence');
  const tiers = resolver.container.getAll<CacheTier>(CACHE_TIERS);
  const tier = tiers[0] as DiskTier;
  const state = resolver.get<StateStore>(STATE_STORE) as DiskStateStore;
  return {
    resolver,
    tier,
    state,
    env: scope.get(PersistenceEnv),
    stats: scope.get(PersistenceStats),
    maintenance: scope.get(Maintenance),
    corrupt: scope.get(CorruptValues),
    stop: () => resolver.stop(),
  };
}

/** A cache key as the cache builds it: lowercased wire name, QTYPE A, QCLASS IN, flag character '1'. */
export function keyOf(name: string, type = 1, flag = '1'): Buffer {
  const labels = name
    .replace(/\.$/, '')
    .split('.')
    .filter((l) => l.length > 0);
  const parts: Buffer[] = [];
  for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l.toLowerCase(), 'latin1'));
  parts.push(Buffer.from([0, type >> 8, type & 0xff, 0, 1]), Buffer.from(flag, 'latin1'));
  return Buffer.concat(parts);
}

/** Deterministic entry bytes for a key (the tier treats values as opaque). */
export function entryOf(key: Uint8Array, size = 120): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = (key[i % key.length] + i * 7) & 0xff;
  return out;
}

/** One captured log call: level (pino's number), the fields object, the message. */
export interface LogLine {
  readonly level: number;
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

/** A logger at `info` that prints nothing and keeps every call (of it and its children) in `lines`. */
export function capturedLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = createLogger({
    level: 'info',
    hooks: {
      logMethod(args: unknown[], _method: unknown, level: number) {
        const [first, second] = args;
        if (typeof first === 'string') lines.push({ level, fields: {}, msg: first });
        else lines.push({ level, fields: (first ?? {}) as Record<string, unknown>, msg: String(second ?? '') });
      },
    },
  });
  return { logger, lines };
}

/**
 * Flips bits `mask` of the byte at `offset` from every occurrence of
 * `marker` in `dir/data.mdb` (the environment must be closed: this is a
 * change on disk behind LMDB's back). Returns the number of occurrences
 * (old copies of a page may hold the marker too; all are changed).
 */
export function flipOnDisk(dir: string, marker: Buffer, offset: number, mask = 0x01): number {
  const file = join(dir, 'data.mdb');
  const data = readFileSync(file);
  let found = 0;
  for (let at = data.indexOf(marker); at !== -1; at = data.indexOf(marker, at + 1)) {
    data[at + offset] ^= mask;
    found++;
  }
  writeFileSync(file, data);
  return found;
}

/** A child process hosting one persistence instance, driven by JSON lines (see test-child.ts). */
export class Child {
  readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private readonly waiters: Array<() => void> = [];
  exited: Promise<number | null>;

  constructor(options: Record<string, unknown>) {
    const script = fileURLToPath(new URL('./test-child.ts', import.meta.url));
    // From the package directory, so that tsx reads its tsconfig (decorators).
    const cwd = fileURLToPath(new URL('..', import.meta.url));
    this.proc = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', script, JSON.stringify(options)], { stdio: 'pipe', cwd });
    this.proc.stderr.on('data', (d: Buffer) => process.stderr.write(`[child ${this.proc.pid}] ${d}`));
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      this.lines.push(line);
      for (const w of this.waiters.splice(0)) w();
    });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
  }

  send(msg: Record<string, unknown>): void {
    this.proc.stdin.write(`${JSON.stringify(msg)}\n`);
  }

  /** The next line matching `pred` (lines before it are consumed). */
  async next(pred: (m: Record<string, unknown>) => boolean = () => true, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.lines.length > 0) {
        const m = JSON.parse(this.lines.shift()!) as Record<string, unknown>;
        if (pred(m)) return m;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('child: timed out waiting for a message');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends a request and waits for its reply (`{ id, ... }`). */
  private seq = 0;
  async ask(msg: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = ++this.seq;
    this.send({ ...msg, id });
    return this.next((m) => m.id === id);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.proc.kill(signal);
  }
}
