import { createResolver, type HeimdallPlugin, METRICS, RecordType, type Registry } from '@heimdall/core';
import { query } from '@heimdall/testing';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCli } from './args.js';
import { type AppConfigError, applyOverrides, defaultConfig, parseHostPort, pointerToPath, resolveConfig, resolvePluginPaths, validateConfig } from './config.js';
import { metrics } from './plugins/metrics.js';
import { buildPlugins } from './plugins/registry.js';

describe('config', () => {
  it('validates the embedded default and resolves defaults', () => {
    validateConfig(defaultConfig());
    const c = resolveConfig(undefined);
    expect(c.listen).toEqual(['127.0.0.1:5353']);
    expect(c.transports).toEqual(['udp', 'tcp']);
    expect(c.plugins.map((p) => p.use)).toEqual(['metrics', 'special-use', 'cache', 'dedup', 'upstream']);
    expect(c.admin).toMatchObject({ enabled: true, listen: '127.0.0.1:8053' });
  });

  it('names the field and the reason', () => {
    const fails = (config: unknown): AppConfigError => {
      try {
        validateConfig(config);
      } catch (e) {
        return e as AppConfigError;
      }
      throw new Error('expected a failure');
    };
    expect(fails({ plugins: [{ use: 'x', option: {} }] }).message).toBe('plugins[0].option: unknown field');
    expect(fails({ queryTimeoutMs: 0 }).message).toBe('queryTimeoutMs: must be >= 1');
    expect(fails({ admin: { listen: 5 } }).path).toBe('admin.listen');
    expect(fails({ workers: 'lots' }).message).toBe('workers: must be an integer from 1 to 256 or "auto"');
    const many = fails({ logLevel: 'x', tcp: { idleTimeoutMs: 1 } });
    expect(many.message).toMatch(/logLevel: must be one of/);
    expect(many.message).toMatch(/tcp\.idleTimeoutMs: must be >= 100/);
  });

  it('applies flags over the config', () => {
    const c = applyOverrides(defaultConfig(), { listen: ['[::1]:53'], upstreams: ['9.9.9.9'], blocklists: ['a.txt'], admin: 'off', workers: 'auto' });
    expect(c.listen).toEqual(['[::1]:53']);
    expect(c.admin?.enabled).toBe(false);
    expect(c.workers).toBe('auto');
    expect(c.plugins!.map((p) => p.use)).toEqual(['metrics', 'special-use', 'blocking', 'cache', 'dedup', 'upstream']);
    expect(c.plugins![5]!.options).toEqual({ servers: ['9.9.9.9'] });
    const again = applyOverrides(c, { blocklists: ['b.txt'] });
    expect(again.plugins![2]!.options).toEqual({ groups: { default: { block: [resolve('b.txt')] } } });
    expect(applyOverrides(defaultConfig(), { blocklists: ['https://x.example/l.txt'] }).plugins![2]!.options).toEqual({ groups: { default: { block: ['https://x.example/l.txt'] } } });
  });

  it('resolves relative paths in plugin options from the config directory', () => {
    const out = resolvePluginPaths(
      [
        { use: 'blocking', options: { cacheDir: 'cache', groups: { a: { block: ['l.txt', '/abs.txt', 'http://h/x', { source: 'o.txt', exact: true }], allow: ['ok.txt'] } } } },
        { use: 'query-log', options: { output: 'q.log' } },
        { use: 'query-log', options: { output: 'stdout' } },
        { use: 'other', options: { file: 'x' } },
      ],
      '/etc/heimdall',
    );
    expect(out[0]!.options).toEqual({
      cacheDir: '/etc/heimdall/cache',
      groups: { a: { block: ['/etc/heimdall/l.txt', '/abs.txt', 'http://h/x', { source: '/etc/heimdall/o.txt', exact: true }], allow: ['/etc/heimdall/ok.txt'] } },
    });
    expect(out[1]!.options).toEqual({ output: '/etc/heimdall/q.log' });
    expect(out[2]!.options).toEqual({ output: 'stdout' });
    expect(out[3]!.options).toEqual({ file: 'x' });
    expect(defaultConfig().plugins!.some((p) => p.use === 'blocking')).toBe(false);
  });

  it('parses addresses and JSON pointers', () => {
    expect(parseHostPort('[::1]:5353', 'x')).toEqual({ host: '::1', port: 5353 });
    expect(parseHostPort('localhost:53', 'x')).toEqual({ host: '127.0.0.1', port: 53 });
    expect(() => parseHostPort('::1:53', 'listen[1]')).toThrow('listen[1]: must be ADDRESS:PORT');
    expect(() => parseHostPort('1.2.3.4:70000', 'admin.listen')).toThrow('admin.listen: port must be 0..65535');
    expect(pointerToPath('/plugins/2/options/a~1b')).toBe('plugins[2].options.a/b');
  });

  it('parses flags', () => {
    const a = parseCli(['-l', '127.0.0.1:1', '--listen', '127.0.0.1:2', '-u', '1.1.1.1', '--workers', '3', '--log-level', 'debug']);
    expect(a.overrides).toEqual({ listen: ['127.0.0.1:1', '127.0.0.1:2'], upstreams: ['1.1.1.1'], workers: 3, logLevel: 'debug' });
    expect(() => parseCli(['--workers', '0'])).toThrow('--workers');
    expect(() => parseCli(['stray'])).toThrow(/positional|Unexpected argument/i);
  });

  it('reports plugin option errors at the config path', async () => {
    await expect(buildPlugins([{ use: 'special-use', options: { ttl: -1 } }], process.cwd())).rejects.toThrow('plugins[0].options.ttl: must be an integer');
    await expect(buildPlugins([{ use: 'metrics' }, { use: './nope.js' }], process.cwd())).rejects.toThrow(/plugins\[1\]\.use: cannot find plugin/);
  });
});

describe('metrics plugin', () => {
  it('counts by qtype, rcode and transport and times queries', async () => {
    const answerer: HeimdallPlugin = {
      name: 'answer',
      middleware: () => (ctx) => {
        if (ctx.query.qname === 'nx.example') ctx.nxdomain();
        else if (ctx.query.qname === 'none.example') return;
        else ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 5, data: '192.0.2.1' }]);
      },
    };
    const r = createResolver({ plugins: [metrics(), answerer] });
    await r.handle(query('a.example', 'A'), { transport: 'udp' });
    await r.handle(query('a.example', 'A'), { transport: 'udp' });
    await r.handle(query('nx.example', 'AAAA'), { transport: 'tcp' });
    await r.handle(query('none.example', 'MX'), { transport: 'udp' });
    const text = await r.container.get<Registry>(METRICS).metrics();
    expect(text).toContain('heimdall_requests_total{qtype="A",rcode="NOERROR",transport="udp"} 2');
    expect(text).toContain('heimdall_requests_total{qtype="AAAA",rcode="NXDOMAIN",transport="tcp"} 1');
    expect(text).toContain('heimdall_requests_total{qtype="MX",rcode="unanswered",transport="udp"} 1');
    expect(text).toMatch(/heimdall_request_duration_seconds_count\{transport="udp"\} 3/);
    expect(text).toMatch(/heimdall_request_duration_seconds_bucket\{le="\+Inf",transport="tcp"\} 1/);
    await r.stop();
  });

  it('rejects bad buckets', () => {
    expect(() => metrics({ buckets: [0.1, 0.05] })).toThrow('metrics.buckets[1]');
    expect(() => metrics({ bogus: 1 } as never)).toThrow('metrics.bogus: unknown option');
  });
});
