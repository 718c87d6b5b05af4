/**
 * The one LMDB environment in `dir`: opened (synchronously, reading nothing
 * but the two meta pages and a few records, whatever its size), checked
 * (LMDB header, our format version, no foreign databases), and, when it
 * does not hold up, moved aside with a timestamp suffix and recreated empty.
 *
 * Every worker process of the host opens the same directory: LMDB's lock
 * file coordinates them (one writer at a time, readers never blocked), and
 * a repair lock keeps two of them from moving aside each other's fresh
 * environment.
 */
import process from 'node:process';
import { Buffer } from 'node:buffer';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { type Logger, PLUGIN_LOGGER, PLUGIN_OPTIONS } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { createError } from '@heimdall/core/errors';
import { type Database, open, type RootDatabase } from 'lmdb';
import type { PersistenceOptions } from './options.js';

/** Name of the format, stored under `format` in the `meta` database. */
export const FORMAT_NAME = 'heimdall-persistence';
/** Version of the layout of the databases below; another version is moved aside. */
export const FORMAT_VERSION = 2;
/** The named databases of the environment (nothing else may be in its root). */
export const DB_NAMES = ['meta', 'entries', 'age', 'state'] as const;
/** How many moved-aside copies are kept (older ones are deleted). */
const KEEP_ASIDE = 2;
/** A repair lock older than this (ms) belongs to a dead process and is taken over. */
const STALE_REPAIR_LOCK_MS = 15_000;

/** Why an environment was judged unusable (it is then moved aside): code `PERSISTENCE_UNUSABLE_ENV`. */
export class UnusableEnvironmentError extends createError<[reason: string]>('PERSISTENCE_UNUSABLE_ENV', '%s', 500) {
  override readonly name = 'UnusableEnvironmentError';
}

/** The format record stored under `meta/format`. */
export interface FormatRecord {
  readonly format: string;
  readonly version: number;
}

/** The open databases. */
export interface OpenEnv {
  readonly root: RootDatabase;
  /** `format`, `state-version`: small JSON values. */
  readonly meta: Database<unknown, string>;
  /** Cache key bytes → 20-byte header (CRC-32, expiresAt f64 LE, writtenAt f64 LE) + the cache's entry bytes (layout.ts). */
  readonly entries: Database<Buffer, Buffer>;
  /** Age index: writtenAt (6 bytes BE) + cache key → CRC-32 + expiresAt (f64 LE). Oldest first. */
  readonly age: Database<Buffer, Buffer>;
  /** State store: key → CRC-32 + the JSON record as UTF-8 (layout.ts `stateValue`). */
  readonly state: Database<Buffer, string>;
}

const LMDB_MAGIC = 0xbeefc0de;
const LMDB_DATA_VERSION = 2;
/** Page header size of lmdb-js's LMDB (pgno u64, txnid u64, pad u16, flags u16, lower u16, upper u16). */
const PAGE_HEADER = 24;
const P_META = 0x08;
const P_INVALID = 0xffff_ffff_ffff_ffffn;

/**
 * Checks `data.mdb`'s two meta pages before LMDB maps the file: LMDB
 * trusts its file and crashes the process (SIGSEGV) on a garbage or
 * truncated one, so this is what makes "unreadable" recoverable. Returns a
 * reason when the file cannot be an environment we can open; null when it
 * looks sound or does not exist.
 */
export function checkDataFile(file: string): string | null {
  if (!existsSync(file)) return null;
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return 'data.mdb is empty';
    const head = Buffer.alloc(Math.min(size, 65536 * 2));
    readSync(fd, head, 0, head.length, 0);
    if (head.length < PAGE_HEADER + 160) return `data.mdb is truncated (${size} bytes)`;
    const psize = head.readUInt32LE(PAGE_HEADER + 24);
    if (psize < 512 || psize > 65536 || (psize & (psize - 1)) !== 0) return 'data.mdb is not an LMDB file (bad page size)';
    if (size < 2 * psize) return `data.mdb is truncated (${size} bytes)`;
    const pages = BigInt(Math.floor(size / psize));
    for (let i = 0; i < 2; i++) {
      const p = i * psize;
      if (p + PAGE_HEADER + 160 > head.length) return 'data.mdb is truncated';
      if (head.readBigUInt64LE(p) !== BigInt(i) || (head.readUInt16LE(p + 18) & P_META) === 0) return `data.mdb meta page ${i} is not a meta page`;
      const m = p + PAGE_HEADER;
      if (head.readUInt32LE(m) !== LMDB_MAGIC) return 'data.mdb is not an LMDB file (bad magic)';
      if (head.readUInt32LE(m + 4) !== LMDB_DATA_VERSION) return `data.mdb has LMDB data version ${head.readUInt32LE(m + 4)}, not ${LMDB_DATA_VERSION}`;
      if (head.readUInt32LE(m + 24) !== psize) return 'data.mdb meta pages disagree on the page size';
      const lastPage = head.readBigUInt64LE(m + 120);
      // Every page a meta page points to must be inside the file: LMDB would read past its end (SIGBUS).
      if (lastPage + 1n > pages) return `data.mdb is truncated (meta page ${i} uses ${lastPage + 1n} pages, the file holds ${pages})`;
      for (const root of [head.readBigUInt64LE(m + 64), head.readBigUInt64LE(m + 112)]) {
        if (root !== P_INVALID && (root < 2n || root > lastPage)) return `data.mdb meta page ${i} points outside the file`;
      }
    }
    return null;
  } finally {
    closeSync(fd);
  }
}

