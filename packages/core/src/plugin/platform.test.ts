import 'reflect-metadata';
import { inject, injectable } from 'inversify';
import { describe, expect, test } from 'vitest';
import { ConfigError, createError, errorCodes, HeimdallError } from '../errors.js';
import { decode, encode, RecordType } from '../packet/index.js';
import { createResolver } from '../resolver.js';
import {
  ADMIN_ACTIONS,
  type AdminActions,
  PLUGIN,
  PLUGIN_LOGGER,
  PLUGIN_METRICS,
  PLUGIN_OPTIONS,
  type PluginInfo,
  UPSTREAM,
  type Upstream,
} from '../tokens.js';
import { silentLogger } from '../util/logger.js';
import { definePlugin } from './define.js';
import type { PluginMetrics } from './metrics.js';
import { options, parseOptions, Type } from './options.js';

const q = (name: string, type = RecordType.A, id = 7) => encode({ id, rd: true, questions: [{ name, type }] });

describe('parseOptions: one validator, one vocabulary', () => {
  const schema = options({
    ttl: Type.Integer({ minimum: 0, maximum: 86_400, default: 300 }),
    ratio: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 1 }),
    mode: Type.Union([Type.Literal('strict'), Type.Literal('loose')], { default: 'strict' }),
    lists: Type.Array(options({ source: Type.String({ minLength: 1 }) }), { default: [] }),
    prefetch: Type.Union([Type.Boolean(), options({ amount: Type.Integer({ minimum: 1, default: 1 }) })], { default: false }),
  });

  test('fills defaults without touching the input', () => {
    const input = { prefetch: {} };
    expect(parseOptions(schema, input, 'x')).toEqual({ ttl: 300, ratio: 1, mode: 'strict', lists: [], prefetch: { amount: 1 } });
    expect(input).toEqual({ prefetch: {} });
    expect(parseOptions(schema, undefined, 'x').ttl).toBe(300);
  });

  test.each([
    [{ ttl: -1 }, 'geo.ttl: must be an integer in 0..86400'],
    [{ ttl: 1.5 }, 'geo.ttl: must be an integer in 0..86400'],
    [{ ttl: '5' }, 'geo.ttl: must be an integer in 0..86400'],
    [{ ratio: 0 }, 'geo.ratio: must be a number in 0..1 (bounds excluded)'],
    [{ mode: 'lax' }, 'geo.mode: must be "strict" or "loose"'],
    [{ lists: [{ source: 'a' }, { source: '' }] }, 'geo.lists[1].source: must not be empty'],
    [{ lists: [{ source: 'a', typo: 1 }] }, 'geo.lists[0].typo: unknown option (known: source)'],
    [{ tll: 5 }, 'geo.tll: unknown option (known: ttl, ratio, mode, lists, prefetch)'],
    [{ prefetch: { amount: 0 } }, 'geo.prefetch.amount: must be an integer of at least 1'],
    [{ prefetch: 'yes' }, 'geo.prefetch: must be true or false or an object'],
  ])('%j → %s', (input, message) => {
    let error: unknown;
    try {
      parseOptions(schema, input, 'geo');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe(message);
    expect((error as ConfigError).code).toBe('CONFIG');
  });

  test('a wrong-typed value is reported, never replaced by the default', () => {
    const s = options({ rules: Type.Array(Type.String(), { default: [] }), admin: options({ port: Type.Integer({ default: 1 }) }, { default: {} }) });
    expect(() => parseOptions(s, { rules: {} }, 'x')).toThrow('x.rules: must be an array');
    expect(() => parseOptions(s, { admin: [] }, 'x')).toThrow('x.admin: must be an object');
    expect(parseOptions(s, {}, 'x')).toEqual({ rules: [], admin: { port: 1 } });
  });

  test('defaults are filled inside record values', () => {
    const s = options({
      groups: Type.Record(Type.String(), options({ block: Type.Array(Type.String(), { default: [] }), ttl: Type.Integer({ default: 5 }) }), { default: {} }),
    });
    expect(parseOptions(s, { groups: { ads: {}, kids: { ttl: 1 } } }, 'b')).toEqual({ groups: { ads: { block: [], ttl: 5 }, kids: { block: [], ttl: 1 } } });
    expect(() => parseOptions(s, { groups: { ads: { ttl: 'x' } } }, 'b')).toThrow('b.groups.ads.ttl: must be an integer');
  });

  test('a union of object shapes reports the error of the shape the value is closest to', () => {
    const s = options({ rule: Type.Union([options({ exact: Type.String(), to: Type.String() }), options({ suffix: Type.String(), to: Type.String() })]) });
    expect(() => parseOptions(s, { rule: { suffix: 'a' } }, 'x')).toThrow('x.rule.to: is required');
    expect(() => parseOptions(s, { rule: { exact: 'a', to: 1 } }, 'x')).toThrow('x.rule.to: must be a string');
  });

  test('a schema may carry its own errorMessage', () => {
    const s = options({ name: Type.String({ pattern: '^[a-z]+$', errorMessage: 'must be lower-case letters' }) });
    expect(() => parseOptions(s, { name: 'A' }, 'p')).toThrow('p.name: must be lower-case letters');
    expect(() => parseOptions(s, {}, 'p')).toThrow('p.name: is required');
  });
});

