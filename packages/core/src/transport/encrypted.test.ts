/**
 * DNS over TLS and DNS over HTTPS listeners, PROXY v2, padding and
 * keepalive, with real clients (kdig, curl, Node's tls/http2) and
 * certificates made here with openssl. Every wait is bounded.
 */
// The kit's certificate helper, imported by path (@heimdall/testing depends on core, not the reverse).
import { selfSignedCertificate } from '../../../testing/src/certs.js';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import type { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { decode, encode, type Message, RecordType } from '../packet/index.js';
import type { CoreMetrics } from '../pipeline/metrics.js';
import type { Middleware } from '../pipeline/types.js';
import { CORE_METRICS, createResolver, type Resolver } from '../resolver.js';
import { METRICS } from '../tokens.js';
import { silentLogger } from '../util/logger.js';
import { cacheAge } from './https.js';
import { withCertificateFields } from './certs.js';
import { buildProxyV2, parseProxyV2 } from './proxy.js';
import { addResponseOptions, lastOptRdlength, queryOptions } from './edns-options.js';
import { frame } from './transport.test-helpers.js';
import type { ListenOptions } from './types.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(os.tmpdir(), 'heimdall-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed EC certificate for `cn`, written to `<name>.crt/.key` (the kit's openssl helper). */
const makeCert = (name: string, cn = 'dns.test'): { cert: string; key: string } => selfSignedCertificate(dir, { name, cn });

let pair: { cert: string; key: string };
let other: { cert: string; key: string };
beforeAll(() => {
  pair = makeCert('a', 'first.test');
  other = makeCert('b', 'second.test');
});

/** Answers `who.test TXT` with "address|transport|clientId", drops `drop.test`, else one A record (TTL 60; `ttl300.…` 300; `big.…` 40 records). */
const answer: Middleware = (ctx) => {
  const name = ctx.query.qname;
  if (name === 'drop.test') return ctx.drop();
  if (name === 'who.test') {
    ctx.answer([{ name, type: RecordType.TXT, ttl: 5, data: [`${ctx.client.address}|${ctx.client.transport}|${ctx.client.clientId ?? ''}`] }]);
    return;
  }
  if (name.startsWith('slow.')) {
    return new Promise<void>((r) => setTimeout(r, 20)).then(() => ctx.answer([{ name, type: RecordType.A, ttl: 60, data: '192.0.2.9' }]));
  }
  const n = name.includes('big.') ? 40 : 1;
  const ttl = name.startsWith('ttl300.') ? 300 : 60;
  ctx.answer(Array.from({ length: n }, (_, i) => ({ name, type: RecordType.A, ttl: ttl - (i % 2), data: `192.0.2.${i + 1}` })));
};

let resolver: Resolver | undefined;
afterEach(async () => {
  await resolver?.stop();
  resolver = undefined;
});

async function serve(listen: ListenOptions[]): Promise<Map<string, number>> {
  resolver = createResolver({ plugins: [{ name: 'answer', middleware: () => answer }], listen, logger: silentLogger(), drainTimeoutMs: 200 });
  await resolver.start();
  return new Map(resolver.addresses().map((a) => [a.transport, a.port]));
}

function q(name: string, id = 0x1234, type: number = RecordType.A, edns: Parameters<typeof encode>[0]['edns'] | null = { udpPayloadSize: 1232 }): Buffer {
  return encode({ id, rd: true, questions: [{ name, type }], ...(edns ? { edns } : {}) });
}

/** Collects `count` framed responses from a stream socket. */
function framedResponses(socket: net.Socket, count: number, ms = 3000): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error(`timeout: ${out.length}/${count} responses`)), ms);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length >= count) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (out.length < count) reject(new Error(`closed after ${out.length}/${count} responses`));
    });
    socket.on('error', () => {});
  });
}

/** Resolves when the socket closes (true) or after `ms` (false). */
function closes(socket: net.Socket, ms = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(true);
    const t = setTimeout(() => resolve(false), ms);
    socket.on('close', () => {
      clearTimeout(t);
      resolve(true);
    });
    socket.on('error', () => {});
  });
}

function dot(port: number, opts: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['dot'], ...opts }, () => resolve(s));
    s.once('error', reject);
  });
}

function txt(m: Message): string {
  return (m.answers[0]!.data as Buffer[]).map((b) => b.toString()).join('');
}

/** One HTTP/2 request; resolves status, headers and body. */
function h2(
  port: number,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    session.on('error', reject);
    const req = session.request({ ':method': init.method ?? 'GET', ':path': path, ...init.headers });
    const chunks: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => {
      headers = h;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      session.close();
      resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks) });
    });
    req.on('error', (e) => {
      session.close();
      reject(e);
    });
    req.end(init.body);
  });
}

