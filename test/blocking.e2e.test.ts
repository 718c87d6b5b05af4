/**
 * Blocking in the reference app, end to end: a list file given with
 * --blocklist, real dig queries, the admin blocking endpoints and SIGHUP.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { FakeUpstream, record } from '@heimdall/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppProcess, admin, dig, freePort, startApp } from './helpers.js';

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

let up: FakeUpstream;
let app: AppProcess;
const dir = mkdtempSync(join(os.tmpdir(), 'heimdall-block-'));
const list = join(dir, 'ads.txt');

beforeAll(async () => {
  up = await FakeUpstream.start({ fallback: (q) => [record(q.name, 'A', '192.0.2.50', 60)] });
  writeFileSync(list, '# test list\nads.example.com\n0.0.0.0 tracker.example.net\n');
  const port = await freePort();
  app = await startApp(
    {
      listen: [`127.0.0.1:${port}`],
      admin: { listen: '127.0.0.1:0' },
      logLevel: 'info',
      plugins: [{ use: 'metrics' }, { use: 'special-use' }, { use: 'cache' }, { use: 'upstream', options: { servers: [`127.0.0.1:${up.port}`] } }],
    },
    ['--blocklist', list],
  );
});

afterAll(async () => {
  if (app) expect(await app.stop()).toBe(0);
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('blocking (--blocklist)', () => {
  it('blocks a listed name and its subdomains, answers the rest', async () => {
    expect(app.listening.chain).toEqual(['metrics', 'acl', 'special-use', 'blocking', 'cache', 'upstream']);
    const blocked = await dig(app.port, ['ads.example.com']);
    expect(blocked.status).toBe('NXDOMAIN');
    expect(blocked.raw).toMatch(/EDE: 15 \(Blocked\)/);
    expect((await dig(app.port, ['deep.sub.ADS.example.com'])).status).toBe('NXDOMAIN');
    expect((await dig(app.port, ['tracker.example.net'])).status).toBe('NXDOMAIN');
    const fine = await dig(app.port, ['example.com']);
    expect(fine.status).toBe('NOERROR');
    expect(fine.answers[0]?.data).toBe('192.0.2.50');
    expect(up.count('ads.example.com')).toBe(0);
  });

  it('disables (for a while), enables and reports status over the admin API', async () => {
    const base = app.adminUrl!;
    const status = (await admin(base, '/blocking/status')).json() as { enabled: boolean; domains: number };
    expect(status.enabled).toBe(true);
    expect(status.domains).toBe(2);
    const off = await admin(base, '/blocking/disable?duration=2s', { method: 'POST', headers: { 'x-heimdall-request': '1' } });
    expect(off.status).toBe(200);
    expect((off.json() as { enabled: boolean; disabledUntil: number }).enabled).toBe(false);
    expect((await dig(app.port, ['+noedns', 'ads.example.com'])).status).toBe('NOERROR');
    const on = await admin(base, '/blocking/enable', { method: 'POST', headers: { 'x-heimdall-request': '1' } });
    expect((on.json() as { enabled: boolean }).enabled).toBe(true);
    expect((await dig(app.port, ['ads.example.com', 'AAAA'])).status).toBe('NXDOMAIN');
    expect((await admin(base, '/blocking/disable?duration=forever', { method: 'POST', headers: { 'x-heimdall-request': '1' } })).status).toBe(400);
  });

  it('reloads lists on POST /blocking/reload and on SIGHUP', async () => {
    const base = app.adminUrl!;
    writeFileSync(list, 'ads.example.com\ntracker.example.net\nnew.example.org\n');
    const r = await admin(base, '/blocking/reload', { method: 'POST', headers: { 'x-heimdall-request': '1' } });
    expect(r.status).toBe(200);
    expect((await dig(app.port, ['new.example.org'])).status).toBe('NXDOMAIN');
    writeFileSync(list, 'ads.example.com\nhup.example.org\n');
    app.child.kill('SIGHUP');
    const deadline = Date.now() + 5000;
    let status = '';
    while (Date.now() < deadline) {
      status = (await dig(app.port, ['+noedns', 'hup.example.org', 'TXT'])).status;
      if (status === 'NXDOMAIN') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(status).toBe('NXDOMAIN');
    expect((await admin(base, '/metrics')).text).toMatch(/heimdall_blocking_/);
  });

  it('SIGHUP re-reads the config file: log level applied, other changes reported, a broken file ignored', async () => {
    const config = JSON.parse(readFileSync(app.configFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(app.configFile, JSON.stringify({ ...config, logLevel: 'debug', queryTimeoutMs: 3000 }));
    app.child.kill('SIGHUP');
    await waitFor(() => /log level changed/.test(app.output()) && /need a restart/.test(app.output()));
    expect(app.output()).toMatch(/"fields":\["queryTimeoutMs"\]/);
    writeFileSync(app.configFile, '{"listen": 5}');
    app.child.kill('SIGHUP');
    await waitFor(() => /config file reload failed/.test(app.output()));
    expect(app.output()).toMatch(/listen: must be an array/);
    expect((await dig(app.port, ['ads.example.com'])).status).toBe('NXDOMAIN');
  });
});
