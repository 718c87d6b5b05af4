/**
 * The reference app end to end: the built CLI as a separate process, the
 * testing kit's FakeUpstream as its upstream, real `dig` and `kdig` as
 * clients (`npm test` installs them when missing).
 */
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { FakeUpstream, record } from '@heimdall/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AppProcess, admin, dig, freePort, kdig, startApp } from './helpers.js';

let up: FakeUpstream;
let app: AppProcess;
/** Admin POSTs must say they come from a program (cross-site protection). */
const POST = { method: 'POST', headers: { 'content-type': 'application/json' } };

const bigTxt = Array.from({ length: 12 }, (_, i) => `chunk-${i}-${'x'.repeat(180)}`);

beforeAll(async () => {
  up = await FakeUpstream.start();
  up.on('www.example.com', 'A', [record('www.example.com', 'A', '192.0.2.1', 300)]);
  up.on('www.example.com', 'AAAA', [record('www.example.com', 'AAAA', '2001:db8::1', 300)]);
  up.on('example.com', 'MX', [record('example.com', 'MX', { preference: 10, exchange: 'mail.example.com' }, 300)]);
  up.on('example.com', 'TXT', [record('example.com', 'TXT', ['v=spf1 -all'], 300)]);
  up.on(
    'big.example.com',
    'TXT',
    bigTxt.map((t) => record('big.example.com', 'TXT', [t], 300)),
  );
  up.on('ttl.example.com', 'A', [record('ttl.example.com', 'A', '192.0.2.7', 100)]);
  up.on('flush.example.com', 'A', [record('flush.example.com', 'A', '192.0.2.8', 300)]);
  up.on('mixed.example.com', 'A', [record('mixed.example.com', 'A', '192.0.2.9', 300)]);
  const port = await freePort();
  app = await startApp({
    listen: [`127.0.0.1:${port}`],
    admin: { listen: '127.0.0.1:0' },
    logLevel: 'info',
    plugins: [
      { use: 'metrics' },
      { use: 'special-use' },
      { use: 'cache' },
      { use: 'dedup' },
      { use: 'upstream', options: { servers: [`127.0.0.1:${up.port}`], timeout: 1000 } },
    ],
  });
});

afterAll(async () => {
  if (app) expect(await app.stop()).toBe(0);
  await up?.close();
});