describe('DNS over TLS', () => {
  test('kdig +tls gets an answer, padded to 468 octets', async () => {
    const ports = await serve([{ transport: 'tls', address: '127.0.0.1', port: 0, ...pair }]);
    const { stdout } = await run('kdig', ['+tls', '+padding', `@127.0.0.1`, '-p', String(ports.get('tls')), 'example.com', 'A'], { timeout: 10_000 });
    expect(stdout).toMatch(/status: NOERROR/);
    expect(stdout).toMatch(/example\.com\.\s+60\s+IN\s+A\s+192\.0\.2\.1/);
    expect(stdout).toMatch(/TLS1\.3/);
    expect(stdout).toMatch(/Received 468 B/);
  });

  test('ALPN dot; TLS 1.2 accepted; a client offering only another protocol is refused', async () => {
    const ports = await serve([{ transport: 'tls', address: '127.0.0.1', port: 0, ...pair }]);
    const s = await dot(ports.get('tls')!, { maxVersion: 'TLSv1.2' });
    expect(s.alpnProtocol).toBe('dot');
    expect(s.getProtocol()).toBe('TLSv1.2');
    s.destroy();
    await expect(dot(ports.get('tls')!, { ALPNProtocols: ['h2'] })).rejects.toThrow(/application protocol/i);
    await expect(dot(ports.get('tls')!, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' })).rejects.toThrow();
  });

  test('pipelined queries on one connection are all answered, slow ones out of order', async () => {
    const ports = await serve([{ transport: 'tls', address: '127.0.0.1', port: 0, ...pair }]);
    const s = await dot(ports.get('tls')!);
    const names = Array.from({ length: 60 }, (_, i) => (i % 10 === 0 ? `slow.${i}.test` : `n${i}.test`));
    const got = framedResponses(s, names.length);
    s.write(Buffer.concat(names.map((n, i) => frame(q(n, i + 1)))));
    const responses = (await got).map((r) => decode(r));
    expect(responses.map((r) => r.id).sort((a, b) => a - b)).toEqual(names.map((_, i) => i + 1));
    for (const r of responses) expect(r.questions[0]!.name).toBe(names[r.id - 1]);
    // The slow ones came after fast ones sent later.
    expect(responses[0]!.id).not.toBe(1);
    s.destroy();
  });

  test('idle timeout closes a quiet connection; keepalive option answered with it', async () => {
    const ports = await serve([{ transport: 'tls', address: '127.0.0.1', port: 0, idleTimeoutMs: 300, ...pair }]);
    const s = await dot(ports.get('tls')!);
    const got = framedResponses(s, 1);
    s.write(frame(q('k.test', 7, RecordType.A, { udpPayloadSize: 1232, options: [{ code: 11 }] } as never)));
    const [r] = await got;
    expect(decode(r!).edns!.options.map((o) => o.code)).toEqual([11, 12]);
    expect(r!.length % 468).toBe(0);
    const raw = lastOptRdlength(r!);
    expect(raw).toBeGreaterThan(0);
    // TIMEOUT = 300 ms in units of 100 ms.
    const opt = r!.subarray(raw + 2);
    expect(opt.readUInt16BE(0)).toBe(11);
    expect(opt.readUInt16BE(4)).toBe(3);
    const t0 = Date.now();
    expect(await closes(s, 3000)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(2500);
  });

  test('a bad or mismatched pair fails at start naming the file', () => {
    const garbage = join(dir, 'garbage.crt');
    writeFileSync(garbage, 'not a certificate');
    const make = (l: ListenOptions) => createResolver({ plugins: [], listen: [l], logger: silentLogger() });
    expect(() => make({ transport: 'tls', port: 0, cert: pair.cert, key: other.key })).toThrow(
      new RegExp(`listen\\[0\\]\\.key: ${other.key.replace(/[.]/g, '\\.')} is not the private key of the certificate in`),
    );
    expect(() => make({ transport: 'tls', port: 0, cert: garbage, key: pair.key })).toThrow(/listen\[0\]\.cert: .*garbage\.crt is not a PEM certificate/);
    expect(() => make({ transport: 'https', port: 0, cert: join(dir, 'missing.crt'), key: pair.key })).toThrow(/listen\[0\]\.cert: cannot read .*missing\.crt/);
    expect(() => make({ transport: 'tls', port: 0 })).toThrow(/listen\[0\]\.cert: is required/);
    // An app's own field names (withCertificateFields): `dot.key`, not core's `listen[0].key`.
    const fields = { cert: 'dot.cert', key: 'dot.key' };
    expect(() => make(withCertificateFields({ transport: 'tls', port: 0, cert: pair.cert, key: other.key }, fields))).toThrow(
      /^dot\.key: .* is not the private key/,
    );
    expect(() => make(withCertificateFields({ transport: 'https', port: 0, cert: garbage, key: pair.key }, fields))).toThrow(/^dot\.cert: .*garbage\.crt/);
    expect(() => make(withCertificateFields({ transport: 'tls', port: 0 }, fields))).toThrow(/^dot\.cert: is required/);
  });

  test('certificate swapped under load (file change and reload): no query fails, new connections get the new pair, a bad reload keeps the old', async () => {
    const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    const { readFileSync } = await import('node:fs');
    writeFileSync(live.cert, readFileSync(pair.cert));
    writeFileSync(live.key, readFileSync(pair.key));
    const ports = await serve([
      { transport: 'tls', address: '127.0.0.1', port: 0, ...live },
      { transport: 'https', address: '127.0.0.1', port: 0, ...live },
    ]);
    const port = ports.get('tls')!;
    const subject = async () => {
      const s = await dot(port);
      const cn = s.getPeerCertificate().subject.CN;
      s.destroy();
      return String(cn);
    };
    expect(await subject()).toBe('first.test');
    // Load: one long-lived connection plus a new connection per batch, for ~2 s — DoT, and DoH streams beside it.
    const persistent = await dot(port);
    const dohPort = ports.get('https')!;
    const dohSession = () => {
      const session = http2.connect(`https://127.0.0.1:${dohPort}`, { rejectUnauthorized: false });
      session.on('error', () => {});
      return session;
    };
    /** `batch` as DoH GET streams on `session`; resolves the number answered 200 with a DNS answer. */
    const dohBatch = (session: http2.ClientHttp2Session, batch: Buffer[]) =>
      Promise.all(
        batch.map(
          (m) =>
            new Promise<number>((resolve, reject) => {
              const req = session.request({ ':path': `/dns-query?dns=${m.toString('base64url')}` });
              const chunks: Buffer[] = [];
              let status = 0;
              req.on('response', (h) => {
                status = Number(h[':status']);
              });
              req.on('data', (c: Buffer) => chunks.push(c));
              req.on('end', () => (status === 200 && decode(Buffer.concat(chunks)).answers.length === 1 ? resolve(1) : reject(new Error(`status ${status}`))));
              req.on('error', reject);
              req.end();
            }),
        ),
      ).then((r) => r.length);
    const persistentDoh = dohSession();
    let sent = 0;
    let answered = 0;
    let failed = 0;
    const stopAt = Date.now() + 2000;
    let swapped = false;
    while (Date.now() < stopAt) {
      if (!swapped && Date.now() > stopAt - 1400) {
        // Replace both files (what certbot does); the watcher reloads.
        writeFileSync(live.key, readFileSync(other.key));
        writeFileSync(live.cert, readFileSync(other.cert));
        swapped = true;
      }
      const batch = Array.from({ length: 10 }, (_, i) => q(`load${sent + i}.test`, (sent + i) & 0xffff));
      sent += batch.length * 4;
      const fresh = await dot(port).catch(() => null);
      const freshDoh = dohSession();
      const results = await Promise.allSettled([
        (async () => {
          const got = framedResponses(persistent, batch.length);
          persistent.write(Buffer.concat(batch.map(frame)));
          return got;
        })(),
        (async () => {
          if (fresh === null) throw new Error('connect failed');
          const got = framedResponses(fresh, batch.length);
          fresh.write(Buffer.concat(batch.map(frame)));
          const r = await got;
          fresh.destroy();
          return r;
        })(),
        dohBatch(persistentDoh, batch),
        dohBatch(freshDoh, batch).finally(() => freshDoh.close()),
      ]);
      for (const r of results) {
        if (r.status === 'fulfilled') answered += typeof r.value === 'number' ? r.value : r.value.length;
        else failed += batch.length;
      }
      persistent.removeAllListeners('data');
      persistent.removeAllListeners('close');
      persistent.removeAllListeners('error');
    }
    expect(sent).toBeGreaterThanOrEqual(400);
    expect(failed).toBe(0);
    expect(answered).toBe(sent);
    expect(persistent.destroyed).toBe(false); // the open connections were not dropped
    expect(persistentDoh.closed || persistentDoh.destroyed).toBe(false);
    expect((persistentDoh.socket as unknown as tls.TLSSocket).getPeerCertificate().subject.CN).toBe('first.test');
    persistentDoh.close();
    expect(persistent.getPeerCertificate().subject.CN).toBe('first.test');
    // New connections see the new certificate (DoT and DoH).
    await expect.poll(subject, { timeout: 3000, interval: 50 }).toBe('second.test');
    const doh = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: ports.get('https')!, rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => {
        resolve(String(s.getPeerCertificate().subject.CN));
        s.destroy();
      });
      s.on('error', reject);
    });
    expect(doh).toBe('second.test');
    // A broken file: the reload fails and the current pair stays.
    writeFileSync(live.key, 'broken');
    await expect(resolver!.reloadCertificates()).rejects.toThrow(/live\.key is not a PEM private key/);
    expect(await subject()).toBe('second.test');
    persistent.destroy();
  });
});

