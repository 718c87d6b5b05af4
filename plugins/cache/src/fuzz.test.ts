import { plainNameEnd } from '@heimdall/core/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { analyzeResponse, entrySize } from './entry.js';
import { aRecords, makeQuery, makeResponse, newStore, soa } from './test-util.js';

const T0 = 1_700_000_000_000;
const limits = { minTtl: 0, maxTtl: 3600, minNegativeTtl: 0, maxNegativeTtl: 1800, servfailTtl: 5 };

describe('analyzeResponse on hostile input', () => {
  const q = makeQuery('www.example.com', { edns: true });
  const valid = [
    makeResponse('www.example.com', { edns: true, answers: aRecords('www.example.com', 300, 3) }),
    makeResponse('www.example.com', { edns: true, rcode: 3, authorities: [soa('example.com', 600, 300)] }),
  ];

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (bytes) => {
        const a = analyzeResponse(Buffer.from(bytes), q, T0, limits);
        expect(a.entry !== undefined || typeof a.reason === 'string').toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws on mutated valid responses; entries it accepts are consistent', () => {
    fc.assert(
      fc.property(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (base, edits) => {
        const r = Buffer.from(base);
        for (const [pos, val] of edits) r[12 + (pos % (r.length - 12))] = val;
        const a = analyzeResponse(r, q, T0, limits);
        if (a.entry) {
          const e = a.entry;
          expect(e.ttl).toBeGreaterThan(0);
          expect(e.expiresAt).toBe(T0 + e.ttl * 1000);
          expect(e.nameEnd).toBe(plainNameEnd(e.wire, 12));
          for (const o of e.ttlOffsets) {
            expect(o + 4).toBeLessThanOrEqual(e.wire.length);
            // Each record keeps its own TTL, capped at maxTtl (a negative entry's at the entry TTL).
            expect(e.wire.readUInt32BE(o)).toBeLessThanOrEqual(e.kind === 'positive' ? limits.maxTtl : e.ttl);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('CacheStore invariants under random operations', () => {
  const names = Array.from({ length: 40 }, (_, i) => `n${i}.example`);
  const queries = names.map((n) => makeQuery(n));
  const responses = names.map((n, i) => makeResponse(n, { answers: aRecords(n, 10 + (i % 7) * 20, 1 + (i % 3)) }));
  const op = fc.oneof(
    fc.record({ k: fc.constant('insert' as const), i: fc.nat(39), dt: fc.nat(5000) }),
    fc.record({ k: fc.constant('serve' as const), i: fc.nat(39), dt: fc.nat(5000) }),
    fc.record({ k: fc.constant('delete' as const), i: fc.nat(39), dt: fc.constant(0) }),
    fc.record({ k: fc.constant('sweep' as const), i: fc.nat(39), dt: fc.nat(60_000) }),
    fc.record({ k: fc.constant('flushSuffix' as const), i: fc.nat(39), dt: fc.constant(0) }),
  );

  for (const policy of ['sieve', 'lru', 's3fifo'] as const) {
    it(`${policy}: bounds and byte accounting hold`, () => {
      fc.assert(
        fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 1, max: 12 }), fc.boolean(), (ops, maxEntries, stale) => {
          const store = newStore({ maxEntries, maxBytes: 6000, policy, serveStale: stale ? { maxStaleAge: 20_000 } : false, sweepBatch: 5 });
          let now = T0;
          for (const o of ops) {
            now += o.dt;
            if (o.k === 'insert') store.insert(`k${o.i}`, responses[o.i], queries[o.i], now);
            else if (o.k === 'serve') {
              const node = store.peek(`k${o.i}`);
              if (node !== undefined) store.serve(node, queries[o.i], plainNameEnd(queries[o.i], 12), 0, now);
            } else if (o.k === 'delete') store.delete(`k${o.i}`);
            else if (o.k === 'sweep') store.sweep(now);
            else store.flushSuffix(names[o.i]);
            expect(store.size).toBeLessThanOrEqual(maxEntries);
            expect(store.bytes).toBeLessThanOrEqual(6000);
            let sum = 0;
            let count = 0;
            for (const [k, e] of store.entries()) {
              sum += entrySize(k, e);
              count++;
              expect(store.getRaw(k)).toEqual(e);
            }
            expect(count).toBe(store.size);
            expect(sum).toBe(store.bytes);
          }
          // Eviction can always make room: filling the store never throws and keeps the bound.
          for (let i = 0; i < 40; i++) store.insert(`k${i}`, responses[i], queries[i], now);
          expect(store.size).toBeLessThanOrEqual(maxEntries);
          // Arena accounting: once every entry is gone, no slab but the current one is held.
          for (let i = 0; i < 40; i++) store.delete(`k${i}`);
          expect(store.size).toBe(0);
          expect(store.slabs).toBeLessThanOrEqual(1);
          store.flush();
          expect(store.size).toBe(0);
          expect(store.bytes).toBe(0);
          expect(store.slabs).toBe(0);
        }),
        { numRuns: 150 },
      );
    });
  }
});
