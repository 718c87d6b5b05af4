/**
 * The admin server in this process, with real HTTP requests: actions
 * contributed by a plugin through core's ADMIN_ACTIONS, argument handling,
 * error statuses, and the cross-site / DNS-rebinding protections.
 */
import http from 'node:http';
import net from 'node:net';
import { ADMIN_ACTIONS, type AdminActions, createResolver, definePlugin, PLUGIN, type PluginInfo, type Resolver, Type } from '@heimdall/core';
import { ContainerModule, inject, injectable } from '@heimdall/core/di';
import { BadRequestError, NotAvailableError } from '@heimdall/core/errors';
import { silentLogger } from '@heimdall/core/pipeline';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActionTable, combineResults } from './actions.js';
import { type AdminOptions, adminUrl, startAdmin } from './admin.js';

/** What the test plugin's actions saw. */
const calls: Array<{ action: string; args: unknown }> = [];

@injectable()
class CounterAdmin implements AdminActions {
  readonly plugin: string;
  readonly actions;
  constructor(@inject(PLUGIN) info: PluginInfo) {
    this.plugin = info.name;
    this.actions = [
      {
        name: 'add',
        method: 'POST' as const,
        description: 'adds',
        combine: 'sum' as const,
        args: Type.Object(
          {
            by: Type.Integer({ minimum: 1, maximum: 100, default: 1 }),
            dry: Type.Boolean({ default: false }),
            note: Type.Optional(Type.String({ maxLength: 10 })),
          },
          { additionalProperties: false },
        ),
        run: (args: unknown) => {
          calls.push({ action: 'add', args });
          return { added: (args as { by: number }).by };
        },
      },
      { name: 'peek', method: 'GET' as const, description: 'reads', combine: 'first' as const, run: () => ({ value: 42 }) },
      {
        name: 'lookup',
        method: 'GET' as const,
        description: 'absent things',
        combine: 'first' as const,
        args: Type.Object({ key: Type.String() }, { additionalProperties: false }),
        run: (args: unknown) => {
          const key = (args as { key: string }).key;
          if (key === 'bad') throw new BadRequestError('key is bad');
          throw new NotAvailableError(`no entry ${key}`);
        },
      },
      {
        name: 'broken',
        method: 'GET' as const,
        description: 'fails',
        combine: 'first' as const,
        run: () => {
          throw new Error('secret internal detail');
        },
      },
      {
        name: 'reload',
        method: 'POST' as const,
        description: 'reloads',
        combine: 'all' as const,
        run: () => {
          calls.push({ action: 'reload', args: null });
          return { reloaded: true };
        },
      },
    ];
  }
}

const counter = definePlugin({
  name: 'counter',
  setup: () => ({
    module: new ContainerModule(({ bind }) => {
      bind(CounterAdmin).toSelf();
    }),
    provides: [{ token: ADMIN_ACTIONS, use: CounterAdmin }],
  }),
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: () => any;
}

/** A raw HTTP request (fetch cannot set Host or Origin freely). */
function request(base: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  const u = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port, path: u.pathname + u.search, method: init.method ?? 'GET', headers: init.headers },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text, json: () => JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

const JSON_POST = { method: 'POST', headers: { 'content-type': 'application/json' } };

let resolver: Resolver;
let table: ActionTable;
let logged: string[];
let server: http.Server;
let base: string;

async function serve(options: Partial<AdminOptions> = {}): Promise<http.Server> {
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logged.push(line) });
  return startAdmin(
    {
      metrics: async () => ({ contentType: 'text/plain', body: 'm 1\n' }),
      ready: () => ({ ok: true, body: { status: 'ready' } }),
      actions: () => table.list,
      run: (a, args) => table.run(a.plugin, a.name, args),
    },
    { host: '127.0.0.1', port: 0, logger, ...options },
  );
}

