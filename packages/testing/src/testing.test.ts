import dgram from 'node:dgram';
import net from 'node:net';
import { ContainerModule } from '@heimdall/core/di';
import { decode } from '@heimdall/core/packet';
import { type HeimdallPlugin, type Middleware, RecordType, StateKey } from '@heimdall/core';
import { afterEach, describe, expect, test } from 'vitest';
import {
  createContext,
  expectAnswers,
  expectEcho,
  expectEde,
  expectFlags,
  expectNoData,
  expectRcode,
  FakeClock,
  FakeUpstream,
  middlewareOf,
  query,
  record,
  response,
  runChain,
  runMiddleware,
  soa,
  tcpQuery,
  testResolver,
  udpQuery,
} from './index.js';

/** Sends one UDP query and resolves with the first datagram back (and its source port), or null after `ms`. */
function udpAsk(port: number, q: Buffer, ms = 500, address = '127.0.0.1'): Promise<{ msg: Buffer; port: number } | null> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
    const t = setTimeout(() => {
      s.close();
      resolve(null);
    }, ms);
    s.on('message', (msg, rinfo) => {
      clearTimeout(t);
      s.close();
      resolve({ msg, port: rinfo.port });
    });
    s.send(q, port, address);
  });
}

/** Sends queries over one TCP connection and collects `n` framed responses. */
function tcpAsk(port: number, qs: Buffer[], n = qs.length): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const s = net.connect(port, '127.0.0.1', () => {
      for (const q of qs) {
        const f = Buffer.alloc(2 + q.length);
        f.writeUInt16BE(q.length, 0);
        q.copy(f, 2);
        s.write(f);
      }
    });
    s.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length >= n) {
        s.destroy();
        resolve(out);
      }
    });
    s.on('error', reject);
    setTimeout(() => {
      s.destroy();
      reject(new Error(`tcp: ${out.length}/${n} responses`));
    }, 3000).unref();
  });
}

describe('builders and assertions', () => {
  test('query() and response() round-trip', () => {
    const q = query('Example.COM.', 'AAAA', { id: 7, do: true, cd: true });
    const m = decode(q);
    expect(m.id).toBe(7);
    expect(m.questions[0]).toEqual({ name: 'Example.COM', type: RecordType.AAAA, class: 1 });
    expect(m.edns?.dnssecOk).toBe(true);
    expect(m.cd).toBe(true);
    const r = response(q, { answers: [record('example.com', 'AAAA', '2001:db8::1', 60)], aa: true });
    expectEcho(q, r);
    expectAnswers(r, [{ type: 'AAAA', data: '2001:db8::1', ttl: 60 }]);
    expectFlags(r, { aa: true, qr: true, cd: true });
    expect(decode(r).edns?.dnssecOk).toBe(true);
    expect(decode(query('a.test')).edns).toBeUndefined();
    expect(decode(query('a.test', 'A', { edns: 4096 })).edns?.udpPayloadSize).toBe(4096);
  });

  test('assertions fail with the decoded response in the message', () => {
    const q = query('x.test');
    const nx = response(q, { rcode: 'NXDOMAIN', authorities: [soa('test')] });
    expectRcode(nx, 'NXDOMAIN');
    expect(() => expectRcode(nx, 'NOERROR')).toThrow(/expected rcode NOERROR, got NXDOMAIN[\s\S]*response: id=4660/);
    expect(() => expectAnswers(nx, ['1.2.3.4'])).toThrow(/expected rcode NOERROR/);
    expect(() => expectRcode(null, 'NOERROR')).toThrow(/expected a response/);
    expect(() => expectRcode(Buffer.from([1, 2]), 0)).toThrow(/does not decode/);
    expectNoData(response(q));
    expect(() => expectAnswers(response(q, { answers: [record('x.test', 'A', '192.0.2.1')] }), ['192.0.2.2'])).toThrow(/no answer matches/);
    const withEde = response(q, { rcode: 'SERVFAIL', ede: { code: 22, text: 'no reachable authority' } });
    expectEde(withEde, 22, /reachable/);
    expect(() => expectEde(withEde, 15)).toThrow(/expected EDE 15/);
    expect(() => query('a.test', 'NOPE')).toThrow(/unknown record type/);
  });
});

