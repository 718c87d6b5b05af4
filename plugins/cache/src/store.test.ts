import { KEY_DO, KEY_EDNS, plainNameEnd } from '@heimdall/core/wire';
import { describe, expect, it } from 'vitest';
import { analyzeResponse, entrySize } from './entry.js';
import type { CacheStore } from './store.js';
import { aRecords, compressedResponse, decode, makeQuery, makeResponse, newStore, soa, ttlsOf } from './test-util.js';

const T0 = 1_700_000_000_000;
const limits = { minTtl: 0, maxTtl: 3600, minNegativeTtl: 0, maxNegativeTtl: 1800, servfailTtl: 5 };

function serveAt(store: CacheStore, key: string, request: Buffer, now: number, flags = 0): Buffer | null {
  const node = store.peek(key);
  if (node === undefined) return null;
  return store.serve(node, request, plainNameEnd(request, 12), flags, now);
}

describe('CacheStore: TTLs', () => {
  it('counts TTLs down and stops serving at expiry', () => {
    const store = newStore();
    const q = makeQuery('example.com');
    const r = makeResponse('example.com', { answers: aRecords('example.com', 300) });
    expect(store.insert('k', r, q, T0).entry?.ttl).toBe(300);
    expect(ttlsOf(serveAt(store, 'k', q, T0)!)).toEqual([300, 300]);
    expect(ttlsOf(serveAt(store, 'k', q, T0 + 100_500)!)).toEqual([200, 200]);
    expect(ttlsOf(serveAt(store, 'k', q, T0 + 299_999)!)).toEqual([1, 1]);
    expect(serveAt(store, 'k', q, T0 + 300_000)).toBeNull();
    expect(store.stats.hits).toBe(3);
  });

  it('never serves TTLs above the stored ones when the clock steps back', () => {
    const store = newStore();
    const q = makeQuery('example.com');
    store.insert('k', makeResponse('example.com', { answers: aRecords('example.com', 300) }), q, T0);
    expect(ttlsOf(serveAt(store, 'k', q, T0 - 60_000)!)).toEqual([300, 300]);
  });

  it('expires with the minimum answer TTL; every RRset counts down from its own TTL, capped at maxTtl', () => {
    const store = newStore();
    const q = makeQuery('example.com');
    const r = makeResponse('example.com', {
      answers: [...aRecords('example.com', 600, 1), ...aRecords('example.com', 120, 1)],
      authorities: [{ type: 'NS', name: 'example.com', ttl: 86400, data: 'ns.example.com' }],
    });
    const e = store.insert('k', r, q, T0).entry!;
    expect(e.ttl).toBe(120);
    // Before the fix every record was clamped to the entry's minimum: [100, 100, 100].
    expect(ttlsOf(serveAt(store, 'k', q, T0 + 20_000)!)).toEqual([580, 100, 3580]);
    expect(serveAt(store, 'k', q, T0 + 120_000)).toBeNull();
  });

  it('a CNAME chain keeps the CNAME TTL and the A TTL apart', () => {
    const store = newStore();
    const q = makeQuery('www.example.com');
    const r = makeResponse('www.example.com', {
      answers: [
        { type: 'CNAME', name: 'www.example.com', ttl: 3000, data: 'cdn.example.net' },
        { type: 'A', name: 'cdn.example.net', ttl: 60, data: '192.0.2.1' },
      ] as any,
    });
    expect(store.insert('k', r, q, T0).entry!.ttl).toBe(60);
    expect(ttlsOf(serveAt(store, 'k', q, T0 + 10_000)!)).toEqual([2990, 50]);
  });

  it('clamps to maxTtl and raises to minTtl', () => {
    const high = newStore({ maxTtl: 60 });
    const q = makeQuery('example.com');
    high.insert('k', makeResponse('example.com', { answers: aRecords('example.com', 86400) }), q, T0);
    expect(high.getRaw('k')!.ttl).toBe(60);
    expect(ttlsOf(serveAt(high, 'k', q, T0)!)).toEqual([60, 60]);

    const low = newStore({ minTtl: 30 });
    low.insert('k', makeResponse('example.com', { answers: aRecords('example.com', 2) }), q, T0);
    expect(low.getRaw('k')!.ttl).toBe(30);
    expect(ttlsOf(serveAt(low, 'k', q, T0 + 10_000)!)).toEqual([20, 20]);
  });

  it('does not cache TTL 0 answers (with minTtl 0)', () => {
    const store = newStore();
    const q = makeQuery('example.com');
    expect(store.insert('k', makeResponse('example.com', { answers: aRecords('example.com', 0) }), q, T0).reason).toBe('zero-ttl');
    expect(store.size).toBe(0);
  });

  it('treats TTLs with the top bit set as 0 (RFC 2181 §8)', () => {
    const q = makeQuery('example.com');
    const r = makeResponse('example.com', { answers: aRecords('example.com', 300, 1) });
    r.writeUInt32BE(0x80000010, r.length - 10);
    expect(analyzeResponse(r, q, T0, limits).reason).toBe('zero-ttl');
  });
});

