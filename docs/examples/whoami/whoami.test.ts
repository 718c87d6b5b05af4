/**
 * Tests of the example plugin, written as a plugin author would, with
 * @heimdall/testing. They run in the repository's suite
 * (`npx vitest run docs`), so the guide's code cannot rot.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadPlugin, METRICS, RecordType } from '@heimdall/core';
import { decode } from '@heimdall/core/packet';
import { expectAnswers, expectFlags, expectRcode, query, runMiddleware, testResolver } from '@heimdall/testing';
import { describe, expect, test } from 'vitest';
import { main } from './server.js';
import whoami, { WHOAMI_STATS, type WhoamiStats } from './whoami.js';

describe('whoami plugin', () => {
  test('answers A with the client address and an SRV with its port', async () => {
    const r = testResolver([whoami()]);
    const res = await r.handle(query('whoami.test', 'A'), { address: '198.51.100.7', port: 40212, family: 4, transport: 'udp' });
    const m = expectAnswers(res, [{ name: 'whoami.test', type: 'A', ttl: 0, data: '198.51.100.7' }]);
    expect(m.additionals).toEqual([
      { name: '_udp.whoami.test', type: RecordType.SRV, class: 1, ttl: 0, data: { priority: 0, weight: 0, port: 40212, target: '' } },
    ]);
    expectFlags(res, { qr: true, aa: false, rd: true });
  });

  test('an IPv6 client gets AAAA; other types get the address in the additional section', async () => {
    const r = testResolver([whoami()]);
    const v6 = { address: '2001:db8::7', port: 5000, family: 6 as const, transport: 'tcp' as const };
    expectAnswers(await r.handle(query('x.test', 'AAAA'), v6), ['2001:db8::7']);
    const txt = expectAnswers(await r.handle(query('x.test', 'TXT'), v6), []);
    expect(txt.additionals.map((a) => a.type)).toEqual([RecordType.AAAA, RecordType.SRV]);
    expect(txt.additionals[1].name).toBe('_tcp.x.test');
  });

  test('outside its zone it calls next() and stays synchronous', async () => {
    const plugin = whoami({ zone: 'whoami.test' });
    const inside = await runMiddleware(plugin, query('a.WhoAmI.test'));
    expect(inside.sync).toBe(true);
    expect(inside.nextCalls).toBe(0);
    const outside = await runMiddleware(plugin, query('example.com'));
    expect(outside.nextCalls).toBe(1);
    expect(outside.response).toBeNull();
    // Through a resolver, nobody else answers: SERVFAIL.
    expectRcode(await testResolver([plugin]).handle(query('example.com')), 'SERVFAIL');
  });

  test('its service is in the container and its metric in the registry', async () => {
    const r = testResolver([whoami()]);
    await r.handle(query('a.test'), { transport: 'udp' });
    await r.handle(query('a.test'), { transport: 'udp' });
    expect(r.get<WhoamiStats>(WHOAMI_STATS).answered.get('udp')).toBe(2);
    const text = await r.get<import('prom-client').Registry>(METRICS).metrics();
    expect(text).toContain('heimdall_whoami_answers_total{transport="udp"} 2');
  });

  test('bad options fail fast with the field path', () => {
    expect(() => whoami({ ttl: -1 })).toThrow(ConfigError);
    expect(() => whoami({ ttl: -1 })).toThrow('whoami.ttl: must be an integer in 0..86400');
    expect(() => whoami({ ttl: 1.5 })).toThrow('whoami.ttl: must be an integer in 0..86400');
    expect(() => whoami({ zone: 42 as unknown as string })).toThrow('whoami.zone: must be a string');
    expect(() => whoami({ tll: 5 } as never)).toThrow('whoami.tll: unknown option');
  });

  test('loads by path (or package name) from a config entry', async () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const plugin = await loadPlugin({ use: './whoami.ts', options: { ttl: 30 } }, { baseDir: here, path: 'plugins[0]' });
    const r = testResolver([plugin]);
    expectAnswers(await r.handle(query('w.test'), { address: '192.0.2.1' }), [{ ttl: 30, data: '192.0.2.1' }]);
    await expect(loadPlugin({ use: './whoami.ts', options: { ttl: 'x' } }, { baseDir: here, path: 'plugins[0]' })).rejects.toThrow(
      'plugins[0].options.ttl: must be an integer in 0..86400',
    );
  });

  test('the example server answers over UDP and TCP', async () => {
    const resolver = await main({ port: 0 });
    try {
      const [udp, tcp] = resolver.addresses();
      const viaUdp = await new Promise<Buffer>((resolve, reject) => {
        const s = dgram.createSocket('udp4');
        s.once('message', (m) => {
          s.close();
          resolve(m);
        });
        s.send(query('whoami.test'), udp.port, '127.0.0.1', (err) => err && reject(err));
      });
      expectAnswers(viaUdp, ['127.0.0.1']);
      const viaTcp = await new Promise<Buffer>((resolve, reject) => {
        const q = query('whoami.test');
        const s = net.connect(tcp.port, '127.0.0.1', () => s.write(Buffer.concat([Buffer.from([0, q.length]), q])));
        let buf = Buffer.alloc(0);
        s.on('data', (c) => {
          buf = Buffer.concat([buf, c]);
          if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
            s.destroy();
            resolve(buf.subarray(2));
          }
        });
        s.on('error', reject);
      });
      const m = decode(viaTcp);
      expect(m.additionals[0].name).toBe('_tcp.whoami.test');
      expect((m.additionals[0].data as { port: number }).port).toBeGreaterThan(0);
    } finally {
      await resolver.stop();
    }
  });
});
