import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BLOCKING_CONTROL, parseOptions } from '@heimdall/core';
import { expectAnswers, expectRcode, query, response, type TestResolver, testResolver } from '@heimdall/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildInWorker } from './build.js';
import { DECISION_BLOCKED, DECISION_MASK, Engine } from './engine.js';
import { randomSeed } from './hash.js';
import { type BlockingOptionsInput, blockingOptionsSchema, compileOptions } from './options.js';
import { blocking } from './plugin.js';
import type { BlockingService } from './service.js';
import { initialState, refreshSource } from './sources.js';

/** A list server on 127.0.0.1:0 with scriptable content, ETag and failures. */
class ListServer {
  body = '0.0.0.0 first.example\n';
  contentType = 'text/plain';
  etag = '"v1"';
  lastModified = 'Sat, 01 Nov 2026 10:00:00 GMT';
  fail: number | null = null;
  requests: { ifNoneMatch?: string; ifModifiedSince?: string; status: number }[] = [];
  server: Server;
  constructor() {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const rec = { ifNoneMatch: req.headers['if-none-match'], ifModifiedSince: req.headers['if-modified-since'], status: 200 };
      this.requests.push(rec);
      if (this.fail !== null) {
        rec.status = this.fail;
        res.writeHead(this.fail).end('nope');
        return;
      }
      if (req.headers['if-none-match'] === this.etag) {
        rec.status = 304;
        res.writeHead(304).end();
        return;
      }
      res.writeHead(200, { 'content-type': this.contentType, etag: this.etag, 'last-modified': this.lastModified }).end(this.body);
    });
  }
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hosts.txt`;
  }
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

let srv: ListServer;
let url: string;
let dir: string;
const resolvers: TestResolver[] = [];
beforeEach(async () => {
  srv = new ListServer();
  url = await srv.listen();
  dir = await mkdtemp(join(tmpdir(), 'heimdall-blocking-test-'));
});
afterEach(async () => {
  for (const r of resolvers.splice(0)) await r.stop();
  await srv.close();
  await rm(dir, { recursive: true, force: true });
});

/** A started resolver whose background downloads are done. */
async function make(extra: BlockingOptionsInput = {}): Promise<TestResolver> {
  const r = testResolver([
    blocking({ build: 'inline', cacheDir: dir, groups: { ads: { block: [url] } }, ...extra }),
    {
      name: 'stub',
      middleware: () => (ctx) => void (ctx.response = response(ctx.request, { answers: [{ name: ctx.query.qname, type: 1, data: '192.0.2.80' }] })),
    },
  ]);
  resolvers.push(r);
  await r.start();
  await r.get<BlockingService>(BLOCKING_CONTROL).idle();
  return r;
}

describe('refresh from HTTP', () => {
  it('downloads, then revalidates with If-None-Match / If-Modified-Since (304 keeps the list)', async () => {
    const r = await make();
    const svc = r.get<BlockingService>(BLOCKING_CONTROL);
    expectRcode(await r.handle(query('first.example')), 'NXDOMAIN');
    expect(srv.requests[0]!.ifNoneMatch).toBeUndefined();
    const res = await svc.reload();
    expect(res).toEqual({ rebuilt: true, changed: 0, failed: 0, rejected: 0 });
    expect(srv.requests[1]).toMatchObject({ ifNoneMatch: '"v1"', ifModifiedSince: 'Sat, 01 Nov 2026 10:00:00 GMT', status: 304 });
    expectRcode(await r.handle(query('first.example')), 'NXDOMAIN');
    // New content with a new ETag is picked up
    srv.body = '0.0.0.0 second.example\n';
    srv.etag = '"v2"';
    const res2 = await svc.reload();
    expect(res2.changed).toBe(1);
    expectAnswers(await r.handle(query('first.example')), ['192.0.2.80']);
    expectRcode(await r.handle(query('second.example')), 'NXDOMAIN');
    const st = svc.status().lists[0]!;
    expect(st).toMatchObject({ name: url, source: 'url', entries: 1, lastError: null });
    expect(st.lastRefresh).toBe(r.clock.now());
  });

  it('a failed download keeps the last good list and records the error; the periodic timer retries', async () => {
    const r = await make({ refresh: { interval: 3_600_000, retry: 60_000 } });
    const svc = r.get<BlockingService>(BLOCKING_CONTROL);
    srv.fail = 500;
    const res = await svc.reload();
    expect(res.failed).toBe(1);
    expectRcode(await r.handle(query('first.example')), 'NXDOMAIN');
    expect(svc.status().lists[0]!.lastError).toMatch(/HTTP 500/);
    // the retry timer (60 s) fires on the fake clock and succeeds
    srv.fail = null;
    srv.body = '0.0.0.0 third.example\n';
    srv.etag = '"v3"';
    const before = srv.requests.length;
    (r.clock as { advance(ms: number): number }).advance(60_000);
    await expect.poll(() => srv.requests.length, { timeout: 5000 }).toBeGreaterThan(before);
    await expect.poll(async () => (await r.handle(query('third.example')))!.readUInt8(3) & 0xf, { timeout: 5000 }).toBe(3);
    expect(svc.status().lists[0]!.lastError).toBeNull();
  });

  it('a body above maxBytes is refused and does not replace the last good copy', async () => {
    const r = await make({ refresh: { maxBytes: 100 } });
    const svc = r.get<BlockingService>(BLOCKING_CONTROL);
    srv.body = `0.0.0.0 big.example\n${'#'.repeat(200)}\n`;
    srv.etag = '"big"';
    const res = await svc.reload();
    expect(res.failed).toBe(1);
    expect(svc.status().lists[0]!.lastError).toMatch(/maxBytes/);
    expectRcode(await r.handle(query('first.example')), 'NXDOMAIN');
    expectAnswers(await r.handle(query('big.example')), ['192.0.2.80']);
  });

  it('an HTML page served with 200 (captive portal) does not replace the list', async () => {
    const r = await make();
    const svc = r.get<BlockingService>(BLOCKING_CONTROL);
    srv.body = '\n  <!doctype html><html><body>Please log in</body></html>';
    srv.contentType = 'text/html; charset=utf-8';
    srv.etag = '"portal"';
    expect((await svc.reload()).failed).toBe(1);
    expect(svc.status().lists[0]!.lastError).toMatch(/HTML page/);
    expectRcode(await r.handle(query('first.example')), 'NXDOMAIN');
  });

  it('the same URL in two groups gets two names and works in both', async () => {
    const r = await make({ groups: { a: { block: [url] }, b: { block: [url] } }, clients: { default: ['a'], '10.0.0.0/8': ['b'] } });
    const names = r
      .get<BlockingService>(BLOCKING_CONTROL)
      .status()
      .lists.map((l) => l.name);
    expect(names).toEqual([`a.block:${url}`, `b.block:${url}`]);
    expectRcode(await r.handle(query('first.example')), 'NXDOMAIN');
    expectRcode(await r.handle(query('first.example'), { address: '10.1.1.1' }), 'NXDOMAIN');
  });

  it('offline start: a restart without network blocks from the disk copy', async () => {
    const r1 = await make();
    expectRcode(await r1.handle(query('first.example')), 'NXDOMAIN');
    await r1.stop();
    resolvers.splice(resolvers.indexOf(r1), 1);
    await srv.close();
    // The server is gone (connection refused). A new resolver with the same cacheDir still blocks.
    const r2 = await make();
    expectRcode(await r2.handle(query('first.example')), 'NXDOMAIN');
    const st = r2.get<BlockingService>(BLOCKING_CONTROL).status().lists[0]!;
    expect(st.entries).toBe(1);
    expect(st.lastError).not.toBeNull();
    srv = new ListServer(); // for afterEach
    await srv.listen();
  });

  it('no network and no disk copy: starts with nothing blocked and reports the error', async () => {
    await srv.close();
    const r = await make({ cacheDir: join(dir, 'empty') });
    expectAnswers(await r.handle(query('first.example')), ['192.0.2.80']);
    expect(r.get<BlockingService>(BLOCKING_CONTROL).status().lists[0]!.lastError).toBeTruthy();
    srv = new ListServer();
    await srv.listen();
  });

  it('timeout bound on downloads', async () => {
    const slow = createServer(() => {}); // never answers
    await new Promise<void>((res) => slow.listen(0, '127.0.0.1', res));
    const list = compileOptions(
      parseOptions(blockingOptionsSchema, { groups: { g: { block: [`http://127.0.0.1:${(slow.address() as AddressInfo).port}/x`] } } }, 'blocking'),
    ).lists[0]!;
    const state = initialState(list);
    const t = Date.now();
    const result = await refreshSource(state, { dir, timeoutMs: 200, maxBytes: 1000, now: Date.now });
    expect(result).toBe('failed');
    expect(Date.now() - t).toBeLessThan(3000);
    slow.closeAllConnections();
    await new Promise((res) => slow.close(res));
  });

  it('local files: changes are picked up on reload, a vanished file keeps the current lists', async () => {
    const file = join(dir, 'local.txt');
    await writeFile(file, 'one.example\n');
    const r = await make({ groups: { ads: { block: [file] } } });
    const svc = r.get<BlockingService>(BLOCKING_CONTROL);
    expectRcode(await r.handle(query('one.example')), 'NXDOMAIN');
    await writeFile(file, 'two.example\nthree.example\n');
    await svc.reload();
    expectRcode(await r.handle(query('two.example')), 'NXDOMAIN');
    await rm(file);
    const res = await svc.reload();
    expect(res.failed).toBe(1);
    expectRcode(await r.handle(query('three.example')), 'NXDOMAIN');
  });
});