describe('CacheStore: negative caching (RFC 2308)', () => {
  it('caches NXDOMAIN for min(SOA TTL, SOA MINIMUM)', () => {
    const store = newStore();
    const q = makeQuery('nope.example.com');
    const r = makeResponse('nope.example.com', { rcode: 3, authorities: [soa('example.com', 900, 300)] });
    const e = store.insert('k', r, q, T0).entry!;
    expect(e.kind).toBe('nxdomain');
    expect(e.ttl).toBe(300);
    expect(store.stats.nxdomainStored).toBe(1);
    const out = serveAt(store, 'k', q, T0 + 60_000)!;
    expect(decode(out).rcode).toBe('NXDOMAIN');
    expect(ttlsOf(out)).toEqual([240]);
    expect(store.stats.negativeHits).toBe(1);

    const r2 = makeResponse('nope.example.com', { rcode: 3, authorities: [soa('example.com', 60, 300)] });
    expect(store.insert('k2', r2, q, T0).entry!.ttl).toBe(60);
  });

  it('caches NODATA with an SOA and clamps to maxNegativeTtl', () => {
    const store = newStore({ maxNegativeTtl: 100 });
    const q = makeQuery('example.com', { type: 'AAAA' });
    const r = makeResponse('example.com', { type: 'AAAA', authorities: [soa('example.com', 3600, 3600)] });
    const e = store.insert('k', r, q, T0).entry!;
    expect(e.kind).toBe('nodata');
    expect(e.ttl).toBe(100);
    expect(store.stats.nodataStored).toBe(1);
  });

  it('does not cache NXDOMAIN or NODATA without an SOA', () => {
    const store = newStore();
    const q = makeQuery('nope.example.com');
    expect(store.insert('k', makeResponse('nope.example.com', { rcode: 3 }), q, T0).reason).toBe('no-soa');
    expect(store.insert('k', makeResponse('nope.example.com'), q, T0).reason).toBe('no-soa');
    expect(store.size).toBe(0);
  });

  it('caches SERVFAIL for servfailTtl, and not at all with 0', () => {
    const store = newStore({ servfailTtl: 5 });
    const q = makeQuery('broken.example');
    const e = store.insert('k', makeResponse('broken.example', { rcode: 2 }), q, T0).entry!;
    expect(e.kind).toBe('servfail');
    expect(serveAt(store, 'k', q, T0 + 4999)).not.toBeNull();
    expect(serveAt(store, 'k', q, T0 + 5000)).toBeNull();
    const none = newStore({ servfailTtl: 0 });
    expect(none.insert('k', makeResponse('broken.example', { rcode: 2 }), q, T0).reason).toBe('rcode');
  });
});