describe('FakeClock', () => {
  test('fires timers in order while advancing', async () => {
    const c = new FakeClock(1000);
    const seen: Array<[string, number]> = [];
    c.setTimeout(() => seen.push(['b', c.now()]), 20);
    c.setTimeout(() => seen.push(['a', c.now()]), 10);
    const cancelled = c.setTimeout(() => seen.push(['x', c.now()]), 15);
    c.clearTimeout(cancelled);
    expect(c.pendingTimers).toBe(2);
    c.advance(15);
    expect(seen).toEqual([['a', 1010]]);
    expect(c.now()).toBe(1015);
    await c.advanceAsync(5);
    expect(seen).toEqual([
      ['a', 1010],
      ['b', 1020],
    ]);
    c.setTimeout(() => c.setTimeout(() => seen.push(['nested', c.now()]), 5), 5);
    c.runAll();
    expect(seen.at(-1)).toEqual(['nested', 1030]);
    expect(() => c.set(0)).toThrow(RangeError);
  });

  test('advanceAsync lets promise callbacks run between timers; advance does not', async () => {
    for (const async of [true, false]) {
      const c = new FakeClock(0);
      const seen: string[] = [];
      c.setTimeout(() => void Promise.resolve().then(() => seen.push('reaction to 1')), 1);
      c.setTimeout(() => seen.push('timer 2'), 2);
      if (async) await c.advanceAsync(2);
      else c.advance(2);
      expect(seen).toEqual(async ? ['reaction to 1', 'timer 2'] : ['timer 2']);
      expect(c.now()).toBe(2);
    }
    expect(() => new FakeClock().advance(-1)).toThrow('FakeClock.advance: ms must be >= 0');
    await expect(new FakeClock().advanceAsync(-1)).rejects.toThrow('FakeClock.advanceAsync: ms must be >= 0');
  });
});

describe('runMiddleware / runChain / testResolver', () => {
  const whoami: Middleware = (ctx) => {
    ctx.answer([record(ctx.query.qname, 'A', ctx.client.address, 0)]);
  };

  test('runMiddleware reports the response, sync-ness and next() calls', async () => {
    const r = await runMiddleware(whoami, query('who.test'), { client: { address: '198.51.100.7' } });
    expect(r.sync).toBe(true);
    expect(r.nextCalls).toBe(0);
    expectAnswers(r.response, ['198.51.100.7']);

    const SEEN = new StateKey<boolean>('seen');
    const passthrough: Middleware = async (ctx, next) => {
      await next();
      if (ctx.response) ctx.set(SEEN, true);
    };
    const r2 = await runMiddleware(passthrough, query('who.test'), { next: whoami });
    expect(r2.sync).toBe(false);
    expect(r2.nextCalls).toBe(1);
    expect(r2.ctx.get(SEEN)).toBe(true);
    expectAnswers(r2.response, ['192.0.2.10']);

    await expect(
      runMiddleware(() => {
        throw new Error('boom');
      }, query('a.test')),
    ).rejects.toThrow('boom');
    const c = await runChain([(_c, next) => next(), whoami], query('w.test'));
    expect(c.sync).toBe(true);
    expectAnswers(c.response, ['192.0.2.10']);
    expect(createContext(query('a.test'), { client: { transport: 'tcp' } }).client.transport).toBe('tcp');
  });

  test('runMiddleware and runChain accept plugins (middleware built with a container holding their module)', async () => {
    const TOKEN = Symbol('addr');
    const plugin: HeimdallPlugin = {
      name: 'fixed',
      module: new ContainerModule(({ bind }) => void bind(TOKEN).toConstantValue('203.0.113.5')),
      middleware: (c) => {
        const addr = c.get<string>(TOKEN);
        return (ctx) => ctx.answer([record(ctx.query.qname, 'A', addr)]);
      },
    };
    const r = await runMiddleware(plugin, query('p.test'));
    expectAnswers(r.response, ['203.0.113.5']);
    const chain = await runChain([(_c, next) => next(), plugin], query('p.test'));
    expectAnswers(chain.response, ['203.0.113.5']);
    expect(() => middlewareOf({ name: 'empty' })).toThrow(/contributes no middleware/);
  });

  test('testResolver applies core failure rules and uses a FakeClock', async () => {
    const slow: HeimdallPlugin = { name: 'slow', middleware: () => () => new Promise<void>(() => {}) };
    const r = testResolver([slow], { queryTimeoutMs: 1000 });
    const p = r.handle(query('a.test'));
    (r.clock as FakeClock).advance(1000);
    expectRcode(await p, 'SERVFAIL');
  });
});

