// The kit's FakeClock, imported by path (@heimdall/testing depends on core, not the reverse).
import { compose } from './pipeline/compose.js';
import { FakeClock } from '../../testing/src/clock.js';
import { ContainerModule, inject, injectable } from 'inversify';
import { Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { ConfigError, NextCalledTwiceError } from './errors.js';
import { decode, EdeCode, encode, type MessageInit, OptionCode, Rcode, RecordType } from './packet/index.js';
import type { DnsContext } from './pipeline/context.js';
import type { Middleware } from './pipeline/types.js';
import type { HeimdallPlugin } from './plugin/types.js';
import { CORE_METRICS, createResolver } from './resolver.js';
import { CLOCK, LIFECYCLE, type Lifecycle, LOGGER, METRICS } from './tokens.js';
import { silentLogger } from './util/logger.js';

function q(name = 'example.com', type: number = RecordType.A, extra: Partial<MessageInit> = {}): Buffer {
  return encode({ id: 0xbeef, rd: true, questions: [{ name, type }], ...extra });
}

function plugin(name: string, middleware: Middleware, more: Partial<HeimdallPlugin> = {}): HeimdallPlugin {
  return { name, middleware: () => middleware, ...more };
}

const answerA: Middleware = (ctx) => {
  ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 60, data: '192.0.2.1' }]);
};

describe('createResolver + handle', () => {
  test('a synchronous chain answers synchronously through process()', () => {
    const r = createResolver({ plugins: [plugin('a', answerA)], logger: silentLogger() });
    const out = r.process(q(), { address: '127.0.0.1', port: 1, family: 4, transport: 'internal' });
    expect(Buffer.isBuffer(out)).toBe(true);
    const m = decode(out as Buffer);
    expect(m.id).toBe(0xbeef);
    expect(m.qr).toBe(true);
    expect(m.rd).toBe(true);
    expect(m.ra).toBe(true);
    expect(m.questions).toEqual([{ name: 'example.com', type: RecordType.A, class: 1 }]);
    expect(m.answers[0].data).toBe('192.0.2.1');
    expect(m.edns).toBeUndefined();
  });

  test('echoes EDNS (payload 1232, DO) and the exact question case', async () => {
    const r = createResolver({ plugins: [plugin('a', answerA)], logger: silentLogger() });
    const out = await r.handle(q('ExAmPlE.CoM', RecordType.A, { cd: true, edns: { udpPayloadSize: 4096, dnssecOk: true } }));
    const m = decode(out!);
    expect(m.questions[0].name).toBe('ExAmPlE.CoM');
    expect(m.cd).toBe(true);
    expect(m.edns?.udpPayloadSize).toBe(1232);
    expect(m.edns?.dnssecOk).toBe(true);
    expect(m.edns?.version).toBe(0);
  });

  test('answering helpers: nxdomain/nodata with SOA, refused, servfail with EDE, formerr, notimp', async () => {
    const soa = {
      name: 'example.com',
      type: RecordType.SOA,
      ttl: 300,
      data: { mname: 'ns.example.com', rname: 'h.example.com', serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 60 },
    };
    const cases: Array<[(ctx: DnsContext) => void, number, number, number]> = [
      [(c) => c.nxdomain(soa), Rcode.NXDOMAIN, 0, 1],
      [(c) => c.nxdomain(), Rcode.NXDOMAIN, 0, 0],
      [(c) => c.nodata(soa), Rcode.NOERROR, 0, 1],
      [(c) => c.nodata(), Rcode.NOERROR, 0, 0],
      [(c) => c.refused(), Rcode.REFUSED, 0, 0],
      [(c) => c.servfail(), Rcode.SERVFAIL, 0, 0],
      [(c) => c.formerr(), Rcode.FORMERR, 0, 0],
      [(c) => c.notimp(), Rcode.NOTIMP, 0, 0],
    ];
    for (const [fn, rcode, an, ns] of cases) {
      for (const withEdns of [false, true]) {
        const r = createResolver({ plugins: [plugin('x', (ctx) => fn(ctx))], logger: silentLogger() });
        const m = decode((await r.handle(q('a.example.com', RecordType.AAAA, withEdns ? { edns: {} } : {})))!);
        expect(m.rcode).toBe(rcode);
        expect(m.answers.length).toBe(an);
        expect(m.authorities.length).toBe(ns);
        expect(m.questions[0].name).toBe('a.example.com');
        expect(m.edns !== undefined).toBe(withEdns);
      }
    }
    const r = createResolver({
      plugins: [plugin('x', (ctx) => ctx.servfail({ code: EdeCode.NETWORK_ERROR, text: 'upstream down' }))],
      logger: silentLogger(),
    });
    const m = decode((await r.handle(q('a.example.com', RecordType.A, { edns: {} })))!);
    expect(m.edns?.options).toEqual([{ code: OptionCode.EDE, infoCode: EdeCode.NETWORK_ERROR, extraText: 'upstream down' }]);
  });

  test('ede() attaches to a response already set, as a new buffer', async () => {
    let before: Buffer | null = null;
    const r = createResolver({
      plugins: [
        plugin('x', (ctx) => {
          ctx.nxdomain();
          before = ctx.response;
          ctx.ede(15, 'blocked');
        }),
      ],
      logger: silentLogger(),
    });
    const out = (await r.handle(q('ads.example', RecordType.A, { edns: {} })))!;
    expect(out).not.toBe(before);
    const m = decode(out);
    expect(m.rcode).toBe(Rcode.NXDOMAIN);
    expect(m.edns?.options).toEqual([{ code: 15, infoCode: 15, extraText: 'blocked' }]);
    expect(decode(before!).edns?.options).toEqual([]);
    // Without EDNS in the query, no OPT is added.
    const plain = decode((await r.handle(q('ads.example')))!);
    expect(plain.edns).toBeUndefined();
  });

  test('reply() with an extended rcode writes it through OPT', async () => {
    const r = createResolver({ plugins: [plugin('x', (ctx) => ctx.reply({ rcode: Rcode.BADCOOKIE }))], logger: silentLogger() });
    const m = decode((await r.handle(q('x.test', RecordType.A, { edns: {} })))!);
    expect(m.rcode).toBe(Rcode.BADCOOKIE);
  });
});