describe('CacheStore: never cached', () => {
  const q = makeQuery('example.com');
  const ok = { answers: aRecords('example.com', 300) };
  it.each([
    ['truncated', makeResponse('example.com', { ...ok, tc: true })],
    ['question-mismatch', makeResponse('example.com', { ...ok, qname: 'example.org' })],
    ['question-mismatch', makeResponse('example.com', { ...ok, type: 'AAAA' })],
    ['rcode', makeResponse('example.com', { rcode: 5 })],
    ['rcode', makeResponse('example.com', { rcode: 4 })],
    ['id-mismatch', makeResponse('example.com', { ...ok, id: 999 })],
    ['not-response', makeQuery('example.com')],
    ['malformed', makeResponse('example.com', ok).subarray(0, 40)],
    ['malformed', Buffer.alloc(5)],
  ])('%s', (reason, response) => {
    const store = newStore();
    expect(store.insert('k', response, q, T0).reason).toBe(reason);
    expect(store.size).toBe(0);
  });

  it('rejects an ECS answer with a non-zero scope, accepts scope 0', () => {
    const qe = makeQuery('example.com', { edns: true });
    const ecs = (scope: number) => [{ code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: scope, ip: '192.0.2.0' }];
    const scoped = makeResponse('example.com', { ...ok, edns: true, optOptions: ecs(24) });
    expect(analyzeResponse(scoped, qe, T0, limits).reason).toBe('ecs-scope');
    const global = makeResponse('example.com', { ...ok, edns: true, optOptions: ecs(0) });
    expect(analyzeResponse(global, qe, T0, limits).entry).toBeDefined();
  });

  it('rejects an extended rcode (BADVERS)', () => {
    const qe = makeQuery('example.com', { edns: true });
    const r = makeResponse('example.com', { ...ok, edns: true });
    const bad = Buffer.from(r);
    // OPT is last: name(1) type(2) class(2) ttl(4): ext-rcode is at the TTL's first byte.
    bad[r.length - 11 + 5] = 1;
    expect(analyzeResponse(bad, qe, T0, limits).reason).toBe('rcode');
  });

  it('drops trailing junk and never reads past the end', () => {
    const r = makeResponse('example.com', ok);
    const junk = Buffer.concat([r, Buffer.from([1, 2, 3])]);
    const e = analyzeResponse(junk, q, T0, limits).entry!;
    expect(e.wire.length).toBe(r.length);
    for (let cut = 12; cut < r.length; cut++) {
      expect(analyzeResponse(r.subarray(0, cut), q, T0, limits).entry).toBeUndefined();
    }
  });
});

