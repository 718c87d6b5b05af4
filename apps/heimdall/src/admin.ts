/**
 * The admin HTTP server (node:http), on 127.0.0.1:8053 by default.
 *
 * | method | path | what |
 * | --- | --- | --- |
 * | GET | `/health` | 200 while the process runs |
 * | GET | `/ready` | 200 once serving, 503 while starting or draining |
 * | GET | `/metrics` | Prometheus text format |
 * | POST | `/cache/flush` | flush all; `?name=example.com` one name; `?suffix=example.com` a name and everything below |
 * | GET | `/cache/stats` | entry count |
 * | GET | `/blocking/status` | blocking state |
 * | POST | `/blocking/enable` | turn blocking on |
 * | POST | `/blocking/disable` | off; `?duration=5m` turns it back on after that long |
 * | POST | `/blocking/reload` | reload the lists now |
 *
 * With a token, every path except `/health` and `/ready` needs
 * `Authorization: Bearer <token>` (compared in constant time).
 */
import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { type ActionArgs, type ActionName, BadRequest, NotAvailable, parseDuration } from './actions.js';

/** What the admin server serves from (one resolver, or the cluster primary). */
export interface AdminBackend {
  metrics(): Promise<{ contentType: string; body: string }>;
  ready(): boolean;
  action(name: ActionName, args: ActionArgs): Promise<unknown>;
}

/** Options of {@link startAdmin}. */
export interface AdminOptions {
  host: string;
  port: number;
  token?: string;
  logger: Logger;
}

const ROUTES: Record<string, { method: 'GET' | 'POST'; action: ActionName }> = {
  '/cache/flush': { method: 'POST', action: 'cache.flush' },
  '/cache/stats': { method: 'GET', action: 'cache.stats' },
  '/blocking/status': { method: 'GET', action: 'blocking.status' },
  '/blocking/enable': { method: 'POST', action: 'blocking.enable' },
  '/blocking/disable': { method: 'POST', action: 'blocking.disable' },
  '/blocking/reload': { method: 'POST', action: 'blocking.reload' },
};

function send(res: http.ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = contentType === 'application/json' ? `${JSON.stringify(body)}\n` : String(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
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

/** Starts the admin server; resolves once it listens. */
export async function startAdmin(backend: AdminBackend, options: AdminOptions): Promise<http.Server> {
  const token = options.token === undefined ? undefined : Buffer.from(options.token);
  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://admin.invalid');
      const path = url.pathname.replace(/\/+$/, '') || '/';
      if (path === '/health') return send(res, 200, { status: 'ok' });
      if (path === '/ready') return backend.ready() ? send(res, 200, { status: 'ready' }) : send(res, 503, { status: 'not ready' });
      if (!authorized(req, token)) {
        res.setHeader('www-authenticate', 'Bearer realm="heimdall"');
        return send(res, 401, { error: 'missing or wrong bearer token' });
      }
      if (path === '/metrics') {
        if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'use GET' });
        const m = await backend.metrics();
        return send(res, 200, m.body, m.contentType);
      }
      const route = ROUTES[path];
      if (route === undefined) return send(res, 404, { error: `no such endpoint ${path}`, endpoints: ['/health', '/ready', '/metrics', ...Object.keys(ROUTES)] });
      if (req.method !== route.method) {
        res.setHeader('allow', route.method);
        return send(res, 405, { error: `use ${route.method}` });
      }
      const args: ActionArgs = {};
      const name = url.searchParams.get('name');
      const suffix = url.searchParams.get('suffix');
      const duration = url.searchParams.get('duration');
      if (name !== null) args.name = name;
      if (suffix !== null) args.suffix = suffix;
      if (duration !== null) args.durationMs = parseDuration(duration);
      const result = await backend.action(route.action, args);
      options.logger.info({ action: route.action, args }, 'admin action');
      return send(res, 200, result ?? { ok: true });
    } catch (err) {
      if (err instanceof BadRequest) return send(res, 400, { error: err.message });
      if (err instanceof NotAvailable) return send(res, 404, { error: err.message });
      options.logger.error({ err }, 'admin request failed');
      return send(res, 500, { error: (err as Error).message });
    }
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.maxHeadersCount = 64;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
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