/** Errors that say nothing about the environment's contents: never a reason to move it aside. */
function environmental(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException;
  const text = `${e?.code ?? ''} ${e?.message ?? ''}`;
  return /EACCES|EPERM|EROFS|ENOSPC|EMFILE|ENFILE|ENOMEM|EAGAIN|READERS_FULL|Permission denied|No space left|Read-only file system|Cannot allocate memory|temporarily unavailable/i.test(
    text,
  );
}

/** Sleeps synchronously (start-up only: waiting for another process's repair). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The environment of one plugin instance. Opened by `open()` (idempotent), closed by `close()`. */
@injectable()
export class PersistenceEnv {
  readonly dir: string;
  readonly capBytes: number;
  private readonly logger: Logger;
  private current: OpenEnv | null = null;
  /** Set by `close()`; `open()` clears it (a resolver may start again). */
  private closed = false;
  /** Files moved aside by this process (for tests and the log). */
  readonly movedAside: string[] = [];
  /** Environments moved aside by this process. */
  movedAsideCount = 0;
  /** Why the last one was. */
  lastMoveReason: string | null = null;

  constructor(@inject(PLUGIN_OPTIONS) options: PersistenceOptions, @inject(PLUGIN_LOGGER) logger: Logger) {
    this.dir = options.dir;
    this.capBytes = options.maxSizeMb * 1024 * 1024;
    this.logger = logger;
  }

  /** The open databases, or null before `open()` / after `close()`. Never opens. */
  get env(): OpenEnv | null {
    return this.current;
  }

  /** Whether `close()` was called (and `open()` not since). */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Opens the environment (nothing is loaded: LMDB maps the file), moving
   * an unusable one aside first. Throws when the directory cannot be used
   * at all (permissions, disk full), naming `dir`.
   */
  open(): OpenEnv {
    if (this.current !== null) return this.current;
    this.closed = false;
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch (err) {
      throw new Error(`plugin/persistence: cannot create dir ${this.dir}: ${(err as Error).message}`);
    }
    const data = join(this.dir, 'data.mdb');
    for (let attempt = 0; ; attempt++) {
      const before = inode(data);
      let reason = this.attempt(data);
      if (typeof reason !== 'string') return (this.current = reason);
      if (attempt >= 2) throw new Error(`plugin/persistence: the environment in ${this.dir} is still unusable after being recreated: ${reason}`);
      let opened: OpenEnv | null = null;
      this.withRepairLock(() => {
        // Another process may have repaired it meanwhile: then just open again.
        if (inode(data) !== before) return;
        // Judge again under the lock (never move aside a live environment on one bad read).
        const second = this.attempt(data);
        if (typeof second !== 'string') opened = second;
        else {
          reason = second;
          this.moveAside(reason);
        }
      });
      if (opened !== null) return (this.current = opened);
    }
  }

  /** One try: the open databases, or why the environment is unusable. Throws on errors that are not the environment's fault. */
  private attempt(data: string): OpenEnv | string {
    try {
      return this.tryOpen(data);
    } catch (err) {
      if (!(err instanceof UnusableEnvironmentError) && environmental(err)) {
        throw new Error(`plugin/persistence: cannot open the environment in ${this.dir}: ${(err as Error).message}`);
      }
      return (err as Error).message;
    }
  }

  private tryOpen(data: string): OpenEnv {
    const bad = checkDataFile(data);
    if (bad !== null) throw new UnusableEnvironmentError(bad);
    const root = open({
      path: this.dir,
      noSubdir: false,
      mapSize: this.capBytes,
      maxDbs: 8,
      keyEncoding: 'binary',
      encoding: 'binary',
    }) as RootDatabase;
    try {
      // Only our databases may be in the root.
      const names: string[] = [];
      for (const key of root.getKeys({ limit: 16 }) as Iterable<Buffer>) names.push(Buffer.from(key).toString('latin1').replace(/\0$/, ''));
      const foreign = names.filter((n) => !(DB_NAMES as readonly string[]).includes(n));
      if (foreign.length > 0) throw new UnusableEnvironmentError(`foreign environment (databases ${foreign.map((n) => JSON.stringify(n)).join(', ')})`);
      const fresh = names.length === 0;
      if (!fresh && !names.includes('meta')) throw new UnusableEnvironmentError('foreign environment (no format record)');
      const meta = root.openDB<unknown, string>({ name: 'meta', encoding: 'json' });
      const format = meta.get('format') as FormatRecord | undefined;
      if (format === undefined) {
        if (!fresh && [...root.getKeys({ limit: 16 })].length > 1) throw new UnusableEnvironmentError('foreign environment (no format record)');
        meta.putSync('format', { format: FORMAT_NAME, version: FORMAT_VERSION } satisfies FormatRecord);
      } else if (typeof format !== 'object' || format === null || format.format !== FORMAT_NAME) {
        throw new UnusableEnvironmentError(`foreign environment (format ${JSON.stringify(format)})`);
      } else if (format.version !== FORMAT_VERSION) {
        const age = typeof format.version === 'number' && format.version < FORMAT_VERSION ? ' (an older build)' : '';
        throw new UnusableEnvironmentError(`format version ${format.version}${age}, this build reads version ${FORMAT_VERSION}`);
      }
      const entries = root.openDB<Buffer, Buffer>({ name: 'entries', keyEncoding: 'binary', encoding: 'binary' });
      const age = root.openDB<Buffer, Buffer>({ name: 'age', keyEncoding: 'binary', encoding: 'binary' });
      const state = root.openDB<Buffer, string>({ name: 'state', encoding: 'binary' });
      // Touch each tree's root (a handful of pages, whatever the size): a broken one throws here.
      for (const db of [entries, age, state, meta]) {
        db.getStats();
        for (const _ of db.getKeys({ limit: 1 })) break;
      }
      return { root, meta, entries, age, state };
    } catch (err) {
      void root.close().catch(() => {});
      throw err;
    }
  }