describe('definePlugin', () => {
  const echo = definePlugin({
    name: 'echo',
    options: options({ ttl: Type.Integer({ minimum: 0, default: 60 }) }),
    setup: (o) => ({ middleware: () => (ctx) => ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: o.ttl, data: '192.0.2.1' }]) }),
  });

  test('validates at the factory call, names the field, carries its schema', () => {
    expect(echo.pluginName).toBe('echo');
    expect((echo.schema as unknown as { properties: object }).properties).toHaveProperty('ttl');
    expect(() => echo({ ttl: -1 })).toThrow('echo.ttl: must be an integer of at least 0');
    expect(() => echo({ ttl: -1 }, { path: 'plugins[3].options' })).toThrow('plugins[3].options.ttl:');
    expect(echo().options).toEqual({ ttl: 60 });
    expect(echo({}, { name: 'echo-2' })).toMatchObject({ name: 'echo-2', kind: 'echo' });
  });

  test('a resolver-wide metrics prefix applies to the default instance only', () => {
    const wide = definePlugin({ name: 'wide', metricsPrefix: 'heimdall_', setup: () => ({}) });
    const r = createResolver({ plugins: [wide(), wide({}, { name: 'wide-2' })], logger: silentLogger() });
    expect(r.scope('wide').get<PluginInfo>(PLUGIN).metricsPrefix).toBe('heimdall_');
    expect(r.scope('wide-2').get<PluginInfo>(PLUGIN).metricsPrefix).toBe('heimdall_wide_2_');
    expect(() => {
      definePlugin({ name: 'bad', metricsPrefix: 'a-b', setup: () => ({}) });
    }).toThrow(/metricsPrefix/);
  });

  test('two instances of one plugin coexist in one resolver', async () => {
    const r = createResolver({ plugins: [echo({ ttl: 1 }), echo({ ttl: 2 }, { name: 'echo-2' })], logger: silentLogger() });
    expect(r.chain).toEqual(['echo', 'echo-2']);
    expect(decode((await r.handle(q('a.test')))!).answers[0]!.ttl).toBe(1);
    expect(() => createResolver({ plugins: [echo(), echo()] })).toThrow(/duplicate plugin name 'echo'/);
  });
});