describe('CacheStore: serving copies', () => {
  it('patches ID, restores letter case, sets RD from the query, clears AA', () => {
    const store = newStore();
    const stored = makeQuery('www.Example.COM', { id: 1 });
    const r = makeResponse('www.Example.COM', { id: 1, aa: true, answers: aRecords('www.Example.COM', 300) });
    store.insert('k', r, stored, T0);
    const client = makeQuery('WWW.eXaMpLe.com', { id: 0xbeef, rd: false });
    const out = serveAt(store, 'k', client, T0)!;
    const d = decode(out);
    expect(d.id).toBe(0xbeef);
    expect(d.questions![0].name).toBe('WWW.eXaMpLe.com');
    expect(d.answers![0].name).toBe('www.Example.COM'); // a literal name keeps the upstream's case
    expect(d.flag_rd).toBe(false);
    expect(d.flag_aa).toBe(false);
    expect(d.flag_qr).toBe(true);
    // The caller's bytes are untouched; the store keeps its question name in lowercase (the key's case).
    expect(decode(r).questions![0].name).toBe('www.Example.COM');
    expect(decode(store.getRaw('k')!.wire).questions![0].name).toBe('www.example.com');
  });

  it('serves a query without capitals the stored lowercase name without copying it (folded false)', () => {
    const store = newStore();
    store.insert('k', compressedResponse('ExAmple.Com', 7, 60), makeQuery('ExAmple.Com', { id: 7 }), T0);
    const q = makeQuery('example.com', { id: 8 });
    const d = decode(store.serve(store.peek('k')!, q, plainNameEnd(q, 12), 0, T0, false)!);
    expect(d.id).toBe(8);
    expect(d.questions![0].name).toBe('example.com');
    expect(d.answers![0].name).toBe('example.com'); // points at the question
    // A promoted entry (a tier's bytes as they were stored elsewhere) is lowercased as well.
    const other = newStore();
    const raw = store.getRaw('k')!;
    const upper = Buffer.from(raw.wire);
    upper.write('EXAMPLE', 13, 'latin1');
    other.setRaw('k', { ...raw, wire: upper }, T0);
    expect(decode(other.serve(other.peek('k')!, q, plainNameEnd(q, 12), 0, T0, false)!).questions![0].name).toBe('example.com');
  });

  it('restores the case in answer names that point at the question', () => {
    const store = newStore();
    store.insert('k', compressedResponse('example.com', 7, 60), makeQuery('example.com', { id: 7 }), T0);
    const d = decode(serveAt(store, 'k', makeQuery('ExAmple.Com', { id: 8 }), T0)!);
    expect(d.answers![0].name).toBe('ExAmple.Com');
    expect(d.answers![0].ttl).toBe(60);
  });

  it('clears AD unless the query set AD or DO', () => {
    const store = newStore();
    const q = makeQuery('example.com', { do: true });
    const r = makeResponse('example.com', { do: true, answers: aRecords('example.com', 300) });
    r[3] |= 0x20;
    store.insert('k', r, q, T0);
    expect(decode(serveAt(store, 'k', q, T0, KEY_DO | KEY_EDNS)!).flag_ad).toBe(true);
    expect(decode(serveAt(store, 'k', makeQuery('example.com', { edns: true }), T0, KEY_EDNS)!).flag_ad).toBe(false);
    expect(decode(serveAt(store, 'k', makeQuery('example.com', { edns: true, ad: true }), T0, KEY_EDNS)!).flag_ad).toBe(true);
  });

  it('strips COOKIE and PADDING from the stored OPT, keeps other options', () => {
    const q = makeQuery('example.com', { edns: true });
    const r = makeResponse('example.com', {
      edns: true,
      answers: aRecords('example.com', 300),
      optOptions: [
        { code: 10, data: Buffer.alloc(24, 7) },
        { code: 15, data: Buffer.from([0, 3]) },
        { code: 12, data: Buffer.alloc(30) },
      ],
    });
    const store = newStore();
    const e = store.insert('k', r, q, T0).entry!;
    expect(e.wire.length).toBe(r.length - 28 - 34);
    const out = serveAt(store, 'k', q, T0 + 1000, KEY_EDNS)!;
    const opt = decode(out).additionals!.find((a: any) => a.type === 'OPT') as any;
    expect(opt.options.map((o: any) => o.code)).toEqual([15]);
    expect(ttlsOf(out)).toEqual([299, 299]);
  });
});

describe('CacheStore: bounds and eviction', () => {
  const q = (i: number) => makeQuery(`n${i}.example`);
  const r = (i: number) => makeResponse(`n${i}.example`, { answers: aRecords(`n${i}.example`, 300) });

  for (const policy of ['sieve', 'lru', 's3fifo'] as const) {
    it(`${policy}: never exceeds maxEntries`, () => {
      const store = newStore({ maxEntries: 10, policy });
      for (let i = 0; i < 100; i++) {
        store.insert(`k${i}`, r(i), q(i), T0);
        if (i % 3 === 0) serveAt(store, 'k0', q(0), T0);
        expect(store.size).toBeLessThanOrEqual(10);
      }
      expect(store.size).toBe(10);
      expect(store.stats.evictions).toBe(90);
      if (policy !== 's3fifo') expect(store.getRaw('k0')).toBeDefined(); // the hot key survives
    });

    it(`${policy}: never exceeds maxBytes`, () => {
      const store = newStore({ maxBytes: 4096, policy });
      for (let i = 0; i < 100; i++) {
        store.insert(`k${i}`, r(i), q(i), T0);
        expect(store.bytes).toBeLessThanOrEqual(4096);
      }
      expect(store.size).toBeGreaterThan(3);
      let sum = 0;
      for (const [k, e] of store.entries()) sum += entrySize(k, e);
      expect(sum).toBe(store.bytes);
    });
  }

  it('refuses an entry larger than maxBytes', () => {
    const store = newStore({ maxBytes: 1024 });
    const big = makeResponse('big.example', {
      type: 'TXT',
      answers: [
        { type: 'TXT', name: 'big.example', ttl: 60, data: 'x'.repeat(250).repeat(1) },
        { type: 'TXT', name: 'big.example', ttl: 60, data: ['y'.repeat(250), 'z'.repeat(250), 'w'.repeat(250)] },
      ] as any,
    });
    expect(store.insert('k', big, makeQuery('big.example', { type: 'TXT' }), T0).reason).toBe('not-stored');
    expect(store.size).toBe(0);
  });

  it('replacing a key keeps one node and fixes the byte count', () => {
    const store = newStore();
    store.insert('k', r(1), q(1), T0);
    const before = store.bytes;
    store.insert('k', r(1), q(1), T0 + 1000);
    expect(store.size).toBe(1);
    expect(store.bytes).toBe(before);
  });
});