describe('DNS over HTTPS', () => {
  const dnsParam = (m: Buffer) => m.toString('base64url');

  test('kdig +https (POST) and +https-get', async () => {
    const ports = await serve([{ transport: 'https', address: '127.0.0.1', port: 0, ...pair }]);
    const port = String(ports.get('https'));
    for (const mode of ['+https', '+https-get']) {
      const { stdout } = await run('kdig', [mode, '@127.0.0.1', '-p', port, 'example.com', 'A'], { timeout: 10_000 });
      expect(stdout).toMatch(/status: NOERROR/);
      expect(stdout).toMatch(/example\.com\.\s+60\s+IN\s+A\s+192\.0\.2\.1/);
      expect(stdout).toMatch(/Received 468 B/);
    }
  });

  test('curl --http2 and --http1.1, GET and POST: 200, dns-message, max-age = the smallest TTL', async () => {
    const ports = await serve([{ transport: 'https', address: '127.0.0.1', port: 0, ...pair }]);
    const base = `https://127.0.0.1:${ports.get('https')}/dns-query`;
    const body = join(dir, 'query.bin');
    writeFileSync(body, q('ttl300.big.test', 0));
    for (const version of ['--http2', '--http1.1']) {
      const out = join(dir, `resp${version}.bin`);
      const get = await run('curl', ['-sk', version, '-D-', '-o', out, `${base}?dns=${dnsParam(q('ttl300.big.test', 0))}`], { timeout: 10_000 });
      expect(get.stdout).toMatch(version === '--http2' ? /^HTTP\/2 200/ : /^HTTP\/1\.1 200/);
      expect(get.stdout).toMatch(/content-type: application\/dns-message/i);
      expect(get.stdout).toMatch(/cache-control: max-age=299/i);
      const { readFileSync } = await import('node:fs');
      const m = decode(readFileSync(out));
      expect(m.answers).toHaveLength(40);
      const post = await run('curl', ['-sk', version, '-D-', '-o', out, '-H', 'content-type: application/dns-message', '--data-binary', `@${body}`, base], {
        timeout: 10_000,
      });
      expect(post.stdout).toMatch(/ 200/);
      expect(post.stdout).toMatch(/cache-control: max-age=299/i);
      expect(decode(readFileSync(out)).answers).toHaveLength(40);
    }
  });

  test('every error status; never a 500', async () => {
    const ports = await serve([{ transport: 'https', address: '127.0.0.1', port: 0, ...pair }]);
    const port = ports.get('https')!;
    const ct = { 'content-type': 'application/dns-message' };
    const cases: Array<[string, Parameters<typeof h2>[2] & { path: string }, number]> = [
      ['bad base64url', { path: '/dns-query?dns=AA$$' }, 400],
      ['padding', { path: `/dns-query?dns=${dnsParam(q('x.test'))}==` }, 400],
      ['empty dns', { path: '/dns-query?dns=' }, 400],
      ['no dns', { path: '/dns-query' }, 400],
      ['json when off', { path: '/dns-query?name=example.com&type=A' }, 400],
      ['short message', { path: `/dns-query?dns=${dnsParam(Buffer.alloc(5))}` }, 400],
      ['a response', { path: `/dns-query?dns=${dnsParam(Buffer.from([0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]))}` }, 400],
      ['bad POST body', { path: '/dns-query', method: 'POST', headers: ct, body: Buffer.from('hello') }, 400],
      ['too big', { path: '/dns-query', method: 'POST', headers: ct, body: Buffer.alloc(70_000, 1) }, 413],
      ['wrong type', { path: '/dns-query', method: 'POST', headers: { 'content-type': 'application/json' }, body: q('x.test') }, 415],
      ['no type', { path: '/dns-query', method: 'POST', body: q('x.test') }, 415],
      ['PUT', { path: '/dns-query', method: 'PUT', headers: ct, body: q('x.test') }, 405],
      ['DELETE', { path: '/dns-query', method: 'DELETE' }, 405],
      ['other path', { path: '/other' }, 404],
      ['prefix only', { path: '/dns-queryx' }, 404],
      ['bad client id', { path: '/dns-query/a%20b' }, 404],
      ['dropped', { path: `/dns-query?dns=${dnsParam(q('drop.test'))}` }, 403],
      // RFC 8484 §4.2.1: a message the server cannot parse is a 400 (not a FORMERR in a 200).
      ['garbage question', { path: `/dns-query?dns=${dnsParam(Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 1]))}` }, 400],
      ['no question', { path: `/dns-query?dns=${dnsParam(Buffer.from([0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]))}` }, 400],
      ['two questions', { path: `/dns-query?dns=${dnsParam(Buffer.concat([Buffer.from([0, 1, 1, 0, 0, 2]), q('x.test', 1, 1, null).subarray(6)]))}` }, 400],
      ['question without type', { path: `/dns-query?dns=${dnsParam(q('x.test', 1, 1, null).subarray(0, -3))}` }, 400],
      ['bad label type', { path: `/dns-query?dns=${dnsParam(Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, 0, 0, 1, 0, 1]))}` }, 400],
      ['garbage POST question', { path: '/dns-query', method: 'POST', headers: ct, body: Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 1]) }, 400],
      ['no EDNS', { path: `/dns-query?dns=${dnsParam(q('x.test', 1, 1, null))}` }, 200],
    ];
    for (const [what, { path, ...init }, status] of cases) {
      const r = await h2(port, path, init);
      expect({ what, status: r.status }).toEqual({ what, status });
    }
    const r = await h2(port, `/dns-query?dns=${dnsParam(Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 1]))}`);
    expect(r.body.toString()).toMatch(/malformed DNS message/);
    expect(r.headers['cache-control']).toBe('no-store');
    // HTTP/1.1: the same statuses through curl.
    const base = `https://127.0.0.1:${port}`;
    const code = async (args: string[]) =>
      (await run('curl', ['-sk', '--http1.1', '-o', '/dev/null', '-w', '%{http_code}', ...args], { timeout: 10_000 })).stdout;
    expect(await code([`${base}/dns-query?dns=@@`])).toBe('400');
    expect(await code(['-X', 'PUT', `${base}/dns-query`])).toBe('405');
    expect(await code([`${base}/nope`])).toBe('404');
    expect(await code(['-H', 'content-type: text/plain', '--data', 'x', `${base}/dns-query`])).toBe('415');
    const big = join(dir, 'big.bin');
    writeFileSync(big, Buffer.alloc(70_000, 1));
    expect(await code(['-H', 'content-type: application/dns-message', '--data-binary', `@${big}`, `${base}/dns-query`])).toBe('413');
    // Random junk over raw TLS: a 400, the connection closed, the server still up.
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    await new Promise((r) => s.once('secureConnect', r));
    let junkReply = '';
    s.on('data', (d: Buffer) => {
      junkReply += d.toString('latin1');
    });
    s.write('GARBAGE / HTTP/9\r\n\r\n\0\0\0');
    expect(await closes(s)).toBe(true);
    expect(junkReply).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect((await h2(port, `/dns-query?dns=${dnsParam(q('still.test'))}`)).status).toBe(200);
  });

  test('oversized GET: 413 past 64 KiB of message, 431 past the 128 KiB HTTP/1.1 head; a ~64 KiB HTTP/2 :path is read; never a reset', async () => {
    const ports = await serve([{ transport: 'https', address: '127.0.0.1', port: 0, ...pair }]);
    const port = ports.get('https')!;
    /** One HTTP/1.1 GET over raw TLS; resolves the status line's code (or 'closed'). */
    const get1 = (path: string) =>
      new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
          s.write(`GET ${path} HTTP/1.1\r\nhost: dns.test\r\n\r\n`);
        });
        let text = '';
        const timer = setTimeout(() => reject(new Error('timeout')), 5000);
        s.on('data', (d: Buffer) => {
          text += d.toString('latin1');
          const m = /^HTTP\/1\.1 (\d{3}) /.exec(text);
          if (m !== null) {
            clearTimeout(timer);
            s.destroy();
            resolve(m[1]!);
          }
        });
        s.on('error', () => {});
        s.on('close', () => {
          clearTimeout(timer);
          resolve('closed');
        });
      });
    const tooLarge = 'A'.repeat(90_000); // 67 500 octets decoded
    expect(await get1(`/dns-query?dns=${tooLarge}`)).toBe('413');
    expect(await get1(`/dns-query?dns=${'A'.repeat(200_000)}`)).toBe('431');
    expect(await get1(`/dns-query?dns=${'A'.repeat(20_000)}`)).toBe('400'); // read: a message of zeros (no question)
    // HTTP/2: a header field up to nghttp2's 64 KiB reaches the router (a 400 here: the message has no question).
    expect((await h2(port, `/dns-query?dns=${'A'.repeat(65_000)}`)).status).toBe(400);
    expect((await h2(port, `/dns-query?dns=${dnsParam(q('still.test'))}`)).status).toBe(200);
    expect(await get1(`/dns-query?dns=${dnsParam(q('still.test'))}`)).toBe('200');
  });

  test('client id path, configurable path, JSON API when on', async () => {
    const ports = await serve([{ transport: 'https', address: '127.0.0.1', port: 0, path: '/resolve', json: true, ...pair }]);
    const port = ports.get('https')!;
    const who = await h2(port, `/resolve/laptop-1?dns=${dnsParam(q('who.test', 0, RecordType.TXT))}`);
    expect(who.status).toBe(200);
    expect(txt(decode(who.body))).toBe('127.0.0.1|https|laptop-1');
    expect((await h2(port, `/dns-query?dns=${dnsParam(q('x.test'))}`)).status).toBe(404);
    const json = await h2(port, '/resolve?name=example.com&type=A', { headers: { accept: 'application/dns-json' } });
    expect(json.status).toBe(200);
    expect(json.headers['content-type']).toBe('application/dns-json');
    expect(JSON.parse(json.body.toString())).toMatchObject({
      Status: 0,
      Question: [{ name: 'example.com', type: 1 }],
      Answer: [{ name: 'example.com', type: 1, TTL: 60, data: '192.0.2.1' }],
    });
    expect((await h2(port, '/resolve?name=example.com&type=NOPE')).status).toBe(400);
  });

  test('Forwarded / X-Forwarded-For only from trusted proxies', async () => {
    const trusting = await serve([{ transport: 'https', address: '127.0.0.1', port: 0, trustedProxies: ['127.0.0.0/8'], ...pair }]);
    const path = `/dns-query?dns=${dnsParam(q('who.test', 0, RecordType.TXT))}`;
    const ask = async (port: number, headers: Record<string, string>) => txt(decode((await h2(port, path, { headers })).body)).split('|')[0];
    const port = trusting.get('https')!;
    expect(await ask(port, { 'x-forwarded-for': '203.0.113.9, 127.0.0.2' })).toBe('203.0.113.9');
    expect(await ask(port, { forwarded: 'for="[2001:db8::7]:4711";proto=https, for=127.0.0.3' })).toBe('2001:db8::7');
    // A trusted proxy that names no usable client: the client is unknown (''), never the proxy's loopback address.
    expect(await ask(port, { forwarded: 'for=_hidden' })).toBe('');
    expect(await ask(port, { forwarded: 'for=unknown' })).toBe('');
    expect(await ask(port, { 'x-forwarded-for': 'unknown' })).toBe('');
    expect(await ask(port, { 'x-forwarded-for': '' })).toBe('');
    expect(await ask(port, {})).toBe('');
    // Only our own proxies in the chain: the leftmost is the client.
    expect(await ask(port, { 'x-forwarded-for': '127.0.0.5' })).toBe('127.0.0.5');
    await resolver!.stop();
    const untrusting = await serve([{ transport: 'https', address: '127.0.0.1', port: 0, trustedProxies: ['10.0.0.0/8'], ...pair }]);
    expect(await ask(untrusting.get('https')!, { 'x-forwarded-for': '203.0.113.9' })).toBe('127.0.0.1');
  });

  test('Cache-Control: answer TTLs, authority for negative answers, 0 for errors', () => {
    const resp = (init: Parameters<typeof encode>[0]) => encode({ id: 0, qr: true, questions: [{ name: 'a.test', type: 1 }], ...init });
    expect(
      cacheAge(
        resp({
          answers: [
            { name: 'a.test', type: 1, ttl: 30, data: '192.0.2.1' },
            { name: 'a.test', type: 1, ttl: 20, data: '192.0.2.2' },
          ],
        }),
      ),
    ).toBe(20);
    const soa = {
      name: 'test',
      type: RecordType.SOA,
      ttl: 900,
      data: { mname: 'ns.test', rname: 'h.test', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 60 },
    };
    expect(cacheAge(resp({ rcode: 3, authorities: [soa as never] }))).toBe(900);
    expect(cacheAge(resp({ rcode: 2 }))).toBe(0);
    expect(cacheAge(Buffer.alloc(3))).toBe(0);
  });
});