describe('failure rules', () => {
  test('a thrown error → SERVFAIL, logged once with the plugin name, counted', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const { pino } = await import('pino');
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    const r = createResolver({
      plugins: [
        plugin('outer', (_c, next) => next()),
        plugin('broken', () => {
          throw new Error('kaput');
        }),
      ],
      logger,
    });
    const m = decode((await r.handle(q()))!);
    expect(m.rcode).toBe(Rcode.SERVFAIL);
    const errors = lines.filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0].plugin).toBe('broken');
    expect(String(errors[0].msg)).toContain('plugin/broken');
    expect(r.container.get<{ errors: Map<string, number> }>(CORE_METRICS).errors.get('broken')).toBe(1);
  });

  test('an async rejection → SERVFAIL with the plugin name', async () => {
    const r = createResolver({
      plugins: [
        plugin('a', async (_c, next) => {
          await next();
        }),
        plugin('late', async () => {
          await new Promise((x) => setTimeout(x, 1));
          throw new Error('no');
        }),
      ],
      logger: silentLogger(),
    });
    expect(decode((await r.handle(q()))!).rcode).toBe(Rcode.SERVFAIL);
    expect(r.container.get<{ errors: Map<string, number> }>(CORE_METRICS).errors.get('late')).toBe(1);
  });

  test('next() twice → SERVFAIL', async () => {
    const r = createResolver({
      plugins: [
        plugin('twice', (_c, next) => {
          next();
          next();
        }),
        plugin('end', () => {}),
      ],
      logger: silentLogger(),
    });
    expect(decode((await r.handle(q()))!).rcode).toBe(Rcode.SERVFAIL);
    expect(r.container.get<{ errors: Map<string, number> }>(CORE_METRICS).errors.get('twice')).toBe(1);
    // The error behind that SERVFAIL is the typed one, naming the step.
    const run = compose([
      {
        name: 'twice',
        middleware: (_c: unknown, next: () => unknown) => {
          next();
          next();
        },
      },
      { name: 'end', middleware: () => {} },
    ]);
    expect(() => run({})).toThrow(NextCalledTwiceError);
    expect(() => run({})).toThrow('plugin/twice: next() called multiple times');
  });

  test('nobody answered → SERVFAIL, or REFUSED when configured', async () => {
    const pass = plugin('pass', (_c, next) => next());
    const a = createResolver({ plugins: [pass], logger: silentLogger() });
    expect(decode((await a.handle(q()))!).rcode).toBe(Rcode.SERVFAIL);
    const b = createResolver({ plugins: [pass], onUnanswered: 'refused', logger: silentLogger() });
    expect(decode((await b.handle(q()))!).rcode).toBe(Rcode.REFUSED);
    const empty = createResolver({ plugins: [], logger: silentLogger() });
    expect(decode((await empty.handle(q()))!).rcode).toBe(Rcode.SERVFAIL);
  });

  test('deadline passed → SERVFAIL and the signal is aborted', async () => {
    const clock = new FakeClock();
    let signal: AbortSignal | undefined;
    const r = createResolver({
      plugins: [
        plugin('slow', (ctx) => {
          signal = ctx.signal;
          return new Promise<void>(() => {}); // never settles
        }),
      ],
      logger: silentLogger(),
      clock,
      queryTimeoutMs: 2000,
    });
    const p = r.handle(q());
    await Promise.resolve();
    expect(signal?.aborted).toBe(false);
    clock.advance(1999);
    clock.advance(1);
    const m = decode((await p)!);
    expect(m.rcode).toBe(Rcode.SERVFAIL);
    expect(signal?.aborted).toBe(true);
    expect(r.container.get<{ timedOut: number; inFlight: number }>(CORE_METRICS).timedOut).toBe(1);
    expect(r.container.get<{ inFlight: number }>(CORE_METRICS).inFlight).toBe(0);
  });

  test('a late answer after the deadline is ignored', async () => {
    const clock = new FakeClock();
    let release!: () => void;
    const r = createResolver({
      plugins: [
        plugin('slow', async (ctx) => {
          await new Promise<void>((x) => (release = x));
          ctx.answer([]);
        }),
      ],
      logger: silentLogger(),
      clock,
      queryTimeoutMs: 100,
    });
    const p = r.handle(q());
    clock.advance(100);
    release();
    expect(decode((await p)!).rcode).toBe(Rcode.SERVFAIL);
  });

  test('QR=1 dropped, opcode ≠ QUERY → NOTIMP, QDCOUNT ≠ 1 → FORMERR, short header dropped and counted', async () => {
    const r = createResolver({ plugins: [plugin('a', answerA)], logger: silentLogger() });
    expect(await r.handle(encode({ id: 1, qr: true, questions: [{ name: 'a', type: 1 }] }))).toBeNull();
    const notimp = decode((await r.handle(encode({ id: 2, opcode: 2, questions: [{ name: 'a', type: 1 }] })))!);
    expect(notimp.rcode).toBe(Rcode.NOTIMP);
    expect(notimp.id).toBe(2);
    expect(notimp.opcode).toBe(2);
    const zero = decode((await r.handle(encode({ id: 3, questions: [] })))!);
    expect(zero.rcode).toBe(Rcode.FORMERR);
    const two = decode(
      (await r.handle(
        encode({
          id: 4,
          questions: [
            { name: 'a', type: 1 },
            { name: 'b', type: 1 },
          ],
        }),
      ))!,
    );
    expect(two.rcode).toBe(Rcode.FORMERR);
    expect(await r.handle(Buffer.from([1, 2, 3]))).toBeNull();
    // Header says one question but the bytes stop: FORMERR, not a crash.
    const cut = q().subarray(0, 15);
    expect(decode((await r.handle(cut))!).rcode).toBe(Rcode.FORMERR);
    const metrics = r.container.get<{ dropped: Record<string, number>; queries: number }>(CORE_METRICS);
    expect(metrics.dropped.malformed).toBe(1);
    expect(metrics.dropped.response).toBe(1);
    expect(metrics.queries).toBe(6);
  });

  test('EDNS version ≠ 0 → BADVERS with OPT version 0', async () => {
    const r = createResolver({ plugins: [plugin('a', answerA)], logger: silentLogger() });
    const m = decode((await r.handle(q('a.test', RecordType.A, { edns: { version: 1 } })))!);
    expect(m.rcode).toBe(Rcode.BADVERS);
    expect(m.edns?.version).toBe(0);
    expect(m.answers).toEqual([]);
  });

  test('metrics are exposed through the registry', async () => {
    const registry = new Registry();
    const r = createResolver({ plugins: [plugin('a', answerA)], logger: silentLogger(), metrics: registry });
    await r.handle(q());
    await r.handle(Buffer.alloc(3));
    const text = await registry.metrics();
    expect(text).toContain('heimdall_queries_total 2');
    expect(text).toContain('heimdall_responses_total{rcode="NOERROR"} 1');
    expect(text).toContain('heimdall_queries_dropped_total{reason="malformed"} 1');
    expect(r.container.get(METRICS)).toBe(registry);
  });
});

