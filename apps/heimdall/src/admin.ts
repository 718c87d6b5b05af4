/**
 * The admin HTTP server (node:http), on 127.0.0.1:8053 by default.
 *
 * | method | path | what |
 * | --- | --- | --- |
 * | GET | `/health` | 200 while the process runs |
 * | GET | `/ready` | 200 while serving (`{"status":"ready"}`; a cluster with a worker down: `"degraded"`), 503 while starting, draining or with no worker up |
 * | GET | `/metrics` | Prometheus text format |
 * | GET | `/actions` | every endpoint below, with its method, description and argument schema |
 * | GET/POST | `/<plugin>/<action>` | an action a plugin of the chain contributes (core's `ADMIN_ACTIONS`) |
 *
 * Action arguments come from the query string and/or a JSON object body.
 * Query-string values are strings: they are converted to numbers or booleans
 * where the action's schema asks for those, then the action validates them
 * (core's `parseOptions`). Errors answer with the error registry's status:
 * 400 for bad arguments, 404 for something absent, otherwise 500 with a
 * generic message (the error itself is logged).
 *
 * Protection (the API changes what the resolver answers, and browsers will
 * send requests to 127.0.0.1 on behalf of any web page):
 * - With a token, every path except `/health` and `/ready` needs
 *   `Authorization: Bearer <token>` (compared in constant time). A
 *   non-loopback `admin.listen` without a token refuses to start.
 * - The `Host` header must name a loopback host (`localhost`, `*.localhost`,
 *   127.0.0.0/8, ::1), the bound address (every local interface address when
 *   bound to 0.0.0.0 or ::), or one of `admin.allowedHosts`: a page whose
 *   DNS name was rebound to 127.0.0.1 cannot read or change anything.
 * - A request with an `Origin` other than the server's own is refused.
 * - POST needs `Content-Type: application/json` or an
 *   `X-Heimdall-Request` header (or the bearer token): none can be sent
 *   cross-site without a CORS preflight, which this server never grants.
 *
 * The web dashboard (`src/dashboard.ts`, built into `dist/dashboard`) is
 * served at `/` and `/assets/*` to anyone who passes the Host/Origin
 * checks (the files hold no data). A browser logs in with
 * `POST /login {"token": …}` (JSON only), which sets an HttpOnly
 * SameSite=Strict session cookie accepted like the bearer token; a POST
 * with the cookie still needs the JSON content type or the
 * `X-Heimdall-Request` header. `GET /session` says whether a token is
 * needed and whether the request has a session; `POST /logout` ends it.
 */
import { Buffer } from 'node:buffer';
import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import { ConfigError } from '@heimdall/core';
import { errorCodes, ListenError } from '@heimdall/core/errors';
import type { Logger } from 'pino';
import type { ActionInfo } from './actions.js';
import { DashboardFiles, defaultDashboardDir, Sessions } from './dashboard.js';

/** What `/ready` reports: `ok` → 200, else 503; `body` is the JSON answer. */
export interface ReadyState {
  readonly ok: boolean;
  readonly body: Record<string, unknown>;
}

/** What the admin server serves from (one resolver, or the cluster primary). */
export interface AdminBackend {
  metrics(): Promise<{ contentType: string; body: string }>;
  ready(): ReadyState;
  /** The mounted actions; undefined while not known yet (cluster workers starting). */
  actions(): readonly ActionInfo[] | undefined;
  /** Runs an action with arguments as received (validation is the backend's: core's `parseOptions`). */
  run(action: ActionInfo, args: Record<string, unknown>): Promise<unknown>;
}

/** Options of {@link startAdmin}. */
export interface AdminOptions {
  host: string;
  port: number;
  token?: string;
  /** Host names (or addresses) accepted in the `Host` header besides loopback and the bound address; `*` accepts any. */
  allowedHosts?: readonly string[];
  logger: Logger;
  /** The built dashboard to serve at `/` (default: `dashboard/` next to this module, when built); null serves none. */
  dashboardDir?: string | null;
}

/** Header that marks a request as made by a program, not a cross-site form (any value). */
export const REQUEST_HEADER = 'x-heimdall-request';
const MAX_BODY = 64 * 1024;

