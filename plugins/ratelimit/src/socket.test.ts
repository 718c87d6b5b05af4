import { createResolver, definePlugin, RecordType, type Resolver } from '@heimdall/core';
import { silentLogger } from '@heimdall/core/pipeline';
import { decodeResponse, query, tcpQuery, udpQuery } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { ratelimit } from './index.js';

// Real sockets, real clock: a flood from 127.0.0.1 is limited while
// 127.0.0.2 (a client socket bound to it) is served in full.

const answer = definePlugin({
  name: 'answer',
  setup: () => ({ middleware: () => (ctx) => ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 60, data: '192.0.2.1' }]) }),
});

let resolver: Resolver | undefined;
afterEach(async () => {
  await resolver?.stop();
  resolver = undefined;
});

async function serve(options: Parameters<typeof ratelimit>[0]): Promise<{ udp: number; tcp: number }> {
  resolver = createResolver({
    plugins: [ratelimit(options), answer()],
    listen: [
      { transport: 'udp', address: '127.0.0.1', port: 0 },
      { transport: 'tcp', address: '127.0.0.1', port: 0 },
    ],
    logger: silentLogger(),
  });
  await resolver.start();
  const [udp, tcp] = resolver.addresses();
  return { udp: udp!.port, tcp: tcp!.port };
}

/** `n` UDP queries at once from `localAddress`; counts full answers and TC=1 answers. */
async function flood(port: number, n: number, localAddress: string, timeoutMs = 3000) {
  const replies = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => udpQuery(port, query(`q${i}.example`, 'A', { id: i + 1 }), { localAddress, timeoutMs })),
  );
  const out = { answered: 0, truncated: 0, lost: 0 };
  for (const r of replies) {
    if (r.status === 'rejected') out.lost++;
    else {
      const m = decodeResponse(r.value);
      if (m.tc && m.answers.length === 0) out.truncated++;
      else if (!m.tc && m.answers.length === 1) out.answered++;
    }
  }
  return out;
}

describe('ratelimit on real sockets', () => {
  it('a flood from 127.0.0.1 gets TC=1 past its burst while 127.0.0.2, at the same time, is served in full; TCP from the flooder still answers', async () => {
    const { udp: port, tcp } = await serve({ rate: 1, burst: 20, ipv4Prefix: 32 });
    // Concurrently: the other client's queries go out while the flood is under way.
    const [flooder, other] = await Promise.all([flood(port, 100, '127.0.0.1'), flood(port, 20, '127.0.0.2')]);
    expect(flooder.lost).toBe(0);
    expect(flooder.answered).toBeGreaterThanOrEqual(20);
    expect(flooder.answered).toBeLessThanOrEqual(25); // burst + at most a few seconds of refill at 1/s
    expect(flooder.truncated).toBe(100 - flooder.answered);
    expect(other).toEqual({ answered: 20, truncated: 0, lost: 0 });

    // The truncated client retries over TCP, which is not limited (UDP only by default).
    const overTcp = await tcpQuery(tcp, [query('retry.example', 'A', { id: 1 }), query('retry2.example', 'A', { id: 2 })], { localAddress: '127.0.0.1' });
    expect(overTcp.map((r) => decodeResponse(r).answers.length)).toEqual([1, 1]);
  });

  it("action 'drop': the flooder's excess gets no reply at all", async () => {
    const { udp: port } = await serve({ rate: 1, burst: 5, ipv4Prefix: 32, action: 'drop' });
    const flooder = await flood(port, 30, '127.0.0.1', 500);
    expect(flooder.truncated).toBe(0);
    expect(flooder.answered).toBeGreaterThanOrEqual(5);
    expect(flooder.answered).toBeLessThanOrEqual(7);
    expect(flooder.lost).toBe(30 - flooder.answered);
    expect(await flood(port, 5, '127.0.0.2', 2000)).toEqual({ answered: 5, truncated: 0, lost: 0 });
  });
});