describe('reference app with dig and kdig', () => {
  it('answers A, AAAA, MX and TXT from the upstream', async () => {
    const a = await dig(app.port, ['www.example.com', 'A']);
    expect(a.status).toBe('NOERROR');
    expect(a.answers).toEqual([expect.objectContaining({ name: 'www.example.com.', type: 'A', data: '192.0.2.1' })]);
    const aaaa = await dig(app.port, ['www.example.com', 'AAAA']);
    expect(aaaa.answers[0]).toMatchObject({ type: 'AAAA', data: '2001:db8::1' });
    const mx = await kdig(app.port, ['example.com', 'MX']);
    expect(mx.status).toBe('NOERROR');
    expect(mx.answers[0]).toMatchObject({ type: 'MX', data: '10 mail.example.com.' });
    const txt = await dig(app.port, ['example.com', 'TXT']);
    expect(txt.answers[0]).toMatchObject({ type: 'TXT', data: '"v=spf1 -all"' });
  });

  it('answers over TCP (dig and kdig)', async () => {
    const d = await dig(app.port, ['+tcp', 'www.example.com', 'A']);
    expect(d.status).toBe('NOERROR');
    expect(d.raw).toMatch(/\(TCP\)/);
    expect(d.answers[0]?.data).toBe('192.0.2.1');
    const k = await kdig(app.port, ['+tcp', 'example.com', 'MX']);
    expect(k.status).toBe('NOERROR');
    expect(k.raw).toMatch(/TCP/);
  });

  it('speaks EDNS: OPT echoed with our payload size, none without EDNS', async () => {
    const withEdns = await dig(app.port, ['+edns=0', '+bufsize=4096', 'www.example.com']);
    expect(withEdns.ednsUdp).toBe(1232);
    const without = await dig(app.port, ['+noedns', 'www.example.com']);
    expect(without.status).toBe('NOERROR');
    expect(without.ednsUdp).toBeNull();
    const k = await kdig(app.port, ['+edns', 'www.example.com']);
    expect(k.raw).toMatch(/EDNS/);
  });

  it('truncates a large answer over UDP with a 512-byte buffer, and dig gets it whole over TCP', async () => {
    const truncated = await dig(app.port, ['+bufsize=512', '+ignore', 'big.example.com', 'TXT']);
    expect(truncated.flags).toContain('tc');
    expect(truncated.answers.length).toBeLessThan(bigTxt.length);
    const whole = await dig(app.port, ['+bufsize=512', 'big.example.com', 'TXT']);
    expect(whole.retriedTcp).toBe(true);
    expect(whole.flags).not.toContain('tc');
    expect(whole.answers).toHaveLength(bigTxt.length);
  });

  it('serves cached answers with a decreasing TTL', async () => {
    const before = up.count('ttl.example.com', 'A');
    const first = await dig(app.port, ['ttl.example.com']);
    expect(first.answers[0]?.ttl).toBeLessThanOrEqual(100);
    // TTLs count whole seconds: ask again (cache hits) until one has passed.
    await vi.waitFor(
      async () => {
        const second = await dig(app.port, ['ttl.example.com']);
        expect(second.answers[0]?.ttl).toBeLessThan(first.answers[0]!.ttl);
      },
      { timeout: 5000, interval: 100 },
    );
    expect(up.count('ttl.example.com', 'A') - before).toBe(1);
  });

  it('passes NXDOMAIN through', async () => {
    const r = await dig(app.port, ['nope.example.com']);
    expect(r.status).toBe('NXDOMAIN');
  });

  it('answers special-use names locally', async () => {
    const before = up.received.length;
    expect((await dig(app.port, ['localhost'])).answers[0]?.data).toBe('127.0.0.1');
    expect((await dig(app.port, ['printer.local'])).status).toBe('NXDOMAIN');
    expect((await dig(app.port, ['-x', '192.168.1.5'])).status).toBe('NXDOMAIN');
    expect(up.received.length).toBe(before);
  });

  it('echoes the letter case of a mixed-case query', async () => {
    const d = await dig(app.port, ['MiXeD.ExAmPlE.cOm']);
    expect(d.status).toBe('NOERROR');
    expect(d.question).toBe('MiXeD.ExAmPlE.cOm.');
    // Again, now from the cache: the cached copy gets this query's letter case.
    const again = await dig(app.port, ['mIxEd.eXaMpLe.CoM']);
    expect(again.question).toBe('mIxEd.eXaMpLe.CoM.');
    expect(again.answers[0]?.name.toLowerCase()).toBe('mixed.example.com.');
    expect(up.count('mixed.example.com', 'A')).toBe(1);
  });
});