const BUILTIN: readonly { method: string; path: string; description: string }[] = [
  { method: 'GET', path: '/health', description: '200 while the process runs' },
  { method: 'GET', path: '/ready', description: '200 while serving, 503 while starting, draining or with no worker up' },
  { method: 'GET', path: '/metrics', description: 'Prometheus metrics' },
  { method: 'GET', path: '/actions', description: 'this list' },
];

/** An error with an HTTP status and a message meant for the client (even a 5xx one). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function send(res: http.ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = contentType === 'application/json' ? `${JSON.stringify(body)}\n` : String(body);
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(text);
}

function authorized(req: http.IncomingMessage, token: Buffer | undefined): boolean {
  if (token === undefined) return true;
  const header = req.headers.authorization ?? '';
  const m = /^Bearer\s+(.+)$/i.exec(header);
  if (!m) return false;
  const given = Buffer.from(m[1]!.trim());
  return given.length === token.length && timingSafeEqual(given, token);
}

/** Whether `host` (an address or name, no port) is the loopback interface. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) return h === '::1' || /^::ffff:127\./.test(h) || h === '0:0:0:0:0:0:0:1';
  return false;
}

/**
 * Refuses an admin server reachable from other hosts without a token
 * (anyone who can reach it could flush the cache or turn blocking off).
 * Throws `ConfigError` (exit code 2) naming `admin.token`.
 */
export function assertAdminExposure(host: string, token: string | undefined): void {
  if (token !== undefined || isLoopback(host)) return;
  throw new ConfigError('admin.token', `is required when admin.listen is not a loopback address (${host}); set a token or listen on 127.0.0.1`);
}

/** The host name of a `Host` header, without port and brackets, lower case. */
function hostName(header: string): string {
  let h = header.trim().toLowerCase();
  if (h.startsWith('[')) h = h.slice(1, h.indexOf(']') < 0 ? undefined : h.indexOf(']'));
  else if (h.indexOf(':') === h.lastIndexOf(':')) h = h.replace(/:\d*$/, '');
  return h.replace(/\.$/, '');
}

/** Decides which `Host` headers are accepted. */
function hostPolicy(bound: string, extra: readonly string[]): (header: string | undefined) => boolean {
  const allowed = new Set(extra.map((h) => hostName(h)));
  const any = allowed.has('*');
  const boundName = hostName(bound.includes(':') && !bound.startsWith('[') ? `[${bound}]` : bound);
  const wildcard = boundName === '0.0.0.0' || boundName === '::';
  const localAddress = (h: string): boolean => Object.values(os.networkInterfaces()).some((list) => list?.some((i) => i.address.toLowerCase() === h));
  return (header) => {
    // HTTP/1.0 without Host: no browser sends that.
    if (header === undefined) return true;
    if (any) return true;
    const h = hostName(header);
    return isLoopback(h) || h === boundName || allowed.has(h) || (wildcard && net.isIP(h) !== 0 && localAddress(h));
  };
}

