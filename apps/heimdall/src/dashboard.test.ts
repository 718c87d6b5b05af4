import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import { request as httpRequest } from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionInfo } from './actions.js';
import { type AdminBackend, adminUrl, startAdmin } from './admin.js';
import { cookieValue, LOGIN_FAILURES_GLOBAL, LOGIN_FAILURES_PER_CLIENT, Sessions } from './dashboard.js';

const TOKEN = 'a-long-enough-token';
const flush: ActionInfo = { plugin: 'cache', name: 'flush', path: '/cache/flush', method: 'POST', description: 'flush', combine: 'sum' };
const backend: AdminBackend = {
  metrics: async () => ({ contentType: 'text/plain', body: '' }),
  ready: () => ({ ok: true, body: { status: 'ready' } }),
  actions: () => [flush],
  run: async () => ({ removed: 0 }),
};

const dir = mkdtempSync(join(os.tmpdir(), 'dash-'));
let server: http.Server;
let base: string;

beforeAll(async () => {
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="/assets/main-ABC.js"></script>');
  writeFileSync(join(dir, 'assets/main-ABC.js'), `console.log(${JSON.stringify('x'.repeat(2000))});`);
  server = await startAdmin(backend, { host: '127.0.0.1', port: 0, token: TOKEN, logger: pino({ level: 'silent' }), dashboardDir: dir });
  base = adminUrl(server);
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

describe('dashboard files', () => {
  it('serves the page with no-cache, an ETag and a CSP; assets immutable and gzipped', async () => {
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const again = await fetch(`${base}/`, { headers: { 'if-none-match': page.headers.get('etag')! } });
    expect(again.status).toBe(304);
    const js = await fetch(`${base}/assets/main-ABC.js`, { headers: { 'accept-encoding': 'gzip' } });
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await js.text()).length).toBeGreaterThan(2000); // fetch inflates it
    expect((await fetch(`${base}/assets/nope.js`)).status).toBe(401); // not a file: an API path, which needs the token
  });
});

describe('browser sessions', () => {
  it('says a token is needed', async () => {
    expect(await (await fetch(`${base}/session`)).json()).toEqual({ tokenRequired: true, authenticated: false, dashboard: true });
  });

  it('refuses a wrong token, and a login that is not JSON', async () => {
    const wrong = await post('/login', { token: 'wrong-token-here!!' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const form = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${TOKEN}` });
    expect(form.status).toBe(415);
    const foreign = await post('/login', { token: TOKEN }, { origin: 'http://evil.example' });
    expect(foreign.status).toBe(403);
  });

  it('sets an HttpOnly SameSite=Strict cookie that works like the bearer token; POSTs still need the header', async () => {
    const ok = await post('/login', { token: TOKEN });
    expect(ok.status).toBe(200);
    const setCookie = ok.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^heimdall_session=[\w-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/);
    const cookie = `heimdall_session=${cookieValue(setCookie.split(';')[0], 'heimdall_session')}`;
    expect((await fetch(`${base}/actions`, { headers: { cookie } })).status).toBe(200);
    expect(await (await fetch(`${base}/session`, { headers: { cookie } })).json()).toMatchObject({ authenticated: true });
    // CSRF: the cookie alone does not make a POST acceptable.
    expect((await fetch(`${base}/cache/flush`, { method: 'POST', headers: { cookie } })).status).toBe(403);
    expect((await fetch(`${base}/cache/flush`, { method: 'POST', headers: { cookie, 'x-heimdall-request': '1' } })).status).toBe(200);
    // The bearer token alone still does.
    expect((await fetch(`${base}/cache/flush`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    // A made-up session is nothing.
    expect((await fetch(`${base}/actions`, { headers: { cookie: `heimdall_session=${'A'.repeat(43)}` } })).status).toBe(401);
    // Logout ends it.
    const out = await post('/logout', {}, { cookie });
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    expect((await fetch(`${base}/actions`, { headers: { cookie } })).status).toBe(401);
  });

  it('slows guessing: more than 20 failures in a minute answer 429, even for the right token', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 22; i++) statuses.push((await post('/login', { token: `guess-${i}-xxxxxxxx` })).status);
    expect(statuses[0]).toBe(401);
    // One failure came from the test above: the 21st failure of the minute is the last one answered.
    expect(statuses.indexOf(429)).toBe(20);
    expect((await post('/login', { token: TOKEN })).status).toBe(429);
    // Per client address: another local address still logs in.
    const other = await new Promise<{ status: number; cookie: string }>((resolve, reject) => {
      const u = new URL(`${base}/login`);
      const req = httpRequest(
        { host: u.hostname, port: u.port, path: '/login', method: 'POST', localAddress: '127.0.0.2', headers: { 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, cookie: String(res.headers['set-cookie'] ?? '') });
        },
      );
      req.once('error', reject);
      req.end(JSON.stringify({ token: TOKEN }));
    });
    expect(other.status).toBe(200);
    expect(other.cookie).toContain('heimdall_session=');
  });
});

describe('login throttling (Sessions)', () => {
  it('counts failures per client address, under a global ceiling, and forgets them each minute', () => {
    let now = 1_700_000_000_000 - (1_700_000_000_000 % 60_000);
    const s = new Sessions(() => now);
    for (let i = 0; i < LOGIN_FAILURES_PER_CLIENT; i++) expect(s.failed('192.0.2.1')).toBe(false);
    expect(s.throttled('192.0.2.1')).toBe(false);
    expect(s.failed('192.0.2.1')).toBe(true);
    expect(s.throttled('192.0.2.1')).toBe(true);
    // Another client is not locked out by the first one's guessing.
    expect(s.throttled('192.0.2.2')).toBe(false);
    expect(s.failed('192.0.2.2')).toBe(false);
    // Many addresses together reach the global ceiling: then everyone waits.
    for (let i = 0; i < LOGIN_FAILURES_GLOBAL; i++) s.failed(`10.0.${i >> 8}.${i & 255}`);
    expect(s.throttled('192.0.2.3')).toBe(true);
    // A new minute: all forgotten.
    now += 60_000;
    expect(s.throttled('192.0.2.1')).toBe(false);
    expect(s.throttled('192.0.2.3')).toBe(false);
    expect(s.failed('192.0.2.1')).toBe(false);
  });

  it('keeps a bounded table of addresses', () => {
    const s = new Sessions(() => 0);
    for (let i = 0; i < 5000; i++) s.failed(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    expect((s as unknown as { failuresBy: Map<string, number> }).failuresBy.size).toBeLessThanOrEqual(1024);
  });
});