describe('CacheStore: expiry', () => {
  it('sweeps expired entries incrementally, keeping the stale window', () => {
    const store = newStore({ sweepBatch: 3 });
    for (let i = 0; i < 10; i++) {
      const name = `n${i}.example`;
      store.insert(`k${i}`, makeResponse(name, { answers: aRecords(name, i < 5 ? 10 : 1000) }), makeQuery(name), T0);
    }
    let removed = 0;
    for (let i = 0; i < 5; i++) removed += store.sweep(T0 + 20_000);
    expect(removed).toBe(5);
    expect(store.size).toBe(5);
    expect(store.stats.expiredEvictions).toBe(5);

    const stale = newStore({ serveStale: { maxStaleAge: 60_000 } });
    stale.insert('k', makeResponse('a.example', { answers: aRecords('a.example', 10) }), makeQuery('a.example'), T0);
    expect(stale.sweep(T0 + 30_000)).toBe(0);
    expect(stale.sweep(T0 + 70_000)).toBe(1);
  });

  it('get() returns fresh entries only, getRaw() any', () => {
    const store = newStore({ serveStale: true });
    store.insert('k', makeResponse('a.example', { answers: aRecords('a.example', 10) }), makeQuery('a.example'), T0);
    expect(store.get('k', T0 + 1000)).toBeDefined();
    expect(store.get('k', T0 + 10_000)).toBeUndefined();
    expect(store.getRaw('k')).toBeDefined();
  });

  it('setRaw round-trips entries into another store (snapshot/restore)', () => {
    const a = newStore();
    for (let i = 0; i < 5; i++) {
      const name = `n${i}.example`;
      a.insert(`k${i}`, makeResponse(name, { answers: aRecords(name, 100) }), makeQuery(name), T0);
    }
    const b = newStore();
    for (const [k, e] of a.entries()) expect(b.setRaw(k, e, T0 + 1000)).toBe(true);
    expect(b.size).toBe(5);
    expect(b.bytes).toBe(a.bytes);
    expect(b.setRaw('old', a.getRaw('k0')!, T0 + 200_000)).toBe(false);
  });
});

