/**
 * dedup + the real upstream plugin against a fake DNS server on loopback
 * (real sockets, real clock; short timeouts).
 */
import { type ClientInfo, createResolver, type Resolver } from '@heimdall/core';
import { decode } from '@heimdall/core/packet';
import { upstream } from '@heimdall/plugin-upstream';
import { FakeUpstream, query, record } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { Deduplicator } from './dedup.js';
import { dedup } from './index.js';

const CLIENT: ClientInfo = { address: '127.0.0.1', port: 40000, family: 4, transport: 'udp' };

let up: FakeUpstream | null = null;
let resolver: Resolver | null = null;
afterEach(async () => {
  await resolver?.stop();
  await up?.close();
  resolver = null;
  up = null;
});

describe('dedup + upstream over loopback', () => {
  it('100 concurrent queries make one upstream query; each gets its own ID and letter case', async () => {
    up = await FakeUpstream.start();
    resolver = createResolver({
      plugins: [dedup(), upstream({ servers: [`${up.address}:${up.port}`], timeout: 400, maxAttempts: 1, budget: 600, health: { maxFailures: 0 } })],
    });
    await resolver.start();
    up.on('example.com', 'A', { answers: [record('example.com', 'A', '192.0.2.7', 300)], delayMs: 30 });
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) => resolver!.handle(query(i % 2 ? 'Example.COM' : 'example.com', 'A', { id: i }), CLIENT)),
    );
    expect(up.count('example.com', 'A')).toBe(1);
    answers.forEach((a, i) => {
      const m = decode(a!);
      expect(m.id).toBe(i);
      expect(m.questions[0].name).toBe(i % 2 ? 'Example.COM' : 'example.com');
      expect(m.answers[0].data).toBe('192.0.2.7');
    });
    expect(resolver.scope('dedup').get(Deduplicator).stats).toMatchObject({ leaders: 1, coalesced: 99, failures: 0 });
    expect(resolver.scope('dedup').get(Deduplicator).inFlight).toBe(0);
  });

  it('an upstream that does not answer reaches every waiter as SERVFAIL', async () => {
    up = await FakeUpstream.start();
    resolver = createResolver({
      plugins: [dedup(), upstream({ servers: [`${up.address}:${up.port}`], timeout: 150, maxAttempts: 1, budget: 200, health: { maxFailures: 0 } })],
    });
    await resolver.start();
    up.on('drop.example', 'A', { drop: true });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => resolver!.handle(query('drop.example', 'A', { id: i }), CLIENT)));
    expect(up.count('drop.example', 'A')).toBe(1);
    answers.forEach((a, i) => {
      const m = decode(a!);
      expect(m.id).toBe(i);
      expect(m.rcode).toBe(2);
    });
    // The upstream plugin answers SERVFAIL itself (the waiters get copies of it) or throws (they get their own SERVFAIL).
    const stats = resolver.scope('dedup').get(Deduplicator).stats;
    expect(stats.leaders).toBe(1);
    expect(stats.coalesced + stats.failures).toBe(19);
    expect(resolver.scope('dedup').get(Deduplicator).inFlight).toBe(0);
  });
});
