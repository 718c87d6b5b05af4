/**
 * Blocking's enable/disable switch kept in the persistence plugin's state
 * store (LMDB, STATE_STORE): two resolvers on one directory (as two workers
 * are) follow each other's disable and enable, a restart keeps a disable;
 * and the built app with --cache-dir: disabled for a minute through the
 * admin API, restarted, a listed name still resolves.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BLOCKING_CONTROL, type BlockingControl, type HeimdallPlugin } from '@heimdall/core';
import { systemClock } from '@heimdall/core/pipeline';
import blocking from '@heimdall/plugin-blocking';
import persistence from '@heimdall/plugin-persistence';
import { expectAnswers, expectRcode, FakeUpstream, query, record, response, type TestResolver, testResolver } from '@heimdall/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AppProcess, admin, dig, startServing } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'heimdall-e2e-blocking-state-'));

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('blocking + persistence in one process tree: two resolvers on one directory', () => {
  const stateDir = join(dir, 'state');
  const resolvers: TestResolver[] = [];
  const stub: HeimdallPlugin = {
    name: 'stub',
    middleware: () => (ctx) => {
      ctx.response = response(ctx.request, { answers: [record(ctx.query.qname, 'A', '192.0.2.80', 300)] });
    },
  };
  async function worker(): Promise<TestResolver> {
    const r = testResolver(
      [
        persistence({ dir: stateDir, statePollMs: 50 }),
        blocking({ build: 'inline', cacheDir: join(dir, 'lists'), groups: { ads: { block: [{ inline: 'ads.example\n' }] } } }),
        stub,
      ],
      { clock: systemClock },
    );
    resolvers.push(r);
    await r.start();
    return r;
  }
  const control = (r: TestResolver) => r.get<BlockingControl>(BLOCKING_CONTROL);
  afterEach(async () => {
    for (const r of resolvers.splice(0)) await r.stop();
  });

  it('a disable in A reaches B with the same end time; an enable in B reaches A', async () => {
    const a = await worker();
    const b = await worker();
    expectRcode(await b.handle(query('ads.example')), 'NXDOMAIN');
    control(a).disable(60_000);
    const end = control(a).status().disabledUntil;
    await until(() => !control(b).status().enabled);
    expect(control(b).status().disabledUntil).toBe(end);
    expectAnswers(await b.handle(query('ads.example')), ['192.0.2.80']);
    control(b).enable();
    await until(() => control(a).status().enabled);
    expectRcode(await a.handle(query('ads.example')), 'NXDOMAIN');
  });

  it('a restart keeps a disable (timed and indefinite); an enable before the restart is kept too', async () => {
    const a = await worker();
    control(a).disable(60_000);
    const end = control(a).status().disabledUntil;
    await a.stop();
    resolvers.splice(0);
    const b = await worker();
    expect(control(b).status()).toMatchObject({ enabled: false, disabledUntil: end });
    expectAnswers(await b.handle(query('ads.example')), ['192.0.2.80']);
    control(b).disable();
    await b.stop();
    resolvers.splice(0);
    const c = await worker();
    expect(control(c).status()).toMatchObject({ enabled: false, disabledUntil: null });
    control(c).enable();
    await c.stop();
    resolvers.splice(0);
    const d = await worker();
    expect(control(d).status().enabled).toBe(true);
    expectRcode(await d.handle(query('ads.example')), 'NXDOMAIN');
  });
});

describe('the app with --cache-dir: a disable survives a restart', () => {
  let up: FakeUpstream;
  const cacheDir = join(dir, 'app-cache');
  const list = join(dir, 'ads.txt');
  const apps: AppProcess[] = [];

  beforeAll(async () => {
    up = await FakeUpstream.start({ fallback: (q) => [record(q.name, 'A', '192.0.2.50', 60)] });
    writeFileSync(list, 'ads.example.com\n');
  }, 30_000);
  afterAll(async () => {
    for (const app of apps) await app.stop();
    await up?.close();
  });

  async function start(): Promise<AppProcess> {
    const app = await startServing(
      [{ use: 'cache' }, { use: 'upstream', options: { servers: [`127.0.0.1:${up.port}`] } }],
      ['--blocklist', list, '--cache-dir', cacheDir],
    );
    apps.push(app);
    return app;
  }

  it('POST /blocking/disable?duration=1m, restart: a listed name still resolves, and status says until when', async () => {
    const first = await start();
    expect(first.listening.chain).toEqual(expect.arrayContaining(['blocking', 'cache', 'upstream'])); // persistence has no middleware
    expect((await dig(first.port, ['ads.example.com'])).status).toBe('NXDOMAIN');
    const off = await admin(first.adminUrl!, '/blocking/disable?duration=1m', { method: 'POST', headers: { 'X-Heimdall-Request': '1' } });
    expect(off.status).toBe(200);
    const { disabledUntil } = off.json() as { enabled: boolean; disabledUntil: number };
    expect(disabledUntil).toBeGreaterThan(Date.now() + 50_000);
    expect(await first.stop()).toBe(0);

    const second = await start();
    const resolved = await dig(second.port, ['ads.example.com']);
    expect(resolved.status).toBe('NOERROR');
    expect(resolved.answers[0]?.data).toBe('192.0.2.50');
    const status = (await admin(second.adminUrl!, '/blocking/status')).json() as { enabled: boolean; disabledUntil: number | null };
    expect(status).toMatchObject({ enabled: false, disabledUntil });
    // Enabled again through the admin API: blocks at once, and a restart keeps that too.
    await admin(second.adminUrl!, '/blocking/enable', { method: 'POST', headers: { 'X-Heimdall-Request': '1' } });
    expect((await dig(second.port, ['ads.example.com', 'AAAA'])).status).toBe('NXDOMAIN');
    expect(await second.stop()).toBe(0);
    const third = await start();
    expect((await dig(third.port, ['ads.example.com', 'TXT'])).status).toBe('NXDOMAIN');
  }, 60_000);
});