describe('CacheStore: flush', () => {
  function filled(): CacheStore {
    const store = newStore();
    const names = ['example.com', 'www.example.com', 'a.b.Example.com', 'badexample.com', 'example.org', 'com'];
    for (const name of names) {
      for (const type of ['A', 'AAAA'] as const) {
        store.insert(
          `${name}/${type}`,
          makeResponse(name, { type, answers: type === 'A' ? aRecords(name, 60) : [{ type: 'AAAA', name, ttl: 60, data: '2001:db8::1' }] }),
          makeQuery(name, { type }),
          T0,
        );
      }
    }
    return store;
  }

  it('by name: all types, case-insensitive, nothing else', () => {
    const s = filled();
    expect(s.flushName('EXAMPLE.com.')).toBe(2);
    expect(s.size).toBe(10);
    expect(s.getRaw('www.example.com/A')).toBeDefined();
  });

  it('by suffix: the name and everything below, label-aligned', () => {
    const s = filled();
    expect(s.flushSuffix('*.example.com')).toBe(6);
    expect([...s.entries()].map(([k]) => k).sort()).toEqual(
      ['badexample.com/A', 'badexample.com/AAAA', 'com/A', 'com/AAAA', 'example.org/A', 'example.org/AAAA'].sort(),
    );
    expect(s.flushPattern('*')).toBe(6);
  });

  it('everything', () => {
    const s = filled();
    expect(s.flushPattern()).toBe(12);
    expect(s.size).toBe(0);
    expect(s.bytes).toBe(0);
  });

  it('rejects bad names with a typed error', () => {
    const s = filled();
    expect(() => s.flushName('a..b')).toThrow(/empty label/);
    expect(() => s.flushName(`${'x'.repeat(64)}.com`)).toThrow(/63/);
  });

  it('handles 100k entries quickly', () => {
    const store = newStore({ maxEntries: 200_000, maxBytes: 1 << 30 });
    const base = makeResponse('host00000.zone0.example', { answers: aRecords('host00000.zone0.example', 300) });
    const q0 = makeQuery('host00000.zone0.example');
    for (let i = 0; i < 100_000; i++) {
      const name = `host${String(i).padStart(5, '0')}.zone${i % 10}.example`;
      const r = Buffer.from(base);
      const qq = Buffer.from(q0);
      r.write(name.slice(0, 9), 13, 'latin1');
      qq.write(name.slice(0, 9), 13, 'latin1');
      r[27] = qq[27] = 0x30 + (i % 10);
      store.insert(name, r, qq, T0);
    }
    expect(store.size).toBe(100_000);
    const t = performance.now();
    expect(store.flushSuffix('zone3.example')).toBe(10_000);
    expect(store.flushName('host00004.zone4.example')).toBe(1);
    expect(performance.now() - t).toBeLessThan(1000);
  });
});

describe('CacheStore: wire arena', () => {
  const name = (i: number) => `host${String(i).padStart(5, '0')}.arena.example`;
  function fill(store: CacheStore, n: number): void {
    for (let i = 0; i < n; i++) store.insert(`k${i}`, makeResponse(name(i), { answers: aRecords(name(i), 300) }), makeQuery(name(i)), T0);
  }

  it('keeps entries in shared slabs and frees a slab once its entries are gone', () => {
    const store = newStore({ maxEntries: 10_000 });
    fill(store, 3000); // ~100 bytes each: several 64 KiB slabs
    const full = store.slabs;
    expect(full).toBeGreaterThan(2);
    expect(full).toBeLessThan(10);
    for (let i = 0; i < 3000; i++) store.delete(`k${i}`);
    expect(store.slabs).toBeLessThanOrEqual(1); // only the current slab is kept
  });

  it('the sweep moves survivors out of mostly-dead slabs; answers stay intact', () => {
    const store = newStore({ maxEntries: 10_000, sweepBatch: 100_000 });
    fill(store, 3000);
    const before = store.slabs;
    for (let i = 0; i < 3000; i++) if (i % 10 !== 0) store.delete(`k${i}`);
    expect(store.slabs).toBe(before); // 10 % survivors pin every slab…
    store.sweep(T0 + 1000);
    expect(store.slabs).toBeLessThanOrEqual(2); // …until the sweep compacts them
    for (let i = 0; i < 3000; i += 10) {
      const q = makeQuery(name(i), { id: i });
      const out = decode(serveAt(store, `k${i}`, q, T0 + 2000)!);
      expect(out.id).toBe(i);
      expect(out.questions[0].name).toBe(name(i));
      expect(out.answers.map((a: any) => a.ttl)).toEqual([298, 298]);
    }
  });

  it('setRaw copies a foreign wire into the arena', () => {
    const a = newStore();
    const e = a.insert('k', makeResponse('a.example', { answers: aRecords('a.example', 60) }), makeQuery('a.example'), T0).entry!;
    const foreign = { ...e, wire: Buffer.from(e.wire) };
    const b = newStore();
    expect(b.setRaw('k', foreign, T0)).toBe(true);
    expect(b.getRaw('k')!.wire).not.toBe(foreign.wire);
    expect(b.getRaw('k')!.wire.equals(foreign.wire)).toBe(true);
    foreign.wire.fill(0); // the caller's buffer is not used
    expect(decode(b.getRaw('k')!.wire).questions[0].name).toBe('a.example');
  });
});