  /** Renames `data.mdb` and `lock.mdb` with a timestamp suffix (keeping the {@link KEEP_ASIDE} newest such copies). */
  private moveAside(reason: string): void {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const moved: string[] = [];
    for (const name of ['data.mdb', 'lock.mdb']) {
      const from = join(this.dir, name);
      if (!existsSync(from)) continue;
      const to = join(this.dir, `${name}.corrupt-${stamp}-${process.pid}`);
      renameSync(from, to);
      moved.push(to);
    }
    this.movedAside.push(...moved);
    this.movedAsideCount++;
    this.lastMoveReason = reason;
    this.logger.warn({ dir: this.dir, reason, movedTo: moved }, 'plugin/persistence: unusable environment moved aside; starting with an empty one');
    // Bounded: only the newest copies stay.
    for (const name of ['data.mdb', 'lock.mdb']) {
      const old = readdirSync(this.dir)
        .filter((f) => f.startsWith(`${name}.corrupt-`))
        .sort()
        .reverse();
      for (const f of old.slice(KEEP_ASIDE)) {
        try {
          unlinkSync(join(this.dir, f));
        } catch {
          // another process removed it
        }
      }
    }
  }

  /** Runs `fn` holding `dir/repair.lock` (created exclusively; a stale one is taken over). */
  private withRepairLock(fn: () => void): void {
    const lock = join(this.dir, 'repair.lock');
    const deadline = Date.now() + 2 * STALE_REPAIR_LOCK_MS;
    let fd: number | undefined;
    while (fd === undefined) {
      try {
        fd = openSync(lock, 'wx');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        let age = 0;
        try {
          age = Date.now() - statSync(lock).mtimeMs;
        } catch {
          continue; // released meanwhile
        }
        if (age > STALE_REPAIR_LOCK_MS || Date.now() > deadline) {
          try {
            unlinkSync(lock);
          } catch {
            // taken over by another process
          }
          continue;
        }
        sleepSync(20);
      }
    }
    try {
      writeSync(fd, `${process.pid}\n`);
      fn();
    } finally {
      closeSync(fd);
      try {
        unlinkSync(lock);
      } catch {
        // already gone
      }
    }
  }

  /**
   * Bytes in use: the pages of every tree (our databases, the root, LMDB's
   * free list), and the file's high-water mark. O(1): LMDB keeps the counts.
   */
  usage(): { usedBytes: number; fileBytes: number; entries: number } {
    const env = this.current;
    if (env === null) return { usedBytes: 0, fileBytes: 0, entries: 0 };
    const st = env.root.getStats() as LmdbStats;
    const pages = (s: LmdbTreeStats): number => s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
    let used = pages(st.root) + pages(st.free) + 2;
    let entries = 0;
    for (const db of [env.meta, env.entries, env.age, env.state]) {
      const s = db.getStats() as LmdbTreeStats;
      used += pages(s);
      if (db === env.entries) entries = s.entryCount;
    }
    return { usedBytes: used * st.pageSize, fileBytes: (st.lastPageNumber + 1) * st.pageSize, entries };
  }

  /** Waits for pending commits and closes the environment. */
  async close(): Promise<void> {
    this.closed = true;
    const env = this.current;
    this.current = null;
    if (env === null) return;
    await env.root.committed;
    await env.root.close();
  }
}

interface LmdbTreeStats {
  readonly pageSize: number;
  readonly treeBranchPageCount: number;
  readonly treeLeafPageCount: number;
  readonly overflowPages: number;
  readonly entryCount: number;
}

interface LmdbStats extends LmdbTreeStats {
  readonly root: LmdbTreeStats;
  readonly free: LmdbTreeStats;
  readonly lastPageNumber: number;
}

function inode(file: string): number {
  try {
    return statSync(file).ino;
  } catch {
    return -1;
  }
}