describe('FakeUpstream', () => {
  let up: FakeUpstream;
  afterEach(async () => {
    await up?.close();
  });

  test('answers over UDP and TCP on the same port and counts per transport', async () => {
    up = await FakeUpstream.start();
    up.on('example.com', 'A', [record('example.com', 'A', '192.0.2.1')]);
    const q = query('example.com', 'A', { id: 99 });
    const u = await udpAsk(up.port, q);
    expectAnswers(u!.msg, ['192.0.2.1']);
    expectEcho(q, u!.msg);
    const [t] = await tcpAsk(up.port, [q]);
    expectAnswers(t, ['192.0.2.1']);
    expect(up.counts).toEqual({ udp: 1, tcp: 1 });
    expect(up.count('EXAMPLE.com', 'A', 'tcp')).toBe(1);
    expect(up.endpoint).toBe(`127.0.0.1:${up.port}`);
    // No rule: NXDOMAIN by default.
    expectRcode((await udpAsk(up.port, query('nothing.test')))!.msg, 'NXDOMAIN');
  });

  test('scripted behaviours: truncate, wrong id, wrong question, other port, drop, delay, rcode, ede, raw', async () => {
    up = await FakeUpstream.start();
    const rec = [record('t.test', 'A', '192.0.2.9')];
    up.on('t.test', 'A', rec);
    up.once('t.test', 'A', { answers: rec, truncate: true });
    const q = query('t.test');
    const trunc = (await udpAsk(up.port, q))!.msg;
    expectFlags(trunc, { tc: true });
    expect(decode(trunc).answers).toEqual([]);
    up.once('t.test', 'A', { answers: rec, truncate: true });
    expectAnswers((await tcpAsk(up.port, [q]))[0], ['192.0.2.9']); // full over TCP

    up.once('t.test', 'A', { answers: rec, wrongId: true });
    expect(decode((await udpAsk(up.port, q))!.msg).id).not.toBe(decode(q).id);
    up.once('t.test', 'A', { answers: rec, wrongQuestion: true });
    expect(decode((await udpAsk(up.port, q))!.msg).questions[0].name).toBe('wrong-t.test');
    up.once('t.test', 'A', { answers: rec, fromOtherPort: true });
    const other = await udpAsk(up.port, q);
    expect(other!.port).not.toBe(up.port);
    up.once('t.test', 'A', { drop: true });
    expect(await udpAsk(up.port, q, 150)).toBeNull();
    up.once('t.test', 'A', { answers: rec, delayMs: 120 });
    const t0 = Date.now();
    expectAnswers((await udpAsk(up.port, q, 1000))!.msg, ['192.0.2.9']);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
    up.once('t.test', '*', { rcode: 'SERVFAIL', ede: { code: 23, text: 'net' } });
    expectEde((await udpAsk(up.port, q))!.msg, 23, 'net');
    up.once('t.test', 'A', { raw: Buffer.from('garbage') });
    expect((await udpAsk(up.port, q))!.msg.toString()).toBe('garbage');
    up.on('fn.test', 'A', (rq) => [record('fn.test', 'A', rq.transport === 'udp' ? '192.0.2.1' : '192.0.2.2')]);
    expectAnswers((await tcpAsk(up.port, [query('fn.test')]))[0], ['192.0.2.2']);
    expect(up.received.length).toBe(up.counts.udp + up.counts.tcp);
  });

  test('pipelined TCP queries are answered out of order', async () => {
    up = await FakeUpstream.start();
    up.on('slow.test', 'A', { answers: [record('slow.test', 'A', '192.0.2.1')], delayMs: 80 });
    up.on('fast.test', 'A', [record('fast.test', 'A', '192.0.2.2')]);
    const out = await tcpAsk(up.port, [query('slow.test', 'A', { id: 1 }), query('fast.test', 'A', { id: 2 })]);
    expect(out.map((m) => decode(m).id)).toEqual([2, 1]);
  });

  test('large answers are truncated over UDP to the client payload size', async () => {
    up = await FakeUpstream.start();
    const many = Array.from({ length: 60 }, (_, i) => record('big.test', 'A', `10.0.${i >> 8}.${i & 255}`));
    up.on('big.test', 'A', many);
    const small = (await udpAsk(up.port, query('big.test')))!.msg;
    expect(small.length).toBeLessThanOrEqual(512);
    expectFlags(small, { tc: true });
    const [full] = await tcpAsk(up.port, [query('big.test')]);
    expect(decode(full).answers).toHaveLength(60);
  });

  test('IPv6 loopback', async () => {
    up = await FakeUpstream.start({ address: '::1', tcp: false });
    up.on('v6.test', 'AAAA', [record('v6.test', 'AAAA', '2001:db8::6')]);
    expectAnswers((await udpAsk(up.port, query('v6.test', 'AAAA'), 500, '::1'))!.msg, ['2001:db8::6']);
    expect(up.endpoint).toBe(`[::1]:${up.port}`);
  });
});

describe('query clients on real sockets', () => {
  test('udpQuery and pipelined tcpQuery against a resolver with listeners', async () => {
    const { createResolver } = await import('@heimdall/core');
    const echo: HeimdallPlugin = { name: 'echo', middleware: () => (ctx) => ctx.answer([{ name: ctx.query.qname, type: RecordType.A, data: '192.0.2.9' }]) };
    const r = createResolver({
      plugins: [echo],
      listen: [
        { transport: 'udp', address: '127.0.0.1', port: 0 },
        { transport: 'tcp', address: '127.0.0.1', port: 0 },
      ],
    });
    await r.start();
    try {
      const [udp, tcp] = r.addresses();
      expectAnswers(await udpQuery(udp!.port, query('u.test')), ['192.0.2.9']);
      const replies = await tcpQuery(tcp!.port, [query('a.test'), query('b.test'), query('c.test')]);
      expect(replies.map((m) => decode(m).questions[0]!.name).sort()).toEqual(['a.test', 'b.test', 'c.test']);
      await expect(udpQuery(1, query('x.test'), { timeoutMs: 200 })).rejects.toThrow(/no reply|ECONNREFUSED/);
    } finally {
      await r.stop();
    }
  });
});
