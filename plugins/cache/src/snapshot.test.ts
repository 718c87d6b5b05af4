import { plainNameEnd, QuestionKeyInfo, questionKey } from '@heimdall/core/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CacheSnapshotError, createSnapshot, readEntry, restoreSnapshot, serializeEntry } from './snapshot.js';
import type { CacheStore } from './store.js';
import { aRecords, decode, makeQuery, makeResponse, newStore, soa, ttlsOf } from './test-util.js';

const T0 = 1_700_000_000_000;

function filled(): CacheStore {
  const store = newStore({ serveStale: { maxStaleAge: 60_000 } });
  for (let i = 0; i < 20; i++) {
    const name = `Host${i}.Example.com`;
    const q = makeQuery(name, { edns: i % 2 === 0, do: i % 4 === 0 });
    const r =
      i % 5 === 0
        ? makeResponse(name, { edns: i % 2 === 0, do: i % 4 === 0, rcode: 3, authorities: [soa('example.com', 600, 120)] })
        : makeResponse(name, { edns: i % 2 === 0, do: i % 4 === 0, answers: aRecords(name, 100 + i) });
    store.insert(questionKey(q, new QuestionKeyInfo())!, r, q, T0);
  }
  return store;
}

describe('cache snapshots', () => {
  it('round-trips a store: same keys, same answers, TTLs keep counting from the original store time', () => {
    const a = filled();
    const snap = createSnapshot(a);
    const b = newStore({ serveStale: { maxStaleAge: 60_000 } });
    expect(restoreSnapshot(b, snap, T0 + 50_000)).toEqual({ restored: 20, skipped: 0 });
    expect(b.size).toBe(20);
    for (const [key, e] of a.entries()) {
      const r = b.getRaw(key)!;
      expect(r.kind).toBe(e.kind);
      expect(r.storedAt).toBe(e.storedAt);
      expect(r.wire.equals(e.wire)).toBe(true);
      const q = Buffer.from(e.wire.subarray(0, e.nameEnd + 4));
      q[2] = 0x01;
      q[3] = 0;
      q.writeUInt16BE(0, 6);
      q.writeUInt32BE(0, 8);
      const out = b.serve(b.peek(key)!, q, plainNameEnd(q, 12), 0, T0 + 50_000)!;
      if (e.kind === 'positive') expect(ttlsOf(out).every((t) => t === e.ttl - 50)).toBe(true);
      else expect(decode(out).rcode).toBe('NXDOMAIN');
    }
  });

  it('skips entries too old to keep', () => {
    const snap = createSnapshot(filled());
    const b = newStore({ serveStale: { maxStaleAge: 60_000 } });
    const r = restoreSnapshot(b, snap, T0 + 170_000); // TTLs 100..120 s + 60 s stale window
    expect(r.restored + r.skipped).toBe(20);
    expect(r.skipped).toBeGreaterThan(0);
  });

  it('rejects a foreign or truncated snapshot without touching the store', () => {
    const snap = createSnapshot(filled());
    const b = newStore();
    expect(() => restoreSnapshot(b, Buffer.from('nope nope'))).toThrow(CacheSnapshotError);
    expect(() => restoreSnapshot(b, snap.subarray(0, snap.length - 3), T0)).toThrow(/truncated/);
    expect(() => restoreSnapshot(b, Buffer.concat([snap, Buffer.from([0])]), T0)).toThrow(/trailing/);
    expect(b.size).toBe(0);
  });

  it('rejects an entry whose key does not match its question', () => {
    const a = filled();
    const [key, entry] = [...a.entries()][3];
    const bad = serializeEntry(`x${key.slice(1)}`, entry);
    expect(() => readEntry(bad)).toThrow(/key does not match/);
    expect(readEntry(serializeEntry(key, entry)).key).toBe(key);
  });

  it('never throws anything but CacheSnapshotError on corrupted bytes', () => {
    const snap = createSnapshot(filled());
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (edits) => {
        const s = Buffer.from(snap);
        for (const [pos, val] of edits) s[pos % s.length] = val;
        const b = newStore({ serveStale: true });
        try {
          restoreSnapshot(b, s, T0);
        } catch (e) {
          expect(e).toBeInstanceOf(CacheSnapshotError);
          expect(b.size).toBe(0);
        }
      }),
      { numRuns: 500 },
    );
  });
});