/** `host[:port]` of an `Origin` header (lower case), or undefined for `null` and garbage. */
function originHost(origin: string): string | undefined {
  try {
    const u = new URL(origin);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.host.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

/** Content type without parameters, lower case. */
function mediaType(req: http.IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

async function readBody(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  if (mediaType(req) !== 'application/json') throw new HttpError(415, 'a request body must be JSON (Content-Type: application/json)');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'body must be a JSON object of arguments');
  return value as Record<string, unknown>;
}

type Schema = Record<string, unknown>;

/** The schemas a property may take (its `anyOf` members, or itself). */
function variants(s: Schema | undefined): Schema[] {
  if (s === undefined) return [];
  if (Array.isArray(s.anyOf)) return (s.anyOf as Schema[]).flatMap(variants);
  if (Array.isArray(s.oneOf)) return (s.oneOf as Schema[]).flatMap(variants);
  return [s];
}

const NUMERIC = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

/** A query-string value as the schema wants it: a number, a boolean, or the string itself. */
function coerce(s: Schema | undefined, text: string): unknown {
  const vs = variants(s);
  if (vs.length === 0) return text;
  // A string the schema accepts stays a string (`duration: "300"` when the schema says string).
  for (const v of vs) {
    if (v.type === 'string' && (typeof v.pattern !== 'string' || new RegExp(v.pattern, 'u').test(text))) return text;
    if (v.const === text || (Array.isArray(v.enum) && v.enum.includes(text))) return text;
  }
  for (const v of vs) {
    const wantsNumber =
      v.type === 'number' || v.type === 'integer' || typeof v.const === 'number' || (Array.isArray(v.enum) && v.enum.some((e) => typeof e === 'number'));
    if (wantsNumber && NUMERIC.test(text)) return Number(text);
    const wantsBoolean = v.type === 'boolean' || typeof v.const === 'boolean';
    if (wantsBoolean && (text === 'true' || text === 'false' || text === '1' || text === '0' || text === ''))
      return text === 'true' || text === '1' || text === '';
    if (v.type === 'null' && (text === 'null' || text === '')) return null;
  }
  return text;
}

/** Query-string arguments, converted per the action's argument schema. A name given twice is an array (when the schema says so) or an error. */
export function queryArgs(schema: Schema | undefined, params: URLSearchParams): Record<string, unknown> {
  const props = (schema?.properties ?? {}) as Record<string, Schema>;
  const out: Record<string, unknown> = {};
  for (const key of new Set(params.keys())) {
    const all = params.getAll(key);
    const prop = props[key];
    const arrayOf = variants(prop).find((v) => v.type === 'array');
    if (arrayOf !== undefined) out[key] = all.flatMap((v) => v.split(',')).map((v) => coerce(arrayOf.items as Schema | undefined, v));
    else if (all.length > 1) throw new HttpError(400, `'${key}' given ${all.length} times in the query string`);
    else out[key] = coerce(prop, all[0]!);
  }
  return out;
}

/** HTTP status of an error, from the error registry (HeimdallError's `statusCode`, or its registered code). */
function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  const e = err as { statusCode?: unknown; code?: unknown } | null;
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode <= 599) return e.statusCode;
  if (typeof e?.code === 'string') {
    const known = errorCodes().find((c) => c.code === e.code);
    if (known !== undefined) return known.statusCode;
  }
  return 500;
}

