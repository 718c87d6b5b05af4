/**
 * The AD bit through cache and dedup (RFC 6840 §5.7, §5.8): a validating
 * upstream sets AD only when the query had AD or DO, so the forwarder asks
 * with AD=1 always and keeps the upstream's AD in what it caches or shares;
 * each client then sees AD only when it asked with AD or DO — whichever kind
 * of client happened to ask first.
 */
import cache from '@heimdall/plugin-cache';
import dedup from '@heimdall/plugin-dedup';
import upstream from '@heimdall/plugin-upstream';
import { FakeUpstream, query, record, testResolver } from '@heimdall/testing';
import { decode } from '@heimdall/core/packet';
import { afterEach, describe, expect, it } from 'vitest';

const open: Array<{ close(): Promise<void> | void }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

/** An upstream that validates like unbound: AD only for a query with AD or DO, after `delayMs`. */
async function validating(delayMs = 0) {
  const up = await FakeUpstream.start();
  up.otherwise((q) => {
    const asked = q.message.ad === true || q.message.edns?.dnssecOk === true;
    return { answers: [record(q.name, 'A', '192.0.2.53')], ad: asked, delayMs };
  });
  open.push(up);
  return up;
}

async function resolverFor(up: FakeUpstream) {
  const r = testResolver([cache(), dedup(), upstream({ servers: [up.endpoint] })]);
  open.push({ close: () => r.stop() });
  await r.start();
  return r;
}

const plain = (name: string) => query(name, 'A', { edns: true });
const withDo = (name: string) => query(name, 'A', { do: true });
const withAd = (name: string) => query(name, 'A', { edns: true, ad: true });

describe('AD through the cache and dedup', () => {
  it('the upstream is asked with AD=1 even for a client that sent neither AD nor DO', async () => {
    const up = await validating();
    let upstreamAd: boolean | undefined;
    up.otherwise((q) => {
      upstreamAd = q.message.ad;
      return { answers: [record(q.name, 'A', '192.0.2.53')], ad: true };
    });
    const r = await resolverFor(up);
    const res = decode((await r.handle(plain('signed.example')))!);
    expect(upstreamAd).toBe(true);
    expect(res.ad).toBe(false);
  });

  it('a cached answer keeps AD for AD clients after a plain client asked first (one cache entry)', async () => {
    const up = await validating();
    const r = await resolverFor(up);
    expect(decode((await r.handle(plain('signed.example')))!).ad).toBe(false);
    expect(decode((await r.handle(withAd('signed.example')))!).ad).toBe(true);
    expect(decode((await r.handle(plain('signed.example')))!).ad).toBe(false);
    expect(up.count('signed.example')).toBe(1); // every answer after the first came from the cache
    // DO is part of the cache key: its own exchange, AD as well.
    expect(decode((await r.handle(withDo('signed.example')))!).ad).toBe(true);
  });

  it('followers of one upstream exchange each get their own AD view', async () => {
    const up = await validating(100);
    const r = await resolverFor(up);
    const [a, b] = await Promise.all([r.handle(plain('shared.example')), r.handle(withAd('shared.example'))]);
    expect(decode(a!).ad).toBe(false);
    expect(decode(b!).ad).toBe(true);
    expect(up.count('shared.example')).toBe(1);
  });
});