describe('plugin scopes: DI that does the wiring', () => {
  @injectable()
  class Greeter {
    readonly built: number;
    static count = 0;
    constructor(
      @inject(PLUGIN) readonly info: PluginInfo,
      @inject(PLUGIN_OPTIONS) readonly opts: { greeting: string },
      @inject(PLUGIN_LOGGER) readonly log: { bindings(): Record<string, unknown> },
      @inject(PLUGIN_METRICS) metrics: PluginMetrics,
    ) {
      this.built = ++Greeter.count;
      metrics.counter({ name: 'greetings_total', help: 'greetings' });
    }
  }

  @injectable()
  class GreeterAdmin implements AdminActions {
    readonly plugin: string;
    readonly actions;
    constructor(@inject(PLUGIN) info: PluginInfo, @inject(Greeter) greeter: Greeter) {
      this.plugin = info.name;
      this.actions = [{ name: 'hello', method: 'GET' as const, description: 'says hello', combine: 'first' as const, run: () => greeter.opts.greeting }];
    }
  }

  let middlewareCalls = 0;
  const greeter = definePlugin({
    name: 'greeter',
    options: options({ greeting: Type.String({ default: 'hi' }) }),
    setup: () => ({
      module: new (require_ContainerModule())(({ bind }) => {
        bind(Greeter).toSelf();
        bind(GreeterAdmin).toSelf();
      }),
      provides: [{ token: ADMIN_ACTIONS, use: GreeterAdmin }],
      middleware(scope) {
        middlewareCalls++;
        const g = scope.get(Greeter);
        return (ctx) => ctx.answer([{ name: ctx.query.qname, type: RecordType.TXT, data: [g.opts.greeting] }]);
      },
    }),
  });

  test('each plugin gets its own name, options, logger and metrics prefix; middleware is built once', async () => {
    middlewareCalls = 0;
    const r = createResolver({ plugins: [greeter({ greeting: 'hej' }), greeter({}, { name: 'greeter-lan' })], logger: silentLogger() });
    expect(middlewareCalls).toBe(2);
    const a = r.scope('greeter').get(Greeter);
    const b = r.scope('greeter-lan').get(Greeter);
    expect(a).not.toBe(b);
    expect(r.scope('greeter').get(Greeter)).toBe(a); // singleton per scope
    expect([a.info.name, a.opts.greeting, a.log.bindings().plugin]).toEqual(['greeter', 'hej', 'greeter']);
    expect([b.info.metricsPrefix, b.opts.greeting, b.log.bindings().plugin]).toEqual(['heimdall_greeter_lan_', 'hi', 'greeter-lan']);
    const metrics = await (r.container.get(Symbol.for('heimdall.metrics')) as { metrics(): Promise<string> }).metrics();
    expect(metrics).toContain('heimdall_greeter_greetings_total');
    expect(metrics).toContain('heimdall_greeter_lan_greetings_total');
    expect(r.middleware('greeter')).toBeTypeOf('function');
    expect(middlewareCalls).toBe(2);
    expect(() => r.scope('nope')).toThrow(/no plugin named 'nope'/);
  });

  test('counterFields and gaugeOf copy plain numbers into Prometheus at scrape time', async () => {
    const { PluginMetrics } = await import('./metrics.js');
    const { Registry } = await import('prom-client');
    const registry = new Registry();
    const m = new PluginMetrics(registry, 'heimdall_x_');
    const stats = { hits: 0, misses: 0, label: 'not a number' };
    m.counterFields(stats, [
      ['hits_total', 'hits', 'hits'],
      ['misses_total', 'misses', 'misses'],
    ]);
    let size = 7;
    m.gaugeOf('entries', 'entries', () => size);
    stats.hits += 3;
    stats.misses++;
    size = 9;
    const text = await registry.metrics();
    expect(text).toContain('heimdall_x_hits_total 3');
    expect(text).toContain('heimdall_x_misses_total 1');
    expect(text).toContain('heimdall_x_entries 9');
    stats.hits++;
    expect(await registry.metrics()).toContain('heimdall_x_hits_total 4');
  });

  test('contributions are multi-injected in chain order', async () => {
    const r = createResolver({ plugins: [greeter({ greeting: 'hej' }), greeter({}, { name: 'greeter-lan' })], logger: silentLogger() });
    const groups = r.container.getAll<AdminActions>(ADMIN_ACTIONS);
    expect(groups.map((g) => g.plugin)).toEqual(['greeter', 'greeter-lan']);
    expect(await groups[1]!.actions[0]!.run({})).toBe('hi');
  });

  test('a single token provided twice: the first in chain order wins', async () => {
    const fake = (tag: string) =>
      definePlugin({
        name: `up-${tag}`,
        setup: () => ({
          module: new (require_ContainerModule())(({ bind }) => {
            bind('client').toConstantValue({ resolve: async () => Buffer.from(tag) } satisfies Upstream);
          }),
          provides: [{ token: UPSTREAM, use: 'client' }],
        }),
      })();
    const r = createResolver({ plugins: [fake('a'), fake('b')], logger: silentLogger() });
    expect((await r.container.get<Upstream>(UPSTREAM).resolve(Buffer.alloc(0))).toString()).toBe('a');
  });

  test('a provider of higher priority wins over chain order', async () => {
    const fake = (tag: string, priority?: number) =>
      definePlugin({
        name: `state-${tag}`,
        setup: () => ({
          module: new (require_ContainerModule())(({ bind }) => {
            bind('client').toConstantValue({ resolve: async () => Buffer.from(tag) } satisfies Upstream);
          }),
          provides: [{ token: UPSTREAM, use: 'client', ...(priority === undefined ? {} : { priority }) }],
        }),
      })();
    const r = createResolver({ plugins: [fake('disk'), fake('redis', 10), fake('other')], logger: silentLogger() });
    expect((await r.container.get<Upstream>(UPSTREAM).resolve(Buffer.alloc(0))).toString()).toBe('redis');
  });
});

