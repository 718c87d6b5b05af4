/**
 * Values whose bytes changed on disk (bit rot, a bad disk, a tool writing
 * into data.mdb) or that sit under another key: never served, removed,
 * counted in `corrupt_total{db}`, logged at most once per interval. Each
 * test changes the file behind LMDB's back (environment closed), by one bit
 * found through a marker written in the value.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { type Logger, METRICS } from '@heimdall/core';
import { FakeClock } from '@heimdall/testing';
import { type Database, open } from 'lmdb';
import type { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { CORRUPT_LOG_INTERVAL_MS } from './corrupt.js';
import { LEASE_KEY, type LeaseRecord } from './maintenance.js';
import { FORMAT_VERSION } from './env.js';
import { ageKey, checksumOf, crc32, EXPIRES_AT, HEADER, writeF64 } from './layout.js';
import { capturedLogger, cleanupDirs, entryOf, flipOnDisk, type Instance, keyOf, type LogLine, startInstance, tempDir } from './test-util.js';

const HOUR = 3_600_000;
const running: Instance[] = [];
async function start(dir: string, clock: FakeClock, logger?: Logger): Promise<Instance> {
  // An hour between ticks: every maintenance tick is the test's own.
  const i = await startInstance({ dir, sweepIntervalMs: HOUR }, clock, logger);
  running.push(i);
  return i;
}
async function stop(i: Instance): Promise<void> {
  running.splice(running.indexOf(i), 1);
  await i.stop();
}
afterEach(async () => {
  for (const i of running.splice(0)) await i.stop();
  cleanupDirs();
});

/** An entry whose bytes start with `marker` (unique in the file), the rest as entryOf. */
function markedEntry(key: Buffer, marker: string): Buffer {
  const e = entryOf(key, 120);
  e.write(marker, 0, 'latin1');
  return e;
}