/** Starts the admin server; resolves once it listens. A taken port rejects with core's `ListenError` (one line, like the DNS ports). */
export async function startAdmin(backend: AdminBackend, options: AdminOptions): Promise<http.Server> {
  assertAdminExposure(options.host, options.token);
  const token = options.token === undefined ? undefined : Buffer.from(options.token);
  const { logger } = options;
  const hostAllowed = hostPolicy(options.host, options.allowedHosts ?? []);
  const dashboardDir = options.dashboardDir === undefined ? defaultDashboardDir() : (options.dashboardDir ?? undefined);
  const dashboard = dashboardDir === undefined ? undefined : new DashboardFiles(dashboardDir);
  const sessions = new Sessions();

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (!hostAllowed(req.headers.host)) {
      logger.warn({ host: req.headers.host, path }, 'admin request with a foreign Host header refused');
      return send(res, 403, { error: 'Host header not allowed: use a loopback address or add the name to admin.allowedHosts' });
    }
    const origin = req.headers.origin;
    if (origin !== undefined && originHost(origin) !== (req.headers.host ?? '').toLowerCase()) {
      logger.warn({ origin, path }, 'cross-origin admin request refused');
      return send(res, 403, { error: 'cross-origin requests are refused' });
    }
    if ((method === 'GET' || method === 'HEAD') && dashboard?.has(path)) {
      dashboard.serve(req, res, path);
      return;
    }
    const bearer = token !== undefined && authorized(req, token);
    const authed = token === undefined || bearer || sessions.valid(req);
    if (path === '/session' || path === '/login' || path === '/logout') {
      if (path === '/session') return send(res, 200, { tokenRequired: token !== undefined, authenticated: authed, dashboard: dashboard !== undefined });
      if (method !== 'POST') {
        res.setHeader('allow', 'POST');
        return send(res, 405, { error: 'use POST' });
      }
      if (path === '/logout') {
        if (mediaType(req) !== 'application/json' && req.headers[REQUEST_HEADER] === undefined)
          return send(res, 403, { error: 'POST needs Content-Type: application/json or an X-Heimdall-Request: 1 header' });
        res.setHeader('set-cookie', sessions.close(req));
        return send(res, 200, { ok: true });
      }
      // Login: a JSON body only (a cross-site form cannot send one without a preflight).
      if (mediaType(req) !== 'application/json') return send(res, 415, { error: 'POST /login needs Content-Type: application/json and {"token": "…"}' });
      const body = await readBody(req);
      if (token === undefined) return send(res, 200, { ok: true, tokenRequired: false });
      if (sessions.throttled(req.socket.remoteAddress)) return send(res, 429, { error: 'too many failed logins; wait a minute' });
      const given = Buffer.from(typeof body.token === 'string' ? body.token : '');
      if (!(given.length === token.length && timingSafeEqual(given, token))) {
        sessions.failed(req.socket.remoteAddress);
        logger.warn({ path }, 'dashboard login with a wrong token refused');
        return send(res, 401, { error: 'wrong token' });
      }
      res.setHeader('set-cookie', sessions.open());
      logger.info('dashboard login');
      return send(res, 200, { ok: true });
    }
    if (path === '/health') return send(res, 200, { status: 'ok' });
    if (path === '/ready') {
      const r = backend.ready();
      return send(res, r.ok ? 200 : 503, r.body);
    }
    if (!authed) {
      res.setHeader('www-authenticate', 'Bearer realm="heimdall"');
      return send(res, 401, { error: 'missing or wrong bearer token' });
    }
    const actions = backend.actions();
    if (path === '/metrics' || path === '/actions') {
      if (method !== 'GET' && method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        return send(res, 405, { error: 'use GET' });
      }
      if (path === '/actions') {
        const mounted = (actions ?? []).map((a) => ({
          method: a.method,
          path: a.path,
          description: a.description,
          combine: a.combine,
          ...(a.args ? { args: a.args } : {}),
        }));
        return send(res, 200, { endpoints: [...BUILTIN, ...mounted] });
      }
      const m = await backend.metrics();
      return send(res, 200, m.body, m.contentType);
    }
    if (actions === undefined) return send(res, 503, { error: 'starting: the actions are not known yet' });
    const action = actions.find((a) => a.path === path);
    if (action === undefined)
      return send(res, 404, { error: `no such endpoint ${path}`, endpoints: [...BUILTIN.map((b) => b.path), ...actions.map((a) => a.path)] });
    const allowedMethods = action.method === 'GET' ? ['GET', 'HEAD'] : ['POST'];
    if (!allowedMethods.includes(method)) {
      res.setHeader('allow', allowedMethods.join(', '));
      return send(res, 405, { error: `use ${action.method}` });
    }
    const args = queryArgs(action.args, url.searchParams);
    if (method === 'POST') {
      // A cross-site form or fetch without preflight can send neither a JSON content type nor a custom header.
      // The bearer header cannot be sent cross-site either; a session cookie can (same-site), so it needs one of the other two.
      const programmatic = mediaType(req) === 'application/json' || req.headers[REQUEST_HEADER] !== undefined || bearer;
      if (!programmatic) {
        logger.warn({ path }, 'POST without Content-Type: application/json or X-Heimdall-Request refused');
        return send(res, 403, { error: 'POST needs Content-Type: application/json (a JSON body, may be {}) or an X-Heimdall-Request: 1 header' });
      }
      const body = await readBody(req);
      for (const [k, v] of Object.entries(body)) {
        if (k in args) throw new HttpError(400, `'${k}' given both in the query string and in the body`);
        args[k] = v;
      }
    }
    const result = await backend.run(action, args);
    if (action.method === 'POST') logger.info({ action: action.path, args }, 'admin action');
    else logger.debug({ action: action.path, args }, 'admin action');
    return send(res, 200, result ?? { ok: true });
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = statusOf(err);
      if (status >= 500 && !(err instanceof HttpError)) logger.error({ err, path: req.url }, 'admin request failed');
      if (res.headersSent) return void res.destroy();
      const told = status < 500 || err instanceof HttpError;
      send(res, status, { error: told ? (err as Error).message : 'internal error (see the server log)' });
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.maxHeadersCount = 64;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error): void => reject(new ListenError(`admin ${options.host}:${options.port}: ${err.message}`, { cause: err }));
    server.once('error', fail);
    server.listen(options.port, options.host, () => {
      server.off('error', fail);
      resolve();
    });
  });
  return server;
}

/** `http://host:port` of a listening server. */
export function adminUrl(server: http.Server): string {
  const a = server.address() as AddressInfo;
  return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}