describe('plugins and DI', () => {
  const GREETING = Symbol('greeting');
  const GREETER = Symbol('greeter');
  @injectable()
  class Greeter {
    constructor(
      @inject(GREETING) readonly greeting: string,
      @inject(LOGGER) readonly logger: unknown,
    ) {}
  }

  test("modules load into each plugin's scope; what is provided is shared; middleware can use services of later plugins; start/stop order", async () => {
    const events: string[] = [];
    const provider: HeimdallPlugin = {
      name: 'provider',
      module: new ContainerModule(({ bind }) => {
        bind(GREETING).toConstantValue('hello');
        bind(GREETER).to(Greeter).inSingletonScope();
      }),
      provides: [{ token: GREETER, use: GREETER }],
      start: () => void events.push('start provider'),
      stop: () => void events.push('stop provider'),
    };
    const user: HeimdallPlugin = {
      name: 'user',
      middleware: (c) => {
        const g = c.get<Greeter>(GREETER);
        return (ctx) => ctx.answer([{ name: ctx.query.qname, type: RecordType.TXT, data: [g.greeting] }]);
      },
      start: async (c) => {
        events.push('start user');
        c.get<Lifecycle>(LIFECYCLE).onStop(() => void events.push('lifecycle stop'));
      },
      stop: () => void events.push('stop user'),
    };
    const r = createResolver({ plugins: [user, provider], logger: silentLogger() });
    expect(r.chain).toEqual(['user']);
    expect(r.container.get(CLOCK)).toBeDefined();
    expect(r.container.isBound(GREETING)).toBe(false); // private to the provider's scope
    expect(r.scope('provider').get(GREETING)).toBe('hello');
    await r.start();
    const m = decode((await r.handle(q('hi.test', RecordType.TXT)))!);
    expect(m.answers[0].data).toEqual([Buffer.from('hello')]);
    await r.stop();
    await r.stop(); // idempotent
    expect(events).toEqual(['start user', 'start provider', 'lifecycle stop', 'stop provider', 'stop user']);
    await expect(r.handle(q())).rejects.toThrow(/stopped/);
  });

  test('a failing start stops what was started and rethrows', async () => {
    const events: string[] = [];
    const r = createResolver({
      plugins: [
        { name: 'ok', start: () => void events.push('start ok'), stop: () => void events.push('stop ok') },
        {
          name: 'bad',
          start: () => {
            throw new Error('cannot');
          },
          stop: () => void events.push('stop bad'),
        },
      ],
      logger: silentLogger(),
    });
    await expect(r.start()).rejects.toThrow('cannot');
    expect(events).toEqual(['start ok', 'stop ok']);
  });

  test('bad options fail fast with the field path', () => {
    const L = silentLogger();
    expect(() => createResolver({ plugins: [{ name: 'a' }, { name: 'a' }], logger: L })).toThrow(/plugins\[1\]\.name: duplicate/);
    expect(() => createResolver({ plugins: [{} as HeimdallPlugin], logger: L })).toThrow(ConfigError);
    expect(() => createResolver({ plugins: [], queryTimeoutMs: 0, logger: L })).toThrow(/queryTimeoutMs: must be/);
    expect(() => createResolver({ plugins: [], onUnanswered: 'x' as 'refused', logger: L })).toThrow(/onUnanswered/);
    expect(() => createResolver({ plugins: [], listen: [{ transport: 'udp', address: 'nope', port: 0 }], logger: L })).toThrow(/listen\[0\]\.address/);
    expect(() => createResolver({ plugins: [], listen: [{ transport: 'tcp', port: 70000 }], logger: L })).toThrow(/listen\[0\]\.port/);
    expect(() => createResolver({ plugins: [], listen: [{ transport: 'quic' } as never], logger: L })).toThrow(/listen\[0\]\.transport/);
    expect(() => createResolver({ plugins: [], listen: [{ transport: 'tcp', port: 0, maxConnections: 0 }], logger: L })).toThrow(/listen\[0\]\.maxConnections/);
    expect(() => createResolver({ plugins: [{ name: 'm', middleware: () => 42 as never }], logger: L })).toThrow(/middleware\(\) must return/);
  });
});