describe('query rewriting', () => {
  const rewriteLan = definePlugin({
    name: 'lan',
    setup: () => ({
      middleware: () => (ctx, next) => {
        const name = ctx.query.qname;
        if (name.toLowerCase().endsWith('.lan')) ctx.rewrite({ name: `${name.slice(0, -4)}.home.arpa` });
        return next();
      },
    }),
  });
  let seen = '';
  const answer = definePlugin({
    name: 'answer',
    setup: () => ({
      middleware: () => (ctx) => {
        seen = `${ctx.query.qname}/${ctx.query.qtype}`;
        if (ctx.query.qname === 'fail.home.arpa') throw new Error('boom');
        ctx.reply({
          answers: [
            { name: ctx.query.qname, type: RecordType.CNAME, ttl: 60, data: 'target.home.arpa' },
            { name: 'target.home.arpa', type: RecordType.A, ttl: 60, data: '192.0.2.7' },
          ],
        });
      },
    }),
  });

  test('the chain sees the new question; the client gets its own, case kept, owner names restored', async () => {
    const r = createResolver({ plugins: [rewriteLan(), answer()], logger: silentLogger() });
    const res = decode((await r.handle(q('NAS.Lan')))!);
    expect(seen).toBe('NAS.home.arpa/1');
    expect(res.id).toBe(7);
    expect(res.questions).toEqual([{ name: 'NAS.Lan', type: RecordType.A, class: 1 }]);
    expect(res.answers.map((a) => a.name)).toEqual(['NAS.Lan', 'target.home.arpa']);
    expect(res.answers[0]!.data).toBe('target.home.arpa');
  });

  test('type rewrite, and SERVFAIL after a failure still echoes the client question', async () => {
    const toAaaa = definePlugin({
      name: 'aaaa',
      setup: () => ({
        middleware: () => (ctx, next) => {
          ctx.rewrite({ type: RecordType.AAAA });
          return next();
        },
      }),
    });
    const r = createResolver({ plugins: [toAaaa(), rewriteLan(), answer()], logger: silentLogger() });
    const ok = decode((await r.handle(q('x.lan')))!);
    expect(seen).toBe('x.home.arpa/28');
    expect(ok.questions[0]).toMatchObject({ name: 'x.lan', type: RecordType.A });
    const failed = decode((await r.handle(q('fail.lan')))!);
    expect(failed.rcode).toBe(2);
    expect(failed.questions[0]).toMatchObject({ name: 'fail.lan', type: RecordType.A });
  });

  test('an unchanged question is not rewritten; a bad name throws', async () => {
    const r = createResolver({
      plugins: [
        definePlugin({
          name: 'same',
          setup: () => ({
            middleware: () => (ctx, next) => {
              ctx.rewrite({ name: ctx.query.qname });
              return next();
            },
          }),
        })(),
        answer(),
      ],
      logger: silentLogger(),
    });
    await r.handle(q('a.test'));
    expect(seen).toBe('a.test/1');
    const bad = createResolver({
      plugins: [definePlugin({ name: 'bad', setup: () => ({ middleware: () => (ctx) => ctx.rewrite({ name: `${'x'.repeat(64)}.test` }) }) })()],
      logger: silentLogger(),
    });
    expect(decode((await bad.handle(q('a.test')))!).rcode).toBe(2);
  });
});

describe('error registry', () => {
  test('codes are stable, registered once, formatted, with a status for the admin API', () => {
    const GeoError = createError<[string]>('TEST_GEO_DB', "cannot open database '%s'", 503);
    const e = new GeoError('/x.mmdb');
    expect(e).toBeInstanceOf(HeimdallError);
    expect([e.code, e.message, e.statusCode]).toEqual(['TEST_GEO_DB', "cannot open database '/x.mmdb'", 503]);
    expect(errorCodes().some((c) => c.code === 'TEST_GEO_DB')).toBe(true);
    expect(() => createError('TEST_GEO_DB', 'another meaning')).toThrow(/already registered/);
    expect(() => createError('lower', 'x')).toThrow(/UPPER_SNAKE_CASE/);
    const cause = new Error('ENOENT');
    expect(new GeoError('/y', { cause }).cause).toBe(cause);
    expect(new ConfigError('a.b', 'must be x').statusCode).toBe(400);
  });
});

import { ContainerModule } from 'inversify';
function require_ContainerModule() {
  return ContainerModule;
}