beforeAll(async () => {
  logged = [];
  resolver = createResolver({ plugins: [counter(), counter({}, { name: 'counter-2' })], logger: silentLogger() });
  table = ActionTable.of(resolver);
  server = await serve();
  base = adminUrl(server);
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

describe('admin API: contributed actions', () => {
  it('lists every mounted endpoint with its description', async () => {
    const r = await request(base, '/actions');
    expect(r.status).toBe(200);
    const endpoints = r.json().endpoints as Array<{ method: string; path: string; description: string }>;
    expect(endpoints.map((e) => `${e.method} ${e.path}`)).toEqual([
      'GET /health',
      'GET /ready',
      'GET /metrics',
      'GET /actions',
      'POST /counter/add',
      'GET /counter/peek',
      'GET /counter/lookup',
      'GET /counter/broken',
      'POST /counter/reload',
      'POST /counter-2/add',
      'GET /counter-2/peek',
      'GET /counter-2/lookup',
      'GET /counter-2/broken',
      'POST /counter-2/reload',
    ]);
    expect(endpoints.find((e) => e.path === '/counter/add')).toMatchObject({ description: 'adds', args: { properties: { by: { type: 'integer' } } } });
  });

  it('runs an action at /<plugin>/<action> with its method', async () => {
    expect((await request(base, '/counter/peek')).json()).toEqual({ value: 42 });
    expect((await request(base, '/counter-2/peek')).json()).toEqual({ value: 42 });
    const wrong = await request(base, '/counter/peek', { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('GET, HEAD');
    expect((await request(base, '/counter/add')).status).toBe(405);
    expect((await request(base, '/counter/nope')).status).toBe(404);
    expect((await request(base, '/health')).json()).toEqual({ status: 'ok' });
    expect((await request(base, '/ready')).json()).toEqual({ status: 'ready' });
    expect((await request(base, '/metrics')).text).toBe('m 1\n');
  });

  it('takes arguments from the query string (converted per the schema) and from a JSON body', async () => {
    calls.length = 0;
    const q = await request(base, '/counter/add?by=7&dry=true&note=12', JSON_POST);
    expect(q.status).toBe(200);
    expect(q.json()).toEqual({ added: 7 });
    const b = await request(base, '/counter/add', { ...JSON_POST, body: JSON.stringify({ by: 3, note: 'hi' }) });
    expect(b.json()).toEqual({ added: 3 });
    const mixed = await request(base, '/counter/add?by=2', { ...JSON_POST, body: '{"dry":true}' });
    expect(mixed.json()).toEqual({ added: 2 });
    const none = await request(base, '/counter/add', { method: 'POST', headers: { 'x-heimdall-request': '1' } });
    expect(none.json()).toEqual({ added: 1 });
    expect(calls.map((c) => c.args)).toEqual([
      { by: 7, dry: true, note: '12' },
      { by: 3, dry: false, note: 'hi' },
      { by: 2, dry: true },
      { by: 1, dry: false },
    ]);
  });

  it('answers 400 with the field path for bad arguments, without running the action', async () => {
    calls.length = 0;
    const cases: Array<[string, string | undefined, RegExp]> = [
      ['/counter/add?by=0', undefined, /^counter\/add\.by: must be an integer in 1\.\.100$/],
      ['/counter/add?by=many', undefined, /^counter\/add\.by: must be an integer in 1\.\.100$/],
      ['/counter/add?dry=perhaps', undefined, /^counter\/add\.dry: must be true or false$/],
      ['/counter/add?typo=1', undefined, /^counter\/add\.typo: unknown option/],
      ['/counter/add?by=1&by=2', undefined, /'by' given 2 times/],
      ['/counter/add?by=1', '{"by":2}', /'by' given both/],
      ['/counter/add', '[1]', /body must be a JSON object/],
      ['/counter/add', '{nope', /body is not valid JSON/],
    ];
    for (const [path, body, message] of cases) {
      const r = await request(base, path, { ...JSON_POST, body });
      expect([path, r.status]).toEqual([path, 400]);
      expect(r.json().error).toMatch(message);
    }
    expect((await request(base, '/counter/peek?x=1')).status).toBe(400);
    expect(calls).toEqual([]);
  });

  it("maps errors by the registry's status: 400, 404, else 500 with a generic message (logged)", async () => {
    const bad = await request(base, '/counter/lookup?key=bad');
    expect([bad.status, bad.json().error]).toEqual([400, 'key is bad']);
    const absent = await request(base, '/counter/lookup?key=zz');
    expect([absent.status, absent.json().error]).toEqual([404, 'no entry zz']);
    logged.length = 0;
    const broken = await request(base, '/counter/broken');
    expect(broken.status).toBe(500);
    expect(broken.text).not.toMatch(/secret/);
    expect(logged.join('')).toMatch(/secret internal detail/);
  });

  it('SIGHUP-style reload runs every action named reload', async () => {
    calls.length = 0;
    await table.reloadAll(silentLogger() as never);
    expect(calls.map((c) => c.action)).toEqual(['reload', 'reload']);
  });
});

describe('admin API: cross-site and DNS-rebinding protection', () => {
  it('refuses a cross-site text/plain POST with a foreign Origin, and one with no marker at all', async () => {
    calls.length = 0;
    const csrf = await request(base, '/counter/add', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: 'http://evil.example' },
      body: 'by=5',
    });
    expect(csrf.status).toBe(403);
    // Same-origin but a form-style content type: still not a program's request.
    const form = await request(base, '/counter/add', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(403);
    expect(form.json().error).toMatch(/X-Heimdall-Request/);
    // A JSON POST from a foreign origin (a preflight would be needed; refused anyway).
    const foreign = await request(base, '/counter/add', { ...JSON_POST, headers: { ...JSON_POST.headers, origin: 'http://evil.example' } });
    expect(foreign.status).toBe(403);
    const nullOrigin = await request(base, '/counter/add', { ...JSON_POST, headers: { ...JSON_POST.headers, origin: 'null' } });
    expect(nullOrigin.status).toBe(403);
    expect(calls).toEqual([]);
    // The server's own origin is fine.
    const own = await request(base, '/counter/add', { ...JSON_POST, headers: { ...JSON_POST.headers, origin: base } });
    expect(own.status).toBe(200);
  });

  it('refuses a foreign Host (DNS rebinding) for reads and changes; loopback names pass', async () => {
    calls.length = 0;
    const port = new URL(base).port;
    for (const [method, path] of [
      ['GET', '/metrics'],
      ['GET', '/counter/peek'],
      ['GET', '/actions'],
      ['POST', '/counter/add'],
    ] as const) {
      const r = await request(base, path, { method, headers: { host: `rebind.evil.example:${port}`, 'content-type': 'application/json' } });
      expect([method, path, r.status]).toEqual([method, path, 403]);
    }
    expect(calls).toEqual([]);
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `app.localhost:${port}`, 'LOCALHOST']) {
      expect([host, (await request(base, '/counter/peek', { headers: { host } })).status]).toEqual([host, 200]);
    }
  });

  it('admin.allowedHosts adds names', async () => {
    const s = await serve({ allowedHosts: ['dns.home.arpa'] });
    try {
      const b = adminUrl(s);
      expect((await request(b, '/counter/peek', { headers: { host: 'dns.home.arpa:8053' } })).status).toBe(200);
      expect((await request(b, '/counter/peek', { headers: { host: 'other.home.arpa:8053' } })).status).toBe(403);
    } finally {
      s.close();
    }
  });

  it('with a token, every path but /health and /ready needs it, and the token marks a POST as programmatic', async () => {
    const s = await serve({ token: 'sesame-open-up' });
    try {
      const b = adminUrl(s);
      expect((await request(b, '/ready')).status).toBe(200);
      expect((await request(b, '/actions')).status).toBe(401);
      expect((await request(b, '/counter/add', { ...JSON_POST, headers: { ...JSON_POST.headers, authorization: 'Bearer wrong-token-x' } })).status).toBe(401);
      expect((await request(b, '/counter/add', { method: 'POST', headers: { authorization: 'Bearer sesame-open-up' } })).status).toBe(200);
    } finally {
      s.close();
    }
  });

  it('refuses to start on a non-loopback address without a token, naming the setting', async () => {
    await expect(serve({ host: '0.0.0.0' })).rejects.toThrow(/^admin\.token: is required when admin\.listen is not a loopback address/);
    const s = await serve({ host: '0.0.0.0', token: 'sesame-open-up' });
    s.close();
  });

  it('a taken port is a ListenError with a one-line message', async () => {
    const port = Number(new URL(base).port);
    const err = (await serve({ port }).catch((e: unknown) => e)) as Error & { code: string };
    expect(err.name).toBe('ListenError');
    expect(err.code).toBe('LISTEN');
    expect(err.message).toBe(`admin 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
    expect(net.isIP('127.0.0.1')).toBe(4);
  });
});

describe('combining the workers answers', () => {
  const r = (worker: number, result: unknown) => ({ worker, result });
  it('sum adds numeric fields (nested too), keeps the first for the rest, and counts workers', () => {
    expect(
      combineResults('sum', [
        r(1, { removed: 3, entries: 10, name: 'a', tiers: { disk: 1 }, note: null }),
        r(2, { removed: 4, entries: 5, name: 'b', tiers: { disk: 2 }, note: 'x' }),
      ]),
    ).toEqual({ removed: 7, entries: 15, name: 'a', tiers: { disk: 3 }, note: null, workers: 2 });
    expect(combineResults('sum', [r(1, 2), r(2, 3)])).toBe(5);
  });
  it('first takes the first worker; all tags each answer with its worker', () => {
    expect(combineResults('first', [r(1, { enabled: true }), r(2, { enabled: false })])).toEqual({ enabled: true });
    expect(combineResults('all', [r(1, { ok: 1 }), r(3, undefined)])).toEqual([
      { worker: 1, result: { ok: 1 } },
      { worker: 3, result: null },
    ]);
  });
});