describe('CacheStore: slots', () => {
  const name = (i: number) => `s${i}.slots.example`;
  const put = (store: CacheStore, i: number, ttl = 300) =>
    store.insert(`k${i}`, makeResponse(name(i), { answers: aRecords(name(i), ttl) }), makeQuery(name(i)), T0);

  it('grows the per-slot arrays by doubling up to maxEntries + 1, recycles freed slots, shrinks on flush', () => {
    const store = newStore({ maxEntries: 3000 });
    expect(store.slotCapacity).toBe(1024);
    for (let i = 0; i < 2500; i++) put(store, i);
    expect(store.slotCapacity).toBe(3001);
    for (let i = 0; i < 1000; i++) store.delete(`k${i}`);
    for (let i = 2500; i < 3500; i++) put(store, i);
    expect(store.size).toBe(2500);
    expect(store.slotCapacity).toBe(3001); // freed slots were reused
    for (let i = 1000; i < 3500; i++) {
      const q = makeQuery(name(i), { id: i & 0xffff });
      const out = decode(serveAt(store, `k${i}`, q, T0 + 1000)!);
      expect(out.id).toBe(i & 0xffff);
      expect(out.questions[0].name).toBe(name(i));
    }
    store.flush();
    expect(store.slotCapacity).toBe(1024);
    put(store, 1);
    expect(serveAt(store, 'k1', makeQuery(name(1)), T0 + 1000)).not.toBeNull();
  });

  it('a reused slot never answers with the bytes of its previous entry (the per-slot view is dropped)', () => {
    const store = newStore();
    put(store, 1);
    const q1 = makeQuery(name(1));
    expect(decode(serveAt(store, 'k1', q1, T0)!).questions[0].name).toBe(name(1)); // makes k1's view
    const slot = store.peek('k1')!;
    store.delete('k1');
    put(store, 2, 60);
    expect(store.peek('k2')).toBe(slot); // same slot, new entry
    expect(store.peek('k1')).toBeUndefined();
    const out = decode(serveAt(store, 'k2', makeQuery(name(2)), T0 + 10_000)!);
    expect(out.questions[0].name).toBe(name(2));
    expect(out.answers.map((a: any) => a.ttl)).toEqual([50, 50]);
    // Replacing the entry under the same key drops the view too.
    put(store, 2, 120);
    expect(decode(serveAt(store, 'k2', makeQuery(name(2)), T0)!).answers.map((a: any) => a.ttl)).toEqual([120, 120]);
  });

  it('an entry taken with entryAt/getRaw outlives its slot', () => {
    const store = newStore();
    put(store, 1);
    const kept = store.getRaw('k1')!;
    const copy = Buffer.from(kept.wire);
    store.delete('k1');
    for (let i = 2; i < 2000; i++) put(store, i); // reuses the slot and fills new slabs
    expect(kept.wire.equals(copy)).toBe(true);
    expect(kept.ttlOffsets).toHaveLength(2);
  });

  it('refuses a wire longer than 65535 bytes (u16 TTL offsets), stores nothing', () => {
    const store = newStore({ maxBytes: 1 << 20 });
    put(store, 1);
    const e = store.getRaw('k1')!;
    const huge = Buffer.alloc(70_000);
    e.wire.copy(huge);
    expect(store.setRaw('big', { ...e, wire: huge }, T0)).toBe(false);
    expect(store.size).toBe(1);
  });
});