describe('invalid responses from middleware', () => {
  test('a non-buffer or short response is treated as unanswered', async () => {
    const r = createResolver({ plugins: [plugin('bad', (ctx) => void (ctx.response = 'not bytes at all!!' as unknown as Buffer))], logger: silentLogger() });
    expect(decode((await r.handle(q()))!).rcode).toBe(Rcode.SERVFAIL);
    const r2 = createResolver({ plugins: [plugin('short', (ctx) => void (ctx.response = Buffer.alloc(5)))], logger: silentLogger(), onUnanswered: 'refused' });
    expect(decode((await r2.handle(q()))!).rcode).toBe(Rcode.REFUSED);
  });
});

test('handle() fills in client defaults and derives the family from the address', async () => {
  const seen: Array<[string, number, string]> = [];
  const r = createResolver({
    plugins: [plugin('spy', (ctx) => void seen.push([ctx.client.address, ctx.client.family, ctx.client.transport]))],
    logger: silentLogger(),
  });
  await r.handle(q());
  await r.handle(q(), { address: '2001:db8::1' });
  await r.handle(q(), { address: '192.0.2.1', transport: 'tcp' });
  expect(seen).toEqual([
    ['127.0.0.1', 4, 'internal'],
    ['2001:db8::1', 6, 'internal'],
    ['192.0.2.1', 4, 'tcp'],
  ]);
});

test('stop() during start() waits for it, then tears down once', async () => {
  const events: string[] = [];
  let release!: () => void;
  const r = createResolver({
    plugins: [
      {
        name: 'slow-start',
        start: (c) => {
          c.get<Lifecycle>(LIFECYCLE).onStop(() => void events.push('hook'));
          return new Promise<void>((x) => (release = x));
        },
        stop: () => void events.push('stop'),
      },
    ],
    listen: [{ transport: 'udp', port: 0 }],
    logger: silentLogger(),
  });
  const started = r.start();
  await Promise.resolve();
  const stopped = r.stop();
  release();
  await started;
  await stopped;
  expect(events).toEqual(['hook', 'stop']);
  expect(r.addresses()).toEqual([]);
  await expect(r.start()).rejects.toThrow(/cannot start/);
});
