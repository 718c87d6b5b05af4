/**
 * Hardening: suspect refreshes, required lists, start without waiting for
 * downloads, the cache directory and temp files. A local HTTP list server and
 * temp directories; no sleeps (waits are on events: `idle()`, request counts).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { BLOCKING_CONTROL, type HeimdallPlugin, METRICS, type Registry } from '@heimdall/core';
import { expectAnswers, expectRcode, query, response, type TestResolver, testResolver } from '@heimdall/testing';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlockingOptionsInput } from './options.js';
import { blocking } from './plugin.js';
import type { BlockingService } from './service.js';

const GOOD = Array.from({ length: 100 }, (_, i) => `0.0.0.0 ad${i}.example`).join('\n');

/** A list server whose answer is scriptable; `hold()` keeps requests waiting until `release()`. */
class ListServer {
  body: string | Buffer = GOOD;
  etag: string | null = '"v1"';
  requests = 0;
  #held: (() => void)[] | null = null;
  server: Server;
  constructor() {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      this.requests++;
      const answer = () => {
        if (this.etag !== null && req.headers['if-none-match'] === this.etag) {
          res.writeHead(304).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain', ...(this.etag !== null ? { etag: this.etag } : {}) }).end(this.body);
      };
      if (this.#held !== null) this.#held.push(answer);
      else answer();
    });
  }
  hold(): void {
    this.#held = [];
  }
  release(): void {
    const held = this.#held ?? [];
    this.#held = null;
    for (const a of held) a();
  }
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/list.txt`;
  }
  close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

interface LogLine {
  level: number;
  msg: string;
  list?: string;
  suppressed?: number;
}

const stub: HeimdallPlugin = {
  name: 'stub',
  middleware: () => (ctx) => void (ctx.response = response(ctx.request, { answers: [{ name: ctx.query.qname, type: 1, data: '192.0.2.80' }] })),
};

let srv: ListServer;
let url: string;
let dir: string;
let logs: LogLine[];
const resolvers: TestResolver[] = [];
beforeEach(async () => {
  srv = new ListServer();
  url = await srv.listen();
  dir = await mkdtemp(join(tmpdir(), 'heimdall-blocking-hardening-'));
  logs = [];
});
afterEach(async () => {
  for (const r of resolvers.splice(0)) await r.stop();
  await srv.close();
  await rm(dir, { recursive: true, force: true });
});

function resolverWith(options: BlockingOptionsInput, instance?: { name?: string; path?: string }): TestResolver {
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, cb) {
        logs.push(JSON.parse(String(chunk)));
        cb();
      },
    }),
  );
  const r = testResolver([blocking({ build: 'inline', cacheDir: join(dir, 'cache'), groups: { ads: { block: [url] } }, ...options }, instance), stub], {
    logger,
  });
  resolvers.push(r);
  return r;
}

async function started(options: BlockingOptionsInput = {}): Promise<{ r: TestResolver; svc: BlockingService }> {
  const r = resolverWith(options);
  await r.start();
  const svc = r.get<BlockingService>(BLOCKING_CONTROL);
  await svc.idle();
  return { r, svc };
}

const blocked = async (r: TestResolver, name: string) => expectRcode(await r.handle(query(name)), 'NXDOMAIN');
const passed = async (r: TestResolver, name: string) => expectAnswers(await r.handle(query(name)), ['192.0.2.80']);

describe('a refresh that loses most of a list is rejected; the last good list stays', () => {
  it.each([
    ['an empty 200', ''],
    ['random bytes', randomBytes(4096)],
    ['only invalid lines', Array.from({ length: 200 }, (_, i) => `*bad${i}.example ^^ $$`).join('\n')],
  ])('%s', async (_what, body) => {
    const { r, svc } = await started();
    await blocked(r, 'ad7.example');
    srv.body = body;
    srv.etag = '"v2"';
    const res = await svc.reload();
    expect(res).toMatchObject({ rejected: 1, changed: 0 });
    await blocked(r, 'ad7.example');
    const st = svc.status().lists[0]!;
    expect(st.entries).toBe(100);
    expect(st.lastError).toMatch(/^refresh rejected as suspect: 0 entries .* the last good copy has 100; below refresh\.minRetainedRatio 0\.5/);
    const metrics = await r.get<Registry>(METRICS).metrics();
    expect(metrics).toContain(`heimdall_blocking_refresh_total{list="${url}",result="suspect"} 1`);
    expect(logs.filter((l) => l.level === 40 && /lost most of the list/.test(l.msg))).toHaveLength(1);
  });

  it('warnings are rate-limited; the same bad copy is not fetched and judged again (304 on its ETag)', async () => {
    const { r, svc } = await started({ refresh: { retry: 60_000 } });
    srv.body = '';
    srv.etag = null; // no validators: every refresh downloads and judges again
    for (let i = 0; i < 3; i++) expect((await svc.reload()).rejected).toBe(1);
    expect(logs.filter((l) => /lost most of the list/.test(l.msg))).toHaveLength(1);
    expect(await r.get<Registry>(METRICS).metrics()).toContain(`heimdall_blocking_refresh_total{list="${url}",result="suspect"} 3`);
    srv.etag = '"bad"';
    expect((await svc.reload()).rejected).toBe(1);
    const before = srv.requests;
    expect(await svc.reload()).toMatchObject({ rejected: 0, changed: 0 }); // 304 for the rejected copy
    expect(srv.requests).toBe(before + 1);
    expect(svc.status().lists[0]!.lastError).toMatch(/suspect/);
    await blocked(r, 'ad1.example');
  });

  it('a list that shrinks within the ratio is accepted; acceptSmaller accepts a big cut; 0 disables the check', async () => {
    const { r, svc } = await started();
    srv.body = Array.from({ length: 60 }, (_, i) => `0.0.0.0 ad${i}.example`).join('\n');
    srv.etag = '"v2"';
    expect((await svc.reload()).changed).toBe(1);
    await passed(r, 'ad70.example');
    srv.body = '0.0.0.0 ad1.example\n';
    srv.etag = '"v3"';
    expect((await svc.reload()).rejected).toBe(1);
    await blocked(r, 'ad50.example');
    expect(await svc.reload({ acceptSmaller: true })).toMatchObject({ changed: 1, rejected: 0 });
    await passed(r, 'ad50.example');
    expect(svc.status().lists[0]).toMatchObject({ entries: 1, lastError: null });

    const { r: r2, svc: svc2 } = await started({ cacheDir: join(dir, 'other'), refresh: { minRetainedRatio: 0 } });
    srv.body = '';
    srv.etag = '"v4"';
    expect((await svc2.reload()).changed).toBe(1);
    await passed(r2, 'ad1.example');
  });

  it('a local file truncated to 0 bytes (or rewritten with garbage) keeps the last good list, also across a restart', async () => {
    const file = join(dir, 'local.txt');
    await writeFile(file, GOOD);
    const { r, svc } = await started({ groups: { ads: { block: [file] } } });
    await blocked(r, 'ad3.example');
    await truncate(file, 0);
    expect((await svc.reload()).rejected).toBe(1);
    await blocked(r, 'ad3.example');
    expect(svc.status().lists[0]!.lastError).toMatch(/suspect: 0 entries \(0 bytes\)/);
    await writeFile(file, '!!!\n???\n');
    expect((await svc.reload()).rejected).toBe(1);
    await blocked(r, 'ad3.example');
    await r.stop();
    resolvers.splice(resolvers.indexOf(r), 1);
    // A restart with the bad file still blocks: the last good copy is on disk.
    const { r: r2, svc: svc2 } = await started({ groups: { ads: { block: [file] } } });
    await blocked(r2, 'ad3.example');
    expect(svc2.status().lists[0]!.lastError).toMatch(/suspect/);
  });
});

describe('required lists', () => {
  it('a missing required file fails start with an error naming the option path', async () => {
    const r = resolverWith({ groups: { ads: { block: [join(dir, 'nope.txt'), { source: join(dir, 'missing.txt'), required: true }] } } });
    await expect(r.start()).rejects.toMatchObject({
      code: 'BLOCKING_REQUIRED_LIST',
      message: expect.stringMatching(/^blocking\.groups\.ads\.block\[1\]: required list '.*missing\.txt' could not be loaded: ENOENT/),
    });
  });

  it('given a config path (as the app gives plugins[1].options), the error names it, not the instance name', async () => {
    const r = resolverWith(
      { groups: { ads: { block: [{ source: join(dir, 'missing.txt'), required: true }] } } },
      { name: 'blocking-kids', path: 'plugins[1].options' },
    );
    const err = await r.start().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toMatchObject({ code: 'BLOCKING_REQUIRED_LIST' });
    expect(err!.message).toMatch(/^plugins\[1\]\.options\.groups\.ads\.block\[0\]: required list '.*missing\.txt' could not be loaded: ENOENT/);
    expect(err!.stack).toContain('plugins[1].options.groups.ads.block[0]');
  });

  it('a required URL without a disk copy is awaited: it fails start when unreachable, blocks at once when it arrives', async () => {
    await srv.close();
    const down = resolverWith({ groups: { ads: { block: [{ source: url, required: true }] } } });
    await expect(down.start()).rejects.toMatchObject({ code: 'BLOCKING_REQUIRED_LIST', message: expect.stringContaining('blocking.groups.ads.block[0]') });
    srv = new ListServer();
    const up = await srv.listen();
    const r = resolverWith({ groups: { ads: { block: [{ source: up, required: true }] } } });
    await r.start();
    await blocked(r, 'ad9.example'); // no idle(): start() waited for it
  });

  it('an optional missing list does not fail start', async () => {
    const { r, svc } = await started({ groups: { ads: { block: [join(dir, 'nope.txt'), { inline: 'x.example' }] } } });
    await blocked(r, 'x.example');
    expect(svc.status().lists[0]!.lastError).toMatch(/ENOENT/);
  });
});

describe('retries', () => {
  it('a list missing at start is retried after refresh.retry even when the background downloads succeeded', async () => {
    const file = join(dir, 'later.txt');
    const { r, svc } = await started({ refresh: { retry: 60_000 }, groups: { ads: { block: [url, file] } } });
    await blocked(r, 'ad1.example');
    await passed(r, 'later.example');
    await writeFile(file, 'later.example\n');
    (r.clock as { advance(ms: number): number }).advance(60_000);
    await expect.poll(async () => (await r.handle(query('later.example')))!.readUInt8(3) & 0xf).toBe(3);
    await svc.idle();
    expect(svc.status().lists[1]!.lastError).toBeNull();
  });
});

describe('start() serves while lists load', () => {
  it('does not wait for downloads: serves unblocked with a warning, installs the list when it arrives', async () => {
    srv.hold();
    const file = join(dir, 'local.txt');
    await writeFile(file, 'local.example\n');
    const r = resolverWith({ groups: { ads: { block: [url, file] } } });
    await r.start(); // resolves while the download is held
    const svc = r.get<BlockingService>(BLOCKING_CONTROL);
    await blocked(r, 'local.example');
    await passed(r, 'ad1.example');
    expect(svc.status().building).toBe(true);
    expect(logs.some((l) => l.level === 40 && /serving without it until the download arrives/.test(l.msg))).toBe(true);
    await expect.poll(() => srv.requests).toBe(1);
    srv.release();
    await svc.idle();
    await blocked(r, 'ad1.example');
  });

  it('with a disk copy, blocks from it at once while the refresh runs', async () => {
    const { r: first } = await started();
    await first.stop();
    resolvers.splice(resolvers.indexOf(first), 1);
    srv.hold();
    const r = resolverWith({});
    await r.start();
    await blocked(r, 'ad2.example');
    srv.release();
    await r.get<BlockingService>(BLOCKING_CONTROL).idle();
  });
});

describe('cache directory and temp files', () => {
  it('temp files of killed processes are swept at start; nothing per process is left after a stop', async () => {
    const cache = join(dir, 'cache');
    await mkdir(cache, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', '']).pid!; // exited: its pid is free
    await writeFile(join(cache, `0123abcd.${dead}.0.tmp`), 'half a download');
    await writeFile(join(cache, `0123abcd.json.${dead}.0.tmp`), '{');
    await writeFile(join(cache, `keep.${process.pid}.0.tmp`), 'ours');
    const { r } = await started();
    await blocked(r, 'ad1.example');
    await r.stop();
    resolvers.splice(resolvers.indexOf(r), 1);
    const names = (await readdir(cache)).sort();
    expect(names.filter((n) => n.includes(String(dead)))).toEqual([]);
    expect(names.filter((n) => n.endsWith('.tmp'))).toEqual([`keep.${process.pid}.0.tmp`]);
    expect(names.filter((n) => !n.endsWith('.tmp')).map((n) => n.replace(/^[0-9a-f]{40}/, '<sha1>'))).toEqual(['<sha1>.json', '<sha1>.list']);
  });

  it('the default cache directory is stable per user (XDG_CACHE_HOME), not a per-process temp dir', async () => {
    const prev = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = join(dir, 'xdg');
    try {
      const r = testResolver([blocking({ build: 'inline', groups: { ads: { block: [url] } } }), stub]);
      resolvers.push(r);
      await r.start();
      await r.get<BlockingService>(BLOCKING_CONTROL).idle();
      await blocked(r, 'ad4.example');
      expect((await readdir(join(dir, 'xdg', 'heimdall', 'lists'))).filter((n) => n.endsWith('.list'))).toHaveLength(1);
    } finally {
      if (prev === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = prev;
    }
  });
});

describe('check() preflight (heimdall --check)', () => {
  it('reports missing files, paths that are not files or cannot be read, and an unusable cacheDir, by option path', async () => {
    const file = join(dir, 'ok.txt');
    await writeFile(file, GOOD);
    await writeFile(join(dir, 'plain-file'), 'x');
    const plugin = blocking({
      cacheDir: join(dir, 'plain-file', 'cache'),
      groups: {
        ads: {
          block: [file, { source: join(dir, 'missing.txt'), required: true }, dir, url],
          allow: [join(dir, 'plain-file', 'x.txt'), { inline: 'ok.example' }],
        },
      },
    });
    expect(await plugin.check!()).toEqual([
      `blocking.groups.ads.block[1]: required list file '${join(dir, 'missing.txt')}' does not exist`,
      `blocking.groups.ads.block[2]: list '${dir}' is not a file`,
      `blocking.groups.ads.allow[0]: list file '${join(dir, 'plain-file', 'x.txt')}' cannot be read (ENOTDIR)`,
      `blocking.cacheDir: '${join(dir, 'plain-file')}' is not a directory`,
    ]);
    expect(await blocking({ cacheDir: join(dir, 'new', 'cache'), groups: { ads: { block: [file, url] } } }).check!()).toEqual([]);
  });

  it('given a config path, each problem names it (plugins[1].options…); without one, the instance name', async () => {
    await writeFile(join(dir, 'plain-file'), 'x');
    const options = { cacheDir: join(dir, 'plain-file', 'cache'), groups: { ads: { block: [join(dir, 'missing.txt')] } } };
    expect(await blocking(options, { name: 'blocking-kids', path: 'plugins[1].options' }).check!()).toEqual([
      `plugins[1].options.groups.ads.block[0]: list file '${join(dir, 'missing.txt')}' does not exist`,
      `plugins[1].options.cacheDir: '${join(dir, 'plain-file')}' is not a directory`,
    ]);
    expect(await blocking(options, { name: 'blocking-kids' }).check!()).toEqual([
      `blocking-kids.groups.ads.block[0]: list file '${join(dir, 'missing.txt')}' does not exist`,
      `blocking-kids.cacheDir: '${join(dir, 'plain-file')}' is not a directory`,
    ]);
  });
});