async function metric(i: Instance, db: string): Promise<number | undefined> {
  const text = await i.resolver.container.get<Registry>(METRICS).metrics();
  const m = new RegExp(`^heimdall_persistence_corrupt_total\\{db="${db}"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

const corruptWarnings = (lines: LogLine[]): LogLine[] => lines.filter((l) => /corrupt value in the/.test(l.msg));

/** Raw handles on our databases (no checksums, no encodings): what another tool could write. */
function raw(i: Instance): { entries: Database<Buffer, Buffer>; state: Database<Buffer, string> } {
  const root = i.env.env!.root;
  return {
    entries: root.openDB<Buffer, Buffer>({ name: 'entries', keyEncoding: 'binary', encoding: 'binary' }),
    state: root.openDB<Buffer, string>({ name: 'state', encoding: 'binary' }),
  };
}

describe('checksums', () => {
  it('crc32 (JS below 256 bytes, zlib above) is zlib.crc32, for any length and offset', () => {
    for (let n = 0; n < 700; n += n < 40 ? 1 : 37) {
      const b = randomBytes(n + 10);
      const init = n % 3 === 0 ? 0 : zlibCrc32(randomBytes(5));
      expect(crc32(b, 3, 3 + n, init)).toBe(zlibCrc32(b.subarray(3, 3 + n), init));
    }
  });

  it('a value checksum covers the key: the same bytes under another key do not check', () => {
    const value = Buffer.from('0000the value', 'latin1');
    expect(checksumOf(keyOf('a.test'), value)).not.toBe(checksumOf(keyOf('b.test'), value));
  });
});

describe('a corrupt value on disk', () => {
  it('entries: a flipped bit in the answer is a miss, counted, logged, removed; a fresh write of the key works', async () => {
    const dir = tempDir();
    const clock = new FakeClock();
    const key = keyOf('www.example.com');
    const marker = 'HEIMDALL-ENTRY-MARKER-1';
    const a = await start(dir, clock);
    a.tier.set(key, markedEntry(key, marker), clock.now() + HOUR);
    await a.tier.drain();
    expect(a.tier.get(key)).toBeDefined();
    await stop(a);

    expect(flipOnDisk(dir, Buffer.from(marker, 'latin1'), 10)).toBeGreaterThan(0);

    const { logger, lines } = capturedLogger();
    const b = await start(dir, clock, logger);
    expect(b.tier.get(key)).toBeUndefined();
    expect(b.tier.get(key)).toBeUndefined(); // found again before its removal committed: counted once
    expect(b.stats.corruptEntries).toBe(1);
    expect(b.stats.hits).toBe(0);
    expect(await metric(b, 'entries')).toBe(1);
    expect(await metric(b, 'state')).toBe(0);
    const warned = corruptWarnings(lines);
    expect(warned).toHaveLength(1);
    expect(warned[0]!.msg).toMatch(/corrupt value in the entries database \(checksum mismatch/);
    expect(warned[0]!.fields).toMatchObject({ db: 'entries', key: key.toString('hex') });
    await b.tier.drain();
    expect(b.env.env!.entries.getBinary(key)).toBeUndefined();
    expect(b.env.env!.age.getCount()).toBe(0);
    expect(b.tier.get(key)).toBeUndefined();
    expect(b.stats.corruptEntries).toBe(1);

    const fresh = entryOf(key, 90);
    b.tier.set(key, fresh, clock.now() + HOUR);
    await b.tier.drain();
    expect(Buffer.from(b.tier.get(key)!).equals(fresh)).toBe(true);
    expect(b.env.env!.age.getCount()).toBe(1);
  });

  it('entries: a flipped bit in the header (writtenAt) does not keep a fresh write out, nor the sweep from removing it', async () => {
    const dir = tempDir();
    const clock = new FakeClock();
    const [k1, k2] = [keyOf('rewritten.example.com'), keyOf('expiring.example.com')];
    const [m1, m2] = ['HEIMDALL-HEADER-MARKER-1', 'HEIMDALL-HEADER-MARKER-2'];
    const a = await start(dir, clock);
    a.tier.set(k1, markedEntry(k1, m1), clock.now() + HOUR);
    a.tier.set(k2, markedEntry(k2, m2), clock.now() + 1000);
    await a.tier.drain();
    await stop(a);
    // writtenAt is the f64 right before the entry: its top byte, one exponent bit (the time becomes enormous).
    expect(flipOnDisk(dir, Buffer.from(m1, 'latin1'), -1)).toBeGreaterThan(0);
    expect(flipOnDisk(dir, Buffer.from(m2, 'latin1'), -1)).toBeGreaterThan(0);

    const b = await start(dir, clock);
    clock.advance(1000);
    const fresh = entryOf(k1, 60);
    b.tier.set(k1, fresh, clock.now() + HOUR); // not read first: the batch meets the corrupt value
    await b.tier.drain();
    expect(Buffer.from(b.tier.get(k1)!).equals(fresh)).toBe(true);
    expect(b.stats.corruptEntries).toBe(1);

    await b.maintenance.tick(); // k2 expired: its age record leads the sweep to a corrupt entry
    expect(b.env.env!.entries.getBinary(k2)).toBeUndefined();
    expect(b.stats.corruptEntries).toBe(2);
    expect(b.env.env!.entries.getCount()).toBe(1);
    // k1's first age record could not be found through its corrupt header: an orphan until it expires.
    expect(b.env.env!.age.getCount()).toBe(2);
    clock.advance(HOUR - 1000);
    await b.maintenance.tick();
    expect(b.env.env!.age.getCount()).toBe(1);
    expect(Buffer.from(b.tier.get(k1)!).equals(fresh)).toBe(true);
  });

  it('age: a flipped bit in an index value (its expiry) is counted, and the sweep removes the record and its entry', async () => {
    const dir = tempDir();
    const clock = new FakeClock();
    const key = keyOf('age-marker.example.com');
    const a = await start(dir, clock);
    const writtenAt = clock.now();
    a.tier.set(key, entryOf(key), clock.now() + 1000);
    await a.tier.drain();
    await stop(a);
    // The age record's key, then its value (checksum, expiresAt): the top byte of expiresAt.
    const ak = ageKey(writtenAt, key);
    expect(flipOnDisk(dir, ak, ak.length + 4 + 7, 0x01)).toBeGreaterThan(0);

    const b = await start(dir, clock);
    clock.advance(1000);
    await b.maintenance.tick();
    expect(b.stats.corruptAge).toBe(1);
    expect(await metric(b, 'age')).toBe(1);
    expect(b.env.env!.age.getCount()).toBe(0);
    expect(b.env.env!.entries.getCount()).toBe(0);
  });

  it('state: a flipped bit in a value reads as absent, counted, logged, removed; a fresh write of the key works', async () => {
    const dir = tempDir();
    const clock = new FakeClock();
    const marker = 'HEIMDALL-STATE-MARKER-1';
    const a = await start(dir, clock);
    a.state.set('corrupt.me', { note: marker, n: 1 });
    a.state.set('kept', 42);
    await stop(a);
    // A letter of the marker: still valid JSON, a different value.
    expect(flipOnDisk(dir, Buffer.from(marker, 'latin1'), 3)).toBeGreaterThan(0);

    const { logger, lines } = capturedLogger();
    const b = await start(dir, clock, logger);
    expect(b.state.get('corrupt.me')).toBeUndefined();
    expect(b.state.get('kept')).toBe(42);
    expect(b.stats.corruptState).toBe(1);
    expect(await metric(b, 'state')).toBe(1);
    expect(corruptWarnings(lines).map((l) => l.fields)).toMatchObject([{ db: 'state', key: 'corrupt.me' }]);
    await b.corrupt.settled();
    expect(b.env.env!.state.get('corrupt.me')).toBeUndefined();

    b.state.set('corrupt.me', { note: 'fresh' });
    await stop(b);
    const c = await start(dir, clock);
    expect(c.state.get('corrupt.me')).toEqual({ note: 'fresh' });
    expect(c.stats.corruptState).toBe(0);
  });

  it('state: the sweep removes a corrupt record (and counts it) instead of tripping over it', async () => {
    const dir = tempDir();
    const clock = new FakeClock();
    const marker = 'HEIMDALL-STATE-MARKER-2';
    const a = await start(dir, clock);
    a.state.set('swept', { note: marker });
    await stop(a);
    expect(flipOnDisk(dir, Buffer.from(marker, 'latin1'), 0, 0x80)).toBeGreaterThan(0); // not even UTF-8 any more

    const b = await start(dir, clock);
    await b.maintenance.tick();
    expect(b.stats.corruptState).toBe(1);
    expect([...(b.env.env!.state.getKeys({}) as Iterable<string>)]).toEqual([]);
  });
});

describe('a value under another key', () => {
  it('entries: the bytes of key A copied under key B are rejected at B (counted, removed); A still reads', async () => {
    const clock = new FakeClock();
    const i = await start(tempDir(), clock);
    const [ka, kb] = [keyOf('a.example.com'), keyOf('b.example.com')];
    i.tier.set(ka, entryOf(ka), clock.now() + HOUR);
    await i.tier.drain();
    const r = raw(i);
    r.entries.putSync(kb, Buffer.from(r.entries.getBinary(ka)!));
    expect(i.tier.get(kb)).toBeUndefined();
    expect(i.stats.corruptEntries).toBe(1);
    await i.tier.drain();
    expect(r.entries.getBinary(kb)).toBeUndefined();
    expect(Buffer.from(i.tier.get(ka)!).equals(entryOf(ka))).toBe(true);
  });

  it('state: the bytes of key a copied under key b are rejected at b; a still reads', async () => {
    const clock = new FakeClock();
    const i = await start(tempDir(), clock);
    i.state.set('a', { admin: false });
    await i.env.env!.state.committed;
    const r = raw(i);
    r.state.putSync('b', Buffer.from(r.state.getBinary('a')!));
    expect(i.state.get('b')).toBeUndefined();
    expect(i.stats.corruptState).toBe(1);
    expect(i.state.get('a')).toEqual({ admin: false });
  });
});

describe('meta values (no checksum: validated by shape)', () => {
  it('an unreadable maintenance lease is taken over, not a failure at every tick', async () => {
    const clock = new FakeClock();
    const i = await start(tempDir(), clock);
    i.env.env!.root.openDB<Buffer, string>({ name: 'meta', encoding: 'binary' }).putSync(LEASE_KEY, Buffer.from('{"pid":1,"tok\u00ff', 'latin1'));
    await i.maintenance.tick();
    expect(i.stats.maintenanceOwner).toBe(true);
    expect((i.env.env!.meta.get(LEASE_KEY) as LeaseRecord).token).toBe(i.maintenance.token);
  });

  it('a lease longer than any lease can be (a changed until) does not keep a dead owner in place', async () => {
    const clock = new FakeClock();
    const i = await start(tempDir(), clock);
    const at = clock.now();
    i.env.env!.meta.putSync(LEASE_KEY, { pid: 999_999, token: 'gone', at, until: at * 2 } satisfies LeaseRecord);
    await i.maintenance.tick();
    expect(i.stats.maintenanceOwner).toBe(true);
  });
});

describe('the corruption warning', () => {
  it('is logged at most once per interval, saying how many were not logged since', async () => {
    const clock = new FakeClock();
    const { logger, lines } = capturedLogger();
    const i = await start(tempDir(), clock, logger);
    const r = raw(i);
    const bad = (n: number): Buffer => {
      const k = keyOf(`bad${n}.example.com`);
      const v = Buffer.alloc(HEADER + 10);
      writeF64(v, EXPIRES_AT, clock.now() + HOUR);
      r.entries.putSync(k, v); // checksum 0: wrong
      return k;
    };
    for (let n = 0; n < 3; n++) expect(i.tier.get(bad(n))).toBeUndefined();
    expect(i.stats.corruptEntries).toBe(3);
    expect(corruptWarnings(lines)).toHaveLength(1);
    clock.advance(CORRUPT_LOG_INTERVAL_MS);
    expect(i.tier.get(bad(3))).toBeUndefined();
    const warned = corruptWarnings(lines);
    expect(warned).toHaveLength(2);
    expect(warned[1]!.fields).toMatchObject({ moreSinceLastWarning: 2, corrupt: { entries: 4, age: 0, state: 0 } });
  });
});

describe('format version 2', () => {
  it('a version 1 environment (unchecked values) is moved aside at start, naming both versions and where it went', async () => {
    const dir = tempDir();
    const clock = new FakeClock();
    // Version 1's layout, written as version 1 did: entries with a 16-byte header, age values of 8 bytes, JSON state.
    const root = open({ path: dir, noSubdir: false, maxDbs: 8, keyEncoding: 'binary', encoding: 'binary' });
    root.openDB<unknown, string>({ name: 'meta', encoding: 'json' }).putSync('format', { format: 'heimdall-persistence', version: 1 });
    const key = keyOf('www.example.com');
    const v1 = Buffer.alloc(16 + 120);
    writeF64(v1, 0, clock.now() + HOUR);
    writeF64(v1, 8, clock.now());
    entryOf(key).copy(v1, 16);
    root.openDB<Buffer, Buffer>({ name: 'entries', keyEncoding: 'binary', encoding: 'binary' }).putSync(key, v1);
    const age = Buffer.alloc(8);
    writeF64(age, 0, clock.now() + HOUR);
    root.openDB<Buffer, Buffer>({ name: 'age', keyEncoding: 'binary', encoding: 'binary' }).putSync(ageKey(clock.now(), key), age);
    root.openDB<unknown, string>({ name: 'state', encoding: 'json' }).putSync('k', { v: 1, w: 'old', s: 1 });
    await root.close();

    const { logger, lines } = capturedLogger();
    const i = await start(dir, clock, logger);
    expect(FORMAT_VERSION).toBe(2);
    expect(i.env.movedAsideCount).toBe(1);
    expect(i.stats.movedAside).toBe(1);
    const warning = lines.find((l) => /unusable environment moved aside/.test(l.msg));
    expect(warning).toBeDefined();
    expect(warning!.fields.reason).toBe('format version 1 (an older build), this build reads version 2');
    const movedTo = warning!.fields.movedTo as string[];
    expect(movedTo.some((p) => p.startsWith(`${dir}/data.mdb.corrupt-`))).toBe(true);
    for (const p of movedTo) expect(existsSync(p)).toBe(true);
    // Empty, and working.
    expect(i.tier.get(key)).toBeUndefined();
    expect(i.state.get('k')).toBeUndefined();
    expect(i.stats.corruptEntries).toBe(0);
    i.tier.set(key, entryOf(key), clock.now() + HOUR);
    await i.tier.drain();
    expect(Buffer.from(i.tier.get(key)!).equals(entryOf(key))).toBe(true);
  });
});