describe('PROXY protocol v2', () => {
  test('parses IPv4, IPv6 and LOCAL headers; rejects bad ones', () => {
    const v4 = parseProxyV2(Buffer.concat([buildProxyV2({ address: '203.0.113.7', port: 4242 }), Buffer.from('rest')]));
    expect(v4).toMatchObject({ ok: true, header: { command: 'proxy', source: { address: '203.0.113.7', port: 4242, family: 4 }, length: 28 } });
    const v6 = parseProxyV2(buildProxyV2({ address: '2001:db8::1', port: 1 }, { address: '::1', port: 53 }));
    expect(v6).toMatchObject({ ok: true, header: { source: { address: '2001:db8::1', family: 6 }, length: 52 } });
    expect(parseProxyV2(buildProxyV2(null))).toMatchObject({ ok: true, header: { command: 'local', length: 16 } });
    expect(parseProxyV2(buildProxyV2({ address: '203.0.113.7', port: 1 }).subarray(0, 20))).toMatchObject({ ok: false, incomplete: true });
    const bad = buildProxyV2({ address: '203.0.113.7', port: 1 });
    bad[12] = 0x31;
    expect(parseProxyV2(bad)).toMatchObject({ ok: false, incomplete: false });
    const huge = buildProxyV2({ address: '203.0.113.7', port: 1 });
    huge.writeUInt16BE(5000, 14);
    expect(parseProxyV2(huge)).toMatchObject({ ok: false, incomplete: false, reason: expect.stringMatching(/exceeds/) });
    expect(parseProxyV2(Buffer.from('GET / HTTP/1.1'))).toMatchObject({ ok: false, incomplete: false });
  });

  const whoFrame = frame(q('who.test', 9, RecordType.TXT));

  async function tcpWho(port: number, preamble: Buffer | null): Promise<string | null> {
    const s = net.connect(port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    const got = framedResponses(s, 1, 2000).catch(() => null);
    s.write(preamble === null ? whoFrame : Buffer.concat([preamble, whoFrame]));
    const r = await got;
    s.destroy();
    return r === null ? null : txt(decode(r[0]!));
  }

  test('TCP: trusted source — address from the header, LOCAL keeps the peer, no header closes; untrusted — header closes, plain served', async () => {
    const ports = await serve([{ transport: 'tcp', address: '127.0.0.1', port: 0, proxyProtocol: { trusted: ['127.0.0.0/8'], timeoutMs: 300 } }]);
    const port = ports.get('tcp')!;
    expect(await tcpWho(port, buildProxyV2({ address: '203.0.113.7', port: 4242 }))).toBe('203.0.113.7|tcp|');
    expect(await tcpWho(port, buildProxyV2({ address: '2001:db8::5', port: 1 }, { address: '::1', port: 53 }))).toBe('2001:db8::5|tcp|');
    expect(await tcpWho(port, buildProxyV2(null))).toBe('127.0.0.1|tcp|');
    expect(await tcpWho(port, null)).toBeNull();
    // Header split across writes, then the query: still fine.
    const s = net.connect(port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    const got = framedResponses(s, 1);
    const h = buildProxyV2({ address: '198.51.100.1', port: 5 });
    s.write(h.subarray(0, 5));
    await new Promise((r) => setTimeout(r, 30));
    s.write(Buffer.concat([h.subarray(5), whoFrame]));
    expect(txt(decode((await got)[0]!))).toBe('198.51.100.1|tcp|');
    s.destroy();
    // A trusted source that sends nothing is closed at the header deadline.
    const idle = net.connect(port, '127.0.0.1');
    expect(await closes(idle, 2000)).toBe(true);
    await resolver!.stop();
    const other = await serve([{ transport: 'tcp', address: '127.0.0.1', port: 0, proxyProtocol: { trusted: ['10.0.0.0/8'] } }]);
    expect(await tcpWho(other.get('tcp')!, buildProxyV2({ address: '203.0.113.7', port: 4242 }))).toBeNull();
    expect(await tcpWho(other.get('tcp')!, null)).toBe('127.0.0.1|tcp|');
  });

  test('DoT and DoH behind a balancer: header before the TLS handshake', async () => {
    const ports = await serve([
      { transport: 'tls', address: '127.0.0.1', port: 0, proxyProtocol: { trusted: ['127.0.0.1'] }, ...pair },
      { transport: 'https', address: '127.0.0.1', port: 0, proxyProtocol: { trusted: ['127.0.0.1'] }, ...pair },
    ]);
    const viaProxy = (port: number, alpn: string) =>
      new Promise<tls.TLSSocket>((resolve, reject) => {
        const raw = net.connect(port, '127.0.0.1', () => {
          raw.write(buildProxyV2({ address: '192.0.2.77', port: 999 }));
          const s = tls.connect({ socket: raw, rejectUnauthorized: false, ALPNProtocols: [alpn] }, () => resolve(s));
          s.on('error', reject);
        });
      });
    const s = await viaProxy(ports.get('tls')!, 'dot');
    const got = framedResponses(s, 1);
    s.write(whoFrame);
    expect(txt(decode((await got)[0]!))).toBe('192.0.2.77|tls|');
    s.destroy();
    const t = await viaProxy(ports.get('https')!, 'h2');
    const session = http2.connect('https://127.0.0.1', { createConnection: () => t });
    const body = await new Promise<Buffer>((resolve, reject) => {
      const req = session.request({ ':path': `/dns-query?dns=${q('who.test', 0, RecordType.TXT).toString('base64url')}` });
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
      req.end();
    });
    session.destroy();
    expect(txt(decode(body))).toBe('192.0.2.77|https|');
    // Without the header, a trusted source is refused.
    await expect(dot(ports.get('tls')!)).rejects.toThrow();
  });
});

describe('EDNS padding and keepalive', () => {
  test('padding sizes: DoT pads every EDNS response to 468-octet blocks by default; policy query pads only padded queries; TCP never', async () => {
    const ports = await serve([
      { transport: 'tls', address: '127.0.0.1', port: 0, ...pair },
      { transport: 'tcp', address: '127.0.0.1', port: 0 },
    ]);
    const s = await dot(ports.get('tls')!);
    const names = ['a.test', 'big.test', 'who.test'];
    const got = framedResponses(s, 4);
    s.write(Buffer.concat([...names.map((n, i) => frame(q(n, i + 1))), frame(q('noedns.test', 9, RecordType.A, null))]));
    const rs = await got;
    for (const r of rs) {
      const m = decode(r);
      if (m.id === 9) expect(m.edns).toBeUndefined();
      else expect(r.length % 468).toBe(0);
    }
    expect(rs.find((r) => decode(r).id === 2)!.length).toBe(936); // 40 records need two blocks
    s.destroy();
    const t = net.connect(ports.get('tcp')!, '127.0.0.1');
    const tgot = framedResponses(t, 1);
    t.write(frame(q('a.test', 1, RecordType.A, { udpPayloadSize: 1232, options: [{ code: 12, data: Buffer.alloc(20) }] } as never)));
    const [plain] = await tgot;
    expect(decode(plain!).edns!.options.some((o) => o.code === 12)).toBe(false);
    t.destroy();
    await resolver!.stop();
    const p2 = await serve([{ transport: 'tls', address: '127.0.0.1', port: 0, padding: 'query', ...pair }]);
    const u = await dot(p2.get('tls')!);
    const ugot = framedResponses(u, 2);
    u.write(
      Buffer.concat([
        frame(q('a.test', 1)),
        frame(q('a.test', 2, RecordType.A, { udpPayloadSize: 1232, options: [{ code: 12, data: Buffer.alloc(10) }] } as never)),
      ]),
    );
    const urs = await ugot;
    const byId = new Map(urs.map((r) => [decode(r).id, r]));
    expect(byId.get(1)!.length % 468).not.toBe(0);
    expect(byId.get(2)!.length % 468).toBe(0);
    u.destroy();
  });

  test('TCP answers edns-tcp-keepalive with the idle timeout in 100 ms units, only when asked', async () => {
    const ports = await serve([{ transport: 'tcp', address: '127.0.0.1', port: 0, idleTimeoutMs: 12_300 }]);
    const t = net.connect(ports.get('tcp')!, '127.0.0.1');
    const got = framedResponses(t, 2);
    t.write(Buffer.concat([frame(q('a.test', 1, RecordType.A, { udpPayloadSize: 1232, options: [{ code: 11 }] } as never)), frame(q('a.test', 2))]));
    const rs = new Map((await got).map((r) => [decode(r).id, r]));
    const asked = rs.get(1)!;
    const at = lastOptRdlength(asked);
    expect(asked.readUInt16BE(at + 2)).toBe(11);
    expect(asked.readUInt16BE(at + 4)).toBe(2);
    expect(asked.readUInt16BE(at + 6)).toBe(123);
    expect(queryOptions(rs.get(2)!) & 2).toBe(0);
    t.destroy();
  });

  test('addResponseOptions leaves responses without a final OPT alone and never passes 65535', () => {
    const noOpt = encode({ id: 1, qr: true, questions: [{ name: 'a.test', type: 1 }] });
    expect(addResponseOptions(noOpt, 10, 468)).toBe(noOpt);
    const withOpt = encode({ id: 1, qr: true, questions: [{ name: 'a.test', type: 1 }], edns: { udpPayloadSize: 1232 } });
    const padded = addResponseOptions(withOpt, -1, 468);
    expect(padded.length).toBe(468);
    expect(decode(padded).edns!.options[0]!.code).toBe(12);
    const both = addResponseOptions(withOpt, 50, 468);
    expect(both.length).toBe(468);
    expect(addResponseOptions(both, 50, 468)).toBe(both); // already has both
  });
});

describe('metrics of the encrypted transports', () => {
  const metricsOf = () => resolver!.container.get<CoreMetrics>(CORE_METRICS);
  /** The value of one series in the resolver's Prometheus text (0 when absent). */
  const series = async (line: string): Promise<number> => {
    const text = await resolver!.container.get<Registry>(METRICS).metrics();
    const hit = text.split('\n').find((l) => l.startsWith(`${line} `));
    return hit === undefined ? 0 : Number(hit.slice(line.length + 1));
  };
  /** A raw TCP connection that sends `bytes` (or nothing) and resolves when the server closes it. */
  const rawClosed = (port: number, bytes: Buffer | null): Promise<boolean> => {
    const s = net.connect(port, '127.0.0.1', () => {
      if (bytes !== null) s.write(bytes);
    });
    return closes(s, 3000);
  };

  test('heimdall_connections{transport} counts open DoT and DoH connections; closed ones leave it', async () => {
    const ports = await serve([
      { transport: 'tls', address: '127.0.0.1', port: 0, ...pair },
      { transport: 'https', address: '127.0.0.1', port: 0, ...pair },
      { transport: 'tcp', address: '127.0.0.1', port: 0 },
    ]);
    const m = metricsOf();
    const a = await dot(ports.get('tls')!);
    const b = await dot(ports.get('tls')!);
    const session = http2.connect(`https://127.0.0.1:${ports.get('https')}`, { rejectUnauthorized: false });
    session.on('error', () => {});
    await new Promise((r) => session.once('connect', r));
    await expect.poll(() => [m.connections.tls, m.connections.https, m.connections.tcp], { timeout: 3000, interval: 10 }).toEqual([2, 1, 0]);
    expect(await series('heimdall_connections{transport="tls"}')).toBe(2);
    expect(await series('heimdall_connections{transport="https"}')).toBe(1);
    expect(await series('heimdall_connections{transport="tcp"}')).toBe(0);
    // The deprecated total still counts every stream transport.
    expect(await series('heimdall_tcp_connections')).toBe(3);
    a.destroy();
    session.destroy();
    await expect.poll(() => [m.connections.tls, m.connections.https], { timeout: 3000, interval: 10 }).toEqual([1, 0]);
    b.destroy();
  });

  test('heimdall_connections_closed_total{transport,reason}: the per-client cap on DoT and DoH', async () => {
    const ports = await serve([
      { transport: 'tls', address: '127.0.0.1', port: 0, maxConnectionsPerClient: 1, ...pair },
      { transport: 'https', address: '127.0.0.1', port: 0, maxConnectionsPerClient: 1, ...pair },
    ]);
    const m = metricsOf();
    const kept = await dot(ports.get('tls')!);
    await expect.poll(() => m.connections.tls, { timeout: 3000, interval: 10 }).toBe(1);
    expect(await rawClosed(ports.get('tls')!, null)).toBe(true);
    const keptH2 = tls.connect({ host: '127.0.0.1', port: ports.get('https')!, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    keptH2.on('error', () => {});
    await new Promise((r) => keptH2.once('secureConnect', r));
    expect(await rawClosed(ports.get('https')!, null)).toBe(true);
    expect(await rawClosed(ports.get('https')!, null)).toBe(true);
    expect(m.connectionsClosed.tls.clientLimit).toBe(1);
    expect(m.connectionsClosed.https.clientLimit).toBe(2);
    expect(m.connectionsClosed.tcp.clientLimit).toBe(0);
    expect(await series('heimdall_connections_closed_total{transport="tls",reason="client_limit"}')).toBe(1);
    expect(await series('heimdall_connections_closed_total{transport="https",reason="client_limit"}')).toBe(2);
    expect(await series('heimdall_tcp_connections_closed_total{reason="client_limit"}')).toBe(3);
    kept.destroy();
    keptH2.destroy();
  });

  test('heimdall_tls_handshake_failures_total{transport,reason}: timeout, no ALPN, protocol error — DoT and DoH', async () => {
    const ports = await serve([
      { transport: 'tls', address: '127.0.0.1', port: 0, handshakeTimeoutMs: 200, ...pair },
      { transport: 'https', address: '127.0.0.1', port: 0, handshakeTimeoutMs: 200, ...pair },
    ]);
    const m = metricsOf();
    for (const transport of ['tls', 'https'] as const) {
      const port = ports.get(transport)!;
      const f = m.tlsHandshakeFailures[transport];
      // A client offering ALPN without our protocol (DoT: dot; DoH: h2, http/1.1).
      await expect(dot(port, { ALPNProtocols: [transport === 'tls' ? 'h2' : 'dot'] })).rejects.toThrow(/application protocol/i);
      await expect.poll(() => f.noAlpn, { timeout: 3000, interval: 10 }).toBe(1);
      // Not TLS at all, and a TLS version we do not speak.
      expect(await rawClosed(port, Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n'))).toBe(true);
      await expect(dot(port, { ALPNProtocols: [], maxVersion: 'TLSv1.1', minVersion: 'TLSv1' })).rejects.toThrow();
      await expect.poll(() => f.protocolError, { timeout: 3000, interval: 10 }).toBe(2);
      // Silence: the handshake deadline.
      expect(await rawClosed(port, null)).toBe(true);
      await expect.poll(() => f.timeout, { timeout: 3000, interval: 10 }).toBe(1);
      expect(await series(`heimdall_tls_handshake_failures_total{transport="${transport}",reason="no_alpn"}`)).toBe(1);
      expect(await series(`heimdall_tls_handshake_failures_total{transport="${transport}",reason="protocol_error"}`)).toBe(2);
      expect(await series(`heimdall_tls_handshake_failures_total{transport="${transport}",reason="timeout"}`)).toBe(1);
    }
    // A good handshake counts nothing.
    (await dot(ports.get('tls')!)).destroy();
    expect(m.tlsHandshakeFailures.tls).toEqual({ timeout: 1, noAlpn: 1, protocolError: 2 });
  });

  test('heimdall_proxy_protocol_rejected_total{transport,reason}: invalid, timeout, closed, untrusted header', async () => {
    const trusted = { trusted: ['127.0.0.1'], timeoutMs: 200 };
    const ports = await serve([
      { transport: 'tcp', address: '127.0.0.1', port: 0, proxyProtocol: trusted },
      { transport: 'tls', address: '127.0.0.1', port: 0, proxyProtocol: trusted, ...pair },
      { transport: 'https', address: '127.0.0.1', port: 0, proxyProtocol: trusted, ...pair },
    ]);
    const m = metricsOf();
    const bad = buildProxyV2({ address: '203.0.113.7', port: 1 });
    bad[12] = 0x31; // version 3
    for (const transport of ['tcp', 'tls', 'https'] as const) {
      const port = ports.get(transport)!;
      expect(await rawClosed(port, bad)).toBe(true);
      expect(await rawClosed(port, null)).toBe(true); // no header within timeoutMs
      const s = net.connect(port, '127.0.0.1', () => s.end(buildProxyV2({ address: '203.0.113.7', port: 1 }).subarray(0, 10)));
      expect(await closes(s)).toBe(true);
      await expect
        .poll(() => ({ ...m.proxyRejected[transport] }), { timeout: 3000, interval: 10 })
        .toEqual({ invalid: 1, timeout: 1, closed: 1, untrustedHeader: 0 });
      expect(await series(`heimdall_proxy_protocol_rejected_total{transport="${transport}",reason="invalid"}`)).toBe(1);
      expect(await series(`heimdall_proxy_protocol_rejected_total{transport="${transport}",reason="timeout"}`)).toBe(1);
      expect(await series(`heimdall_proxy_protocol_rejected_total{transport="${transport}",reason="closed"}`)).toBe(1);
    }
    await resolver!.stop();
    // From a source outside `trusted`, a header is refused.
    const other = await serve([{ transport: 'https', address: '127.0.0.1', port: 0, proxyProtocol: { trusted: ['10.0.0.0/8'] }, ...pair }]);
    expect(await rawClosed(other.get('https')!, buildProxyV2({ address: '203.0.113.7', port: 1 }))).toBe(true);
    expect(metricsOf().proxyRejected.https.untrustedHeader).toBe(1);
    expect(await series('heimdall_proxy_protocol_rejected_total{transport="https",reason="untrusted_header"}')).toBe(1);
  });

  test('heimdall_doh_responses_total{status}: every status sent, HTTP/2 and HTTP/1.1', async () => {
    const ports = await serve([{ transport: 'https', address: '127.0.0.1', port: 0, ...pair }]);
    const port = ports.get('https')!;
    const m = metricsOf();
    const ct = { 'content-type': 'application/dns-message' };
    const ok = `/dns-query?dns=${q('a.test').toString('base64url')}`;
    expect((await h2(port, ok)).status).toBe(200);
    expect((await h2(port, '/dns-query', { method: 'POST', headers: ct, body: q('b.test') })).status).toBe(200);
    expect((await h2(port, '/nope')).status).toBe(404);
    expect((await h2(port, '/dns-query', { method: 'DELETE' })).status).toBe(405);
    expect((await h2(port, '/dns-query?dns=@@')).status).toBe(400);
    expect((await h2(port, `/dns-query?dns=${q('drop.test').toString('base64url')}`)).status).toBe(403);
    expect((await h2(port, '/dns-query', { method: 'POST', headers: ct, body: Buffer.alloc(70_000, 1) })).status).toBe(413);
    expect((await h2(port, '/dns-query', { method: 'POST', body: q('x.test') })).status).toBe(415);
    const code = async (url: string) => (await run('curl', ['-sk', '--http1.1', '-o', '/dev/null', '-w', '%{http_code}', url], { timeout: 10_000 })).stdout;
    expect(await code(`https://127.0.0.1:${port}${ok}`)).toBe('200');
    expect(await code(`https://127.0.0.1:${port}/nope`)).toBe('404');
    const want = { 200: 3, 400: 1, 403: 1, 404: 2, 405: 1, 413: 1, 415: 1 };
    const counted = () => Object.fromEntries(m.dohResponses.flatMap((n, status) => (n > 0 ? [[status, n]] : [])));
    await expect.poll(counted, { timeout: 3000, interval: 10 }).toEqual(want);
    for (const [status, n] of Object.entries(want)) expect(await series(`heimdall_doh_responses_total{status="${status}"}`)).toBe(n);
  });
});