describe('worker build', () => {
  it('builds in a worker thread and transfers the table back', async () => {
    const file = join(dir, 'w.txt');
    await writeFile(file, Array.from({ length: 5000 }, (_, i) => `0.0.0.0 host${i}.worker.example`).join('\n'));
    const out = await buildInWorker({
      seed: randomSeed(),
      regex: { maxLength: 256, maxUnbounded: 2 },
      expected: 5000,
      sources: [
        { spec: { id: 0, group: 0, allow: false, exact: false, registrable: false, maxEntries: 1e6 }, content: { kind: 'file', path: file } },
        {
          spec: { id: 1, group: 0, allow: false, exact: false, registrable: false, maxEntries: 1e6 },
          content: { kind: 'text', text: '/^rx[0-9]+\\./\nco.uk\n' },
        },
      ],
    });
    const e = new Engine(out);
    expect(e.table.size).toBe(5000);
    expect(e.decide('a.host4999.worker.example', 1) & DECISION_MASK).toBe(DECISION_BLOCKED);
    expect(e.decide('rx1.example', 1) & DECISION_MASK).toBe(DECISION_BLOCKED);
    expect(e.counts[1]!.refusedPublicSuffix).toBe(1);
  });

  it('a build that fails inside the worker is reported as BUILD_FAILED (no inline retry)', async () => {
    await expect(
      buildInWorker({
        seed: randomSeed(),
        regex: { maxLength: 256, maxUnbounded: 2 },
        expected: 10,
        sources: [
          {
            spec: { id: 0, group: 0, allow: false, exact: false, registrable: false, maxEntries: 10 },
            content: { kind: 'file', path: join(dir, 'missing.txt') },
          },
        ],
      }),
    ).rejects.toMatchObject({ name: 'BuildError', code: 'BUILD_FAILED' });
  });

  it('downloaded lists are built in the worker from the disk copy', async () => {
    srv.body = Array.from({ length: 2000 }, (_, i) => `0.0.0.0 dl${i}.example`).join('\n');
    const r = await make({ build: 'worker' });
    expectRcode(await r.handle(query('x.dl1999.example')), 'NXDOMAIN');
    expect(r.get<BlockingService>(BLOCKING_CONTROL).status()).toMatchObject({ domains: 2000, lastBuildMs: expect.any(Number), lastBuildMode: 'worker' });
  });

  it('the plugin uses the worker by default', async () => {
    const r = testResolver([blocking({ cacheDir: dir, groups: { ads: { block: [{ inline: 'w.example' }] } } })]);
    resolvers.push(r);
    await r.start();
    expectRcode(await r.handle(query('x.w.example')), 'NXDOMAIN');
    expect(r.get<BlockingService>(BLOCKING_CONTROL).status().lastBuildMode).toBe('worker');
  });
});
