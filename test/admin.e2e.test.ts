/**
 * The admin API of the built app, end to end: actions contributed by a
 * third-party plugin (loaded by path) mounted at /<plugin>/<action>, SIGHUP
 * running every `reload` action, and the protections against other web
 * pages (cross-site POSTs, DNS rebinding), against exposing it without a
 * token, and a taken admin port reported in one line.
 */
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pluginDir, waitFor, writeCounterPlugin } from './fixture-plugins.js';
import { type AppProcess, CLI, freePort, startApp } from './helpers.js';

interface Reply {
  status: number;
  text: string;
  json: () => any;
}

/** A raw HTTP request: fetch cannot send a Host of our choosing. */
function request(base: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  const u = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: init.method ?? 'GET', headers: init.headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, text, json: () => JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

const dir = pluginDir();
const counter = writeCounterPlugin(dir);
let app: AppProcess;
let base: string;

beforeAll(async () => {
  app = await startApp({
    listen: [`127.0.0.1:${await freePort()}`],
    admin: { listen: '127.0.0.1:0' },
    logLevel: 'info',
    plugins: [{ use: counter }, { use: 'special-use' }],
  });
  base = app.adminUrl!;
});

afterAll(async () => {
  if (app) expect(await app.stop()).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

const hits = async (): Promise<number> => (await request(base, '/counter/stats')).json().hits;

describe('admin API: actions contributed by the chain', () => {
  it("mounts a third-party plugin's actions and lists them at GET /actions", async () => {
    const list = (await request(base, '/actions')).json().endpoints as Array<{ method: string; path: string; description: string }>;
    expect(list).toContainEqual(expect.objectContaining({ method: 'POST', path: '/counter/bump', description: 'adds to the counter' }));
    expect(list.map((e) => e.path)).toEqual([
      '/health',
      '/ready',
      '/metrics',
      '/actions',
      '/counter/bump',
      '/counter/stats',
      '/counter/whoami',
      '/counter/reload',
    ]);
    const before = await hits();
    const bump = await request(base, '/counter/bump?by=5', { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(bump.status).toBe(200);
    expect(bump.json()).toEqual({ hits: before + 5, by: 5 });
    const body = await request(base, '/counter/bump', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"by":2}' });
    expect(body.json().hits).toBe(before + 7);
    const bad = await request(base, '/counter/bump?by=0', { method: 'POST', headers: { 'x-heimdall-request': '1' } });
    expect(bad.status).toBe(400);
    expect(bad.json().error).toBe('counter/bump.by: must be an integer in 1..1000');
    expect((await request(base, '/counter/bump')).status).toBe(405);
    expect((await request(base, '/blocking/status')).status).toBe(404);
  });

  it('SIGHUP runs every action named reload', async () => {
    const reloads = async (): Promise<number> => (await request(base, '/counter/stats')).json().reloads;
    const before = await reloads();
    app.child.kill('SIGHUP');
    await waitFor(async () => (await reloads()) === before + 1, 5000, 'reload action run');
    // The action ran; its log line follows it (wait for the line, not a fixed time).
    await waitFor(() => /"action":"\/counter\/reload"[^\n]*"msg":"reloaded"/.test(app.output()), 5000, 'reload logged');
  });
});

describe('admin API: other web pages cannot use it', () => {
  it('refuses a cross-site text/plain POST with a foreign Origin (the action does not run)', async () => {
    const before = await hits();
    const r = await request(base, '/counter/bump?by=9', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: 'http://evil.example' },
      body: 'x',
    });
    expect(r.status).toBe(403);
    // A simple POST without Origin (an older browser, a form) lacks the JSON type / custom header.
    const simple = await request(base, '/counter/bump?by=9', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    expect(simple.status).toBe(403);
    expect(await hits()).toBe(before);
  });

  it('refuses a foreign Host (DNS rebinding): no change, no read', async () => {
    const before = await hits();
    const port = new URL(base).port;
    const post = await request(base, '/counter/bump', {
      method: 'POST',
      headers: { host: `rebound.evil.example:${port}`, 'content-type': 'application/json' },
    });
    expect(post.status).toBe(403);
    expect(await hits()).toBe(before);
    for (const path of ['/metrics', '/counter/stats', '/actions']) {
      expect([path, (await request(base, path, { headers: { host: `rebound.evil.example:${port}` } })).status]).toEqual([path, 403]);
    }
    expect((await request(base, '/counter/stats', { headers: { host: `localhost:${port}` } })).status).toBe(200);
  });

  it('refuses to start with a non-loopback admin address and no token, naming the setting', async () => {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [CLI, '--listen', '127.0.0.1:0', '--admin', '0.0.0.0:0', '--upstream', '127.0.0.1:9', '--log-level', 'silent'],
        { timeout: 15_000 },
        (err, _out, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
      ),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^heimdall: config error: admin\.token: is required when admin\.listen is not a loopback address/);
  });

  it('reports a taken admin port in one line, exit 1', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
        execFile(
          process.execPath,
          [CLI, '--listen', '127.0.0.1:0', '--admin', `127.0.0.1:${port}`, '--upstream', '127.0.0.1:9', '--log-level', 'silent'],
          { timeout: 15_000 },
          (err, _out, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
        ),
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`heimdall: ListenError: admin 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`);
    } finally {
      srv.close();
    }
  });
});