describe('admin endpoints', () => {
  it('serves /health, /ready and /metrics', async () => {
    const base = app.adminUrl!;
    expect((await admin(base, '/health')).status).toBe(200);
    expect((await admin(base, '/ready')).json()).toEqual({ status: 'ready' });
    const m = await admin(base, '/metrics');
    expect(m.status).toBe(200);
    expect(m.text).toMatch(/heimdall_requests_total\{qtype="A",rcode="NOERROR",transport="udp"\} \d+/);
    expect(m.text).toMatch(/heimdall_requests_total\{qtype="MX",rcode="NOERROR",transport="tcp"\} \d+/);
    expect(m.text).toMatch(/heimdall_request_duration_seconds_bucket\{le="0\.001",transport="udp"\} \d+/);
    expect(m.text).toMatch(/heimdall_upstream_requests_total/);
    expect(m.text).toMatch(/heimdall_cache_/);
    expect(m.text).toMatch(/process_cpu_user_seconds_total/);
    expect((await admin(base, '/nope')).status).toBe(404);
    expect((await admin(base, '/cache/flush')).status).toBe(405);
  });

  it('flushes the cache by name, by suffix and entirely', async () => {
    const base = app.adminUrl!;
    await dig(app.port, ['flush.example.com']);
    await dig(app.port, ['flush.example.com']);
    expect(up.count('flush.example.com', 'A')).toBe(1);
    const byName = await admin(base, '/cache/flush?name=flush.example.com', POST);
    expect(byName.status).toBe(200);
    expect((byName.json() as { removed: number }).removed).toBeGreaterThanOrEqual(1);
    await dig(app.port, ['flush.example.com']);
    expect(up.count('flush.example.com', 'A')).toBe(2);
    const bySuffix = await admin(base, '/cache/flush?suffix=example.com', POST);
    expect((bySuffix.json() as { removed: number }).removed).toBeGreaterThanOrEqual(1);
    await dig(app.port, ['flush.example.com']);
    expect(up.count('flush.example.com', 'A')).toBe(3);
    const all = await admin(base, '/cache/flush', POST);
    expect(all.status).toBe(200);
    expect((await admin(base, '/cache/stats')).json()).toMatchObject({ entries: 0, bytes: 0 });
    expect((await admin(base, '/cache/flush?name=bad..name', POST)).status).toBe(400);
  });

  it('reports blocking endpoints as absent when blocking is not in the chain', async () => {
    const r = await admin(app.adminUrl!, '/blocking/status');
    expect(r.status).toBe(404);
    expect(r.text).toMatch(/no such endpoint \/blocking\/status/);
  });
});

describe('bearer token and several listen addresses', () => {
  it('serves IPv4 and IPv6 addresses; the token protects everything but /health and /ready', async () => {
    const port = await freePort();
    const guarded = await startApp({
      listen: [`127.0.0.1:${port}`, '[::1]:0'],
      admin: { listen: '127.0.0.1:0', token: 'sesame-open-up' },
      logLevel: 'info',
      plugins: [{ use: 'special-use' }],
    });
    try {
      const v6 = (guarded.listening.addresses as string[]).filter((a) => a.includes('[::1]'));
      expect(v6.map((a) => a.slice(0, 3))).toEqual(['udp', 'tcp']);
      const udp6 = Number(v6[0]!.slice(v6[0]!.lastIndexOf(':') + 1));
      const tcp6 = Number(v6[1]!.slice(v6[1]!.lastIndexOf(':') + 1));
      expect((await dig(udp6, ['@::1', 'localhost', 'AAAA'])).answers[0]?.data).toBe('::1');
      expect((await kdig(tcp6, ['@::1', '+tcp', 'x.localhost'])).answers[0]?.data).toBe('127.0.0.1');
      const base = guarded.adminUrl!;
      expect((await admin(base, '/health')).status).toBe(200);
      expect((await admin(base, '/metrics')).status).toBe(401);
      expect((await admin(base, '/metrics', { headers: { authorization: 'Bearer wrong-token-x' } })).status).toBe(401);
      expect((await admin(base, '/metrics', { headers: { authorization: 'Bearer sesame-open-up' } })).status).toBe(200);
    } finally {
      expect(await guarded.stop()).toBe(0);
    }
  });
});

