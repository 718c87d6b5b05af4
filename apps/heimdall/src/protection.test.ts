import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ConfigError, createResolver, EdeCode, type Resolver } from '@heimdall/core';
import { decodeResponse, expectEde, query, selfSignedCertificate } from '@heimdall/testing';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { addDefaultAcl, startApp } from './app.js';
import { parseCli } from './args.js';
import { applyOverrides, defaultConfig, resolveConfig } from './config.js';
import { buildPlugins } from './plugins/registry.js';

// Not an open resolver by default; --open-resolver and --rate-limit.

let resolver: Resolver | undefined;
afterEach(async () => {
  await resolver?.stop();
  resolver = undefined;
});

/** The app's chain for `entries` (+ the default acl unless `openResolver`), as a resolver; logs collected. */
async function chain(entries: Parameters<typeof buildPlugins>[0], openResolver = false, announce = true) {
  const plugins = await buildPlugins(entries, process.cwd());
  await addDefaultAcl(plugins, { openResolver }, announce);
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(String(chunk)));
      cb();
    },
  });
  resolver = createResolver({ plugins, logger: pino({ level: 'info' }, sink) });
  await resolver.start();
  const r = resolver;
  const ask = async (address: string) => decodeResponse(await r.handle(query('localhost', 'A', { id: 1, edns: true }), { address }));
  return { r, lines, ask };
}

describe('not an open resolver by default', () => {
  it('the app adds acl { preset: localOnly } after the observers: other clients get REFUSED + EDE 18; it logs once that it is not open', async () => {
    const { r, ask, lines } = await chain([{ use: 'metrics' }, { use: 'stats' }, { use: 'special-use' }]);
    expect(r.chain).toEqual(['metrics', 'stats', 'acl', 'special-use']);
    const refused = await r.handle(query('localhost', 'A', { id: 2, edns: true }), { address: '203.0.113.5' });
    expect(decodeResponse(refused).rcode).toBe(5);
    expectEde(refused, EdeCode.PROHIBITED);
    expect((await ask('2001:db8::1')).rcode).toBe(5);
    for (const a of ['127.0.0.1', '::1', '192.168.1.20', '10.1.2.3', '172.16.5.4', '100.64.0.1', 'fc00::1', 'fd00::53', 'fe80::1', '169.254.3.3']) {
      const m = await ask(a);
      expect(m.rcode, a).toBe(0);
      expect(m.answers[0]?.data, a).toBe('127.0.0.1');
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('not an open resolver'))).toHaveLength(1);
  });

  it('a cluster worker other than the first (announce off) refuses the same way but does not log that it is not open', async () => {
    const { r, lines } = await chain([{ use: 'special-use' }], false, false);
    expect(r.chain).toEqual(['acl', 'special-use']);
    expect(decodeResponse(await r.handle(query('localhost', 'A', { id: 2 }), { address: '203.0.113.5' })).rcode).toBe(5);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('not an open resolver'))).toHaveLength(0);
  });

  it('openResolver: true answers everyone; an acl of your own replaces the default', async () => {
    const open = await chain([{ use: 'special-use' }], true);
    expect(open.r.chain).toEqual(['special-use']);
    expect((await open.ask('203.0.113.5')).rcode).toBe(0);
    await resolver!.stop();

    const own = await chain([{ use: 'acl', name: 'mine', options: { rules: [{ action: 'refuse', from: ['10.0.0.0/8'] }] } }, { use: 'special-use' }]);
    expect(own.r.chain).toEqual(['mine', 'special-use']);
    expect((await own.ask('203.0.113.5')).rcode).toBe(0);
    expect((await own.ask('10.0.0.1')).rcode).toBe(5);
  });

  it('--open-resolver sets openResolver; the config field defaults to false', () => {
    expect(parseCli(['--open-resolver']).overrides).toEqual({ openResolver: true });
    expect(resolveConfig(undefined).openResolver).toBe(false);
    expect(resolveConfig(undefined, { openResolver: true }).openResolver).toBe(true);
  });
});

describe('--rate-limit N', () => {
  it('adds the ratelimit plugin with rate N after the observers and any acl, or enables the configured one', () => {
    expect(parseCli(['--rate-limit', '50']).overrides).toEqual({ rateLimit: 50 });
    expect(parseCli(['--rate-limit', '0.5']).overrides).toEqual({ rateLimit: 0.5 });
    const c = resolveConfig(undefined, { rateLimit: 50 });
    expect(c.plugins.map((p) => p.use)).toEqual(['metrics', 'stats', 'ratelimit', 'special-use', 'cache', 'dedup', 'upstream']);
    expect(c.plugins[2]!.options).toEqual({ rate: 50 });
    const withAcl = applyOverrides({ plugins: [{ use: 'metrics' }, { use: 'acl', options: { preset: 'localOnly' } }, { use: 'cache' }] }, { rateLimit: 7 });
    expect(withAcl.plugins!.map((p) => p.use)).toEqual(['metrics', 'acl', 'ratelimit', 'cache']);
    const configured = applyOverrides({ plugins: [{ use: 'ratelimit', enabled: false, options: { rate: 1, burst: 9 } }, { use: 'cache' }] }, { rateLimit: 20 });
    expect(configured.plugins).toEqual([{ use: 'ratelimit', enabled: true, options: { rate: 20, burst: 9 } }, { use: 'cache' }]);
    expect(defaultConfig().plugins!.some((p) => p.use === 'ratelimit')).toBe(false);
  });

  it('rejects a bad N naming the flag', () => {
    for (const bad of ['0', 'lots', '1e9', '2000000', '']) {
      expect(() => parseCli(['--rate-limit', bad]), bad).toThrow(ConfigError);
      expect(() => parseCli(['--rate-limit', bad]), bad).toThrow(/^--rate-limit: must be a number of queries per second in \(0, 1000000\]/);
    }
  });
});

describe('DoH behind a trusted loopback reverse proxy', () => {
  it('a request the proxy names no client for is not attributed to the proxy: the default acl refuses it; a named local client is served', async () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'heimdall-proxy-acl-'));
    const pair = selfSignedCertificate(dir, { name: 'doh' });
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        listen: ['127.0.0.1:0'],
        admin: { enabled: false },
        logLevel: 'silent',
        doh: { listen: ['127.0.0.1:0'], trustedProxies: ['127.0.0.1'], cert: pair.cert, key: pair.key },
        plugins: [{ use: 'special-use' }],
      }),
    );
    const app = await startApp(resolveConfig(file), { logger: pino({ level: 'silent' }) });
    const port = app.resolver.addresses().find((a) => a.transport === 'https')!.port;
    const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    session.on('error', () => {});
    const rcode = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const dns = query('localhost', 'A', { id: 0 }).toString('base64url');
        const req = session.request({ ':path': `/dns-query?dns=${dns}`, ...headers });
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => resolve(decodeResponse(Buffer.concat(chunks)).rcode));
        req.on('error', reject);
        req.end();
      });
    try {
      expect(await rcode({})).toBe(5); // no header: unknown client, not 127.0.0.1
      expect(await rcode({ forwarded: 'for=_hidden' })).toBe(5);
      expect(await rcode({ 'x-forwarded-for': 'unknown' })).toBe(5);
      expect(await rcode({ 'x-forwarded-for': '203.0.113.5' })).toBe(5);
      expect(await rcode({ 'x-forwarded-for': '192.168.1.5' })).toBe(0);
    } finally {
      session.close();
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
