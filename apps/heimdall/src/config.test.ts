import { resolve } from 'node:path';
import { ConfigError } from '@heimdall/core';
import { resolverSettingsSchema } from '@heimdall/core/pipeline';
import { tcpLimits, tcpSettingsSchema, UdpServer, udpSettingsSchema } from '@heimdall/core/transport';
import { describe, expect, it } from 'vitest';
import { parseCli } from './args.js';
import {
  appConfigSchema,
  applyOverrides,
  defaultConfig,
  type HeimdallConfig,
  parseHostPort,
  resolveConfig,
  resolvePluginPaths,
  resolverSettings,
  validateConfig,
} from './config.js';

/** The message of the ConfigError `fn` throws. */
function problem(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('validates the embedded default and fills every default', () => {
    const c = resolveConfig(undefined);
    expect(c.listen).toEqual(['127.0.0.1:5353']);
    expect(c.transports).toEqual(['udp', 'tcp']);
    expect(c.plugins.map((p) => p.use)).toEqual(['metrics', 'stats', 'special-use', 'cache', 'dedup', 'upstream']);
    expect(c.plugins.every((p) => p.enabled === true)).toBe(true);
    expect(c.admin).toMatchObject({ enabled: true, listen: '127.0.0.1:8053', collectDefaultMetrics: true });
    // core's resolver settings, at the top level with their defaults
    expect([c.queryTimeoutMs, c.drainTimeoutMs, c.ednsPayloadSize, c.recursionAvailable, c.onUnanswered]).toEqual([5000, 5000, 1232, true, 'servfail']);
    expect(c.tcp).toMatchObject({
      idleTimeoutMs: 10_000,
      frameTimeoutMs: 2000,
      maxConnections: 1000,
      maxConnectionsPerClient: 100,
      maxMessageSize: 65_535,
      maxInFlightPerConnection: 100,
    });
    expect(c.udp).toEqual({ maxUdpPayload: 1232, native: 'auto' });
    expect(c.workers).toBe(1);
    expect(c.logLevel).toBe('info');
  });

  it("passes every one of core's resolver settings through", () => {
    const settings = resolverSettings(resolveConfig(undefined));
    expect(Object.keys(settings)).toEqual(Object.keys(resolverSettingsSchema.properties));
    expect(settings.queryTimeoutMs).toBe(5000);
  });

  it('does not modify its input', () => {
    const input: HeimdallConfig = { listen: ['127.0.0.1:53'], plugins: [{ use: 'cache' }] };
    const copy = structuredClone(input);
    validateConfig(input);
    expect(input).toEqual(copy);
  });

  it.each([
    [{ lisen: ['127.0.0.1:53'] }, /^lisen: unknown option \(known: \$schema, listen, transports, udp, tcp, queryTimeoutMs/],
    [{ queryTimeoutMs: 0 }, 'queryTimeoutMs: must be an integer in 1..120000'],
    [{ drainTimeoutMs: 1.5 }, 'drainTimeoutMs: must be an integer in 0..600000'],
    [{ onUnanswered: 'nxdomain' }, 'onUnanswered: must be "servfail" or "refused"'],
    [{ recursionAvailable: 'yes' }, 'recursionAvailable: must be true or false'],
    [{ listen: '127.0.0.1:53' }, 'listen: must be an array'],
    [{ listen: [] }, 'listen: must not be empty'],
    [{ listen: ['nowhere'] }, 'listen[0]: must be ADDRESS:PORT (IPv6 in brackets: [::1]:5353)'],
    [{ transports: ['udp', 'udp'] }, 'transports: must not repeat an item'],
    [{ transports: ['quic'] }, 'transports[0]: must be "udp" or "tcp"'],
    [{ workers: 'lots' }, 'workers: must be an integer or "auto"'],
    [{ workers: 0 }, 'workers: must be an integer in 1..256'],
    [{ logLevel: 'loud' }, 'logLevel: must be "fatal" or "error" or "warn" or "info" or "debug" or "trace" or "silent"'],
    [{ tcp: { idleTimeoutMs: 0 } }, 'tcp.idleTimeoutMs: must be an integer in 1..3600000'],
    [{ tcp: { idleTimeout: 5 } }, /^tcp\.idleTimeout: unknown option \(known: idleTimeoutMs, /],
    [{ udp: { recvBufferSize: 512 } }, 'udp.recvBufferSize: must be an integer in 1024..1073741824'],
    [{ admin: { listen: 5 } }, 'admin.listen: must be ADDRESS:PORT (IPv6 in brackets: [::1]:5353)'],
    [{ admin: [] }, 'admin: must be an object'],
    [{ listen: {} }, 'listen: must be an array'],
    [{ plugins: { use: 'cache' } }, 'plugins: must be an array'],
    [{ admin: { token: 'short' } }, 'admin.token: must be at least 8 characters long'],
    [{ plugins: {} }, 'plugins: must be an array'],
    [{ plugins: [{ options: {} }] }, 'plugins[0].use: is required'],
    [{ plugins: [{ use: 'cache', option: {} }] }, 'plugins[0].option: unknown option (known: use, name, enabled, options)'],
    [{ plugins: [{ use: 'cache', options: [] }] }, 'plugins[0].options: must be an object'],
    [{ plugins: [{ use: 'cache' }, { use: 'cache', name: 'cache two' }] }, 'plugins[1].name: must be letters, digits, ".", "_" or "-" (optionally @scope/…)'],
    [[], 'the configuration must be an object (JSON or YAML mapping)'],
  ])('%j → %s', (config, message) => {
    const got = problem(() => validateConfig(config));
    if (typeof message === 'string') expect(got).toBe(message);
    else expect(got).toMatch(message);
  });

  it('checks listen addresses beyond their form', () => {
    expect(problem(() => resolveConfig(undefined, { listen: ['127.0.0.1:99999'] }))).toBe('listen[0]: port must be an integer in 0..65535, got 99999');
    expect(problem(() => resolveConfig(undefined, { admin: '[::1]:70000' }))).toBe('admin.listen: port must be an integer in 0..65535, got 70000');
    expect(resolveConfig(undefined, { admin: 'off' }).admin.enabled).toBe(false);
  });

  it("accepts exactly the TCP and UDP bounds core's listeners accept", () => {
    expect(Object.keys(appConfigSchema.properties.tcp.properties)).toEqual(Object.keys(tcpSettingsSchema.properties));
    expect(Object.keys(appConfigSchema.properties.udp.properties)).toEqual(Object.keys(udpSettingsSchema.properties));
    for (const [field, s] of Object.entries(tcpSettingsSchema.properties)) {
      const { minimum, maximum } = s as { minimum: number; maximum: number };
      for (const v of [minimum, maximum]) {
        expect(() => validateConfig({ tcp: { [field]: v } })).not.toThrow();
        expect(() => tcpLimits({ transport: 'tcp', [field]: v })).not.toThrow();
      }
      for (const v of [minimum - 1, maximum + 1]) {
        expect(() => validateConfig({ tcp: { [field]: v } })).toThrow(`tcp.${field}`);
        expect(() => tcpLimits({ transport: 'tcp', [field]: v })).toThrow(field);
      }
    }
    const udp = (options: Record<string, number>) => new UdpServer({ transport: 'udp', port: 0, ...options }, {} as never);
    for (const [field, s] of Object.entries(udpSettingsSchema.properties)) {
      const { minimum, maximum } = s as { minimum: number; maximum: number };
      for (const v of [minimum, maximum]) {
        expect(() => validateConfig({ udp: { [field]: v } })).not.toThrow();
        expect(() => udp({ [field]: v })).not.toThrow();
      }
      for (const v of [minimum - 1, maximum + 1]) {
        expect(() => validateConfig({ udp: { [field]: v } })).toThrow(`udp.${field}`);
        expect(() => udp({ [field]: v })).toThrow(field);
      }
    }
  });

  it('applies flags over the config', () => {
    const c = applyOverrides(defaultConfig(), { listen: ['[::1]:53'], upstreams: ['9.9.9.9'], blocklists: ['a.txt'], admin: 'off', workers: 'auto' });
    expect(c.listen).toEqual(['[::1]:53']);
    expect(c.admin?.enabled).toBe(false);
    expect(c.workers).toBe('auto');
    expect(c.plugins!.map((p) => p.use)).toEqual(['metrics', 'stats', 'special-use', 'blocking', 'cache', 'dedup', 'upstream']);
    expect(c.plugins![6]!.options).toEqual({ servers: ['9.9.9.9'] });
    const again = applyOverrides(c, { blocklists: ['b.txt'] });
    expect(again.plugins![3]!.options).toEqual({ groups: { default: { block: [resolve('b.txt')] } } });
    expect(applyOverrides(defaultConfig(), { blocklists: ['https://x.example/l.txt'] }).plugins![3]!.options).toEqual({
      groups: { default: { block: ['https://x.example/l.txt'] } },
    });
  });

  it('resolves relative paths in plugin options from the config directory', () => {
    const out = resolvePluginPaths(
      [
        {
          use: 'blocking',
          options: { cacheDir: 'cache', groups: { a: { block: ['l.txt', '/abs.txt', 'http://h/x', { source: 'o.txt', exact: true }], allow: ['ok.txt'] } } },
        },
        { use: 'query-log', options: { output: 'q.log' } },
        { use: 'query-log', options: { output: 'stdout' } },
        { use: 'other', options: { file: 'x' } },
      ],
      '/etc/heimdall',
    );
    expect(out[0]!.options).toEqual({
      cacheDir: '/etc/heimdall/cache',
      groups: {
        a: { block: ['/etc/heimdall/l.txt', '/abs.txt', 'http://h/x', { source: '/etc/heimdall/o.txt', exact: true }], allow: ['/etc/heimdall/ok.txt'] },
      },
    });
    expect(out[1]!.options).toEqual({ output: '/etc/heimdall/q.log' });
    expect(out[2]!.options).toEqual({ output: 'stdout' });
    expect(out[3]!.options).toEqual({ file: 'x' });
    expect(defaultConfig().plugins!.some((p) => p.use === 'blocking')).toBe(false);
  });

  it('parses addresses', () => {
    expect(parseHostPort('[::1]:5353', 'x')).toEqual({ host: '::1', port: 5353 });
    expect(parseHostPort('localhost:53', 'x')).toEqual({ host: '127.0.0.1', port: 53 });
    expect(() => parseHostPort('::1:53', 'listen[1]')).toThrow('listen[1]: must be ADDRESS:PORT');
    expect(() => parseHostPort('1.2.3.4:70000', 'admin.listen')).toThrow('admin.listen: port must be an integer in 0..65535');
  });

  it('parses flags', () => {
    const a = parseCli(['-l', '127.0.0.1:1', '--listen', '127.0.0.1:2', '-u', '1.1.1.1', '--workers', '3', '--log-level', 'debug']);
    expect(a.overrides).toEqual({ listen: ['127.0.0.1:1', '127.0.0.1:2'], upstreams: ['1.1.1.1'], workers: 3, logLevel: 'debug' });
    expect(() => parseCli(['--workers', '0'])).toThrow('--workers');
    expect(() => parseCli(['stray'])).toThrow(/positional|Unexpected argument/i);
  });

  it('--redis (else HEIMDALL_REDIS_URL, else REDIS_URL) adds the redis plugin after persistence, else after the cache', () => {
    expect(parseCli(['--redis', 'redis://r1'], { REDIS_URL: 'redis://env' }).overrides.redisUrl).toBe('redis://r1');
    expect(parseCli([], { REDIS_URL: 'redis://env', HEIMDALL_REDIS_URL: 'redis://h' }).overrides.redisUrl).toBe('redis://h');
    expect(parseCli([], { REDIS_URL: 'redis://env' }).overrides.redisUrl).toBe('redis://env');
    expect(parseCli([]).overrides.redisUrl).toBeUndefined();
    expect(() => parseCli(['--redis', ''])).toThrow('--redis');
    const uses = (c: HeimdallConfig): string[] => c.plugins!.map((p) => p.use);
    const plain = uses(applyOverrides(defaultConfig(), { redisUrl: 'redis://r' }));
    expect(plain.indexOf('redis')).toBe(plain.indexOf('cache') + 1);
    const both = applyOverrides(defaultConfig(), { cacheDir: '/var/cache/heimdall', redisUrl: 'redis://r' });
    expect(uses(both).indexOf('redis')).toBe(uses(both).indexOf('persistence') + 1);
    expect(both.plugins!.find((p) => p.use === 'redis')!.options).toEqual({ url: 'redis://r' });
    expect(validateConfig(both).plugins.some((p) => p.use === 'redis')).toBe(true);
  });
});