describe('third-party plugins', () => {
  it('loads a plugin module by path from the config, in chain order, with its options', async () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'heimdall-plugin-'));
    const file = join(dir, 'hello.mjs');
    // A plugin as a third party would ship it: a default-exported factory, no build step, no fork.
    writeFileSync(
      file,
      `export default function hello(options = {}) {
  if (typeof options.text !== 'string') throw Object.assign(new Error('hello.text: must be a string'), { code: 'CONFIG' });
  return {
    name: 'hello',
    middleware: () => (ctx, next) => {
      if (ctx.query.qname.toLowerCase() !== 'hello.example' || ctx.query.qtype !== 16) return next();
      ctx.answer([{ name: ctx.query.qname, type: 16, ttl: 30, data: [options.text] }]);
    },
  };
}
`,
    );
    const port = await freePort();
    const withPlugin = await startApp({
      listen: [`127.0.0.1:${port}`],
      admin: { enabled: false },
      logLevel: 'info',
      plugins: [{ use: 'metrics' }, { use: file, options: { text: 'hi from a plugin' } }, { use: 'special-use' }],
    });
    try {
      expect(withPlugin.listening.chain).toEqual(['metrics', 'acl', 'hello', 'special-use']);
      const r = await dig(port, ['hello.example', 'TXT']);
      expect(r.answers[0]).toMatchObject({ type: 'TXT', data: '"hi from a plugin"' });
      expect((await dig(port, ['localhost'])).answers[0]?.data).toBe('127.0.0.1');
    } finally {
      expect(await withPlugin.stop()).toBe(0);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM under load drains: every query sent before it is answered, exit 0', async () => {
    const port = await freePort();
    const slow = await FakeUpstream.start({ fallback: () => ({ answers: [], delayMs: 1500 }) });
    const victim = await startApp({
      listen: [`127.0.0.1:${port}`],
      admin: { listen: '127.0.0.1:0' },
      logLevel: 'info',
      drainTimeoutMs: 5000,
      plugins: [{ use: 'upstream', options: { servers: [`127.0.0.1:${slow.port}`], timeout: 2000 } }],
    });
    const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
    try {
      const answered = new Map<number, number>();
      sock.on('message', (msg) => answered.set(msg.readUInt16BE(0), msg[3]! & 15));
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      // 100 queries in batches of 10 every 5 ms; each waits 1.5 s on the upstream, so all are
      // in flight when SIGTERM arrives. (Kept at 100: the answers come back in one burst, and
      // more would overflow this client's default 208 KiB receive buffer, a loss that is not the app's.)
      const N = 100;
      for (let id = 1; id <= N; id++) {
        const labels = `q${id}.drain.example`.split('.');
        const q = Buffer.concat([
          Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
          ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
          Buffer.from([0, 0, 1, 0, 1]),
        ]);
        sock.send(q, port, '127.0.0.1');
        if (id % 10 === 0) await new Promise((r) => setTimeout(r, 5)); // pacing: bursts of 10, not a wait for an event
      }
      await vi.waitFor(() => expect(slow.received.length).toBe(N), { timeout: 1400, interval: 10 });
      expect(answered.size).toBe(0);
      const t0 = Date.now();
      expect((await admin(victim.adminUrl!, '/ready')).status).toBe(200);
      victim.child.kill('SIGTERM');
      // While draining, the process is alive but not ready.
      let ready = 200;
      for (let i = 0; i < 50 && ready === 200; i++) {
        await new Promise((r) => setTimeout(r, 10));
        ready = (await admin(victim.adminUrl!, '/ready')).status;
      }
      expect(ready).toBe(503);
      expect((await admin(victim.adminUrl!, '/health')).status).toBe(200);
      expect(await victim.exited).toBe(0);
      expect(Date.now() - t0).toBeLessThan(5000);
      // The answers were sent before the exit; wait for this socket to have read them all.
      await vi.waitFor(() => expect(answered.size).toBe(N), { timeout: 2000, interval: 10 });
      expect([...new Set(answered.values())]).toEqual([0]);
      expect(victim.output()).toMatch(/shutting down: draining/);
      expect(victim.output()).not.toMatch(/"level":(50|60)/);
    } finally {
      sock.close();
      await victim.stop();
      await slow.close();
    }
  });
});
