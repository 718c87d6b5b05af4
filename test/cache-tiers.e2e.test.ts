/**
 * The cache over the real disk tier (plugin persistence, LMDB), resolvers
 * restarted on one directory: serve-stale (RFC 8767) from the disk after a
 * restart, and tier hits that are never lost to the promotion's own
 * eviction in a tiny L1 (SIEVE, the default policy).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CACHE_RESULT, type HeimdallPlugin } from '@heimdall/core';
import cache from '@heimdall/plugin-cache';
import persistence from '@heimdall/plugin-persistence';
import { decodeResponse, FakeClock, query, record, response, type TestResolver, testResolver } from '@heimdall/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

const T0 = 1_700_000_000_000;
const dirs: string[] = [];
const resolvers: TestResolver[] = [];
afterEach(async () => {
  for (const r of resolvers.splice(0)) await r.stop();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The chain below the cache: answers (TTL 60) or fails; counts what reaches it and records CACHE_RESULT. */
function chain() {
  const state = { fail: false, calls: 0, results: [] as Array<string | undefined> };
  const plugin: HeimdallPlugin = {
    name: 'stub',
    middleware: () => (ctx) => {
      state.calls++;
      if (state.fail) throw new Error('upstream down');
      ctx.response = response(ctx.request, { answers: [record(ctx.query.qname, 'A', '192.0.2.7', 60)] });
    },
  };
  const observer: HeimdallPlugin = {
    name: 'observer',
    middleware: () => (ctx, next) => {
      const r = next();
      const done = (): void => void state.results.push(ctx.get(CACHE_RESULT));
      if (r === undefined) done();
      else return r.then(done);
    },
  };
  return { state, plugin, observer };
}

async function resolverOn(dir: string, at: number, cacheOptions: Parameters<typeof cache>[0], c: ReturnType<typeof chain>): Promise<TestResolver> {
  const r = testResolver([c.observer, cache(cacheOptions), persistence({ dir }), c.plugin], { clock: new FakeClock(at) });
  resolvers.push(r);
  await r.start();
  return r;
}

describe('cache over the disk tier, across restarts', () => {
  it('serve-stale from disk: after a restart, an expired entry within the window answers stale (TTL 30) when the upstream fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'heimdall-e2e-tier-stale-'));
    dirs.push(dir);
    const first = chain();
    const a = await resolverOn(dir, T0, { serveStale: true }, first);
    await a.handle(query('old.example', 'A', { edns: true }));
    await a.stop(); // commits the write
    resolvers.splice(0);

    // Two minutes later (expired 60 s ago), the upstream down.
    const down = chain();
    down.state.fail = true;
    const b = await resolverOn(dir, T0 + 120_000, { serveStale: true }, down);
    const out = decodeResponse((await b.handle(query('old.example', 'A', { edns: true })))!);
    expect(out.rcode).toBe(0);
    expect(out.answers.map((x) => [x.name, x.ttl])).toEqual([['old.example', 30]]);
    expect(down.state.results).toEqual(['stale']);
    await b.stop();
    resolvers.splice(0);

    // Without serve-stale the disk entry is expired: a miss, and the failing upstream's SERVFAIL.
    const c = await resolverOn(dir, T0 + 120_000, {}, down);
    expect(decodeResponse((await c.handle(query('old.example', 'A', { edns: true })))!).rcode).toBe(2);
  });

  it('a one-entry SIEVE L1 over the disk answers every name from disk, the upstream never asked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'heimdall-e2e-tier-sieve-'));
    dirs.push(dir);
    const names = Array.from({ length: 30 }, (_, i) => `n${i}.example`);
    const first = chain();
    const a = await resolverOn(dir, T0, {}, first);
    for (const n of names) await a.handle(query(n, 'A'));
    await a.stop();
    resolvers.splice(0);
    const second = chain();
    const b = await resolverOn(dir, T0 + 1000, { maxEntries: 1 }, second);
    for (let round = 0; round < 2; round++) {
      for (const n of names) {
        expect(decodeResponse((await b.handle(query(n, 'A')))!).answers[0]?.ttl).toBe(59);
        expect(decodeResponse((await b.handle(query(n, 'A')))!).answers[0]?.ttl).toBe(59); // an L1 hit: the entry is "visited"
      }
    }
    expect(second.state.calls).toBe(0);
  });
});
