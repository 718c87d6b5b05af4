/**
 * The web dashboard's server side, used by the admin server (`admin.ts`):
 *
 * - Static files: the front end built by `scripts/build-dashboard.mjs`
 *   into `dist/dashboard/` (`index.html` + content-hashed `assets/*`), read
 *   into memory once (with a gzip copy). `/` answers `index.html` with
 *   `Cache-Control: no-cache` and an ETag; `/assets/<name>-<hash>.<ext>`
 *   are `immutable` for a year. The HTML carries a strict
 *   Content-Security-Policy (only this origin's scripts and styles, no
 *   framing).
 * - Browser sessions: `POST /login` with `{"token": "…"}` (JSON only) sets
 *   an `HttpOnly; SameSite=Strict` cookie holding a random session id; the
 *   admin server accepts that cookie like the bearer token. Sessions live
 *   in this process (the cluster primary serves admin), expire after 12 h,
 *   at most 256 at once (the oldest goes first); `POST /logout` ends one.
 *   Failed logins are limited per client address (20 a minute, then 429
 *   for that address until the minute ends) under a global ceiling of 1000
 *   a minute.
 */
import type { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type http from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Logger } from 'pino';

/** Name of the session cookie. */
export const SESSION_COOKIE = 'heimdall_session';
const SESSION_TTL_MS = 12 * 3600_000;
const MAX_SESSIONS = 256;
/** Failed logins one client address may make per minute before it gets 429 for the rest of the minute. */
export const LOGIN_FAILURES_PER_CLIENT = 20;
/** Failed logins per minute from all clients together before everyone gets 429 (a ceiling for many addresses at once). */
export const LOGIN_FAILURES_GLOBAL = 1000;
/** Client addresses whose failed logins are counted at once. */
const MAX_LOGIN_CLIENTS = 1024;

/** The built front end next to this module (`dist/dashboard`), when it exists. */
export function defaultDashboardDir(): string | undefined {
  const dir = fileURLToPath(new URL('./dashboard/', import.meta.url));
  return existsSync(join(dir, 'index.html')) ? dir : undefined;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/** The page's Content-Security-Policy: nothing from elsewhere, no inline script, no framing. */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

interface StaticFile {
  body: Buffer;
  gzip: Buffer | undefined;
  type: string;
  etag: string;
  cache: string;
}

/** The dashboard's files, in memory. */
export class DashboardFiles {
  private readonly files = new Map<string, StaticFile>();

  constructor(dir: string) {
    const add = (urlPath: string, file: string, cache: string): void => {
      const body = readFileSync(file);
      const type = TYPES[extname(file)] ?? 'application/octet-stream';
      const compressible = type.startsWith('text/') || type === 'image/svg+xml' || type === 'application/json';
      const gzip = compressible && body.length > 512 ? gzipSync(body, { level: 9 }) : undefined;
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
      this.files.set(urlPath, { body, gzip, type, etag, cache });
    };
    add('/', join(dir, 'index.html'), 'no-cache');
    const assets = join(dir, 'assets');
    if (existsSync(assets)) for (const f of readdirSync(assets)) add(`/assets/${f}`, join(assets, f), 'public, max-age=31536000, immutable');
  }

  /** Whether `path` is one of the files. */
  has(path: string): boolean {
    return this.files.has(path);
  }

  /** Serves `path` (GET/HEAD): 200, or 304 for a matching If-None-Match. Returns false when there is no such file. */
  serve(req: http.IncomingMessage, res: http.ServerResponse, path: string): boolean {
    const f = this.files.get(path);
    if (f === undefined) return false;
    const headers: Record<string, string | number> = {
      'content-type': f.type,
      'cache-control': f.cache,
      etag: f.etag,
      vary: 'accept-encoding',
      'x-content-type-options': 'nosniff',
    };
    if (f.type.startsWith('text/html')) {
      headers['content-security-policy'] = DASHBOARD_CSP;
      headers['x-frame-options'] = 'DENY';
      headers['referrer-policy'] = 'no-referrer';
    }
    if (req.headers['if-none-match'] === f.etag) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    const gzip = f.gzip !== undefined && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? f.gzip! : f.body;
    if (gzip) headers['content-encoding'] = 'gzip';
    headers['content-length'] = body.length;
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }
}

/** A cookie's value from a `Cookie` header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Browser sessions opened by `POST /login`. */
export class Sessions {
  private readonly sessions = new Map<string, number>();
  /** Failed logins in the current minute per client address (at most {@link MAX_LOGIN_CLIENTS} addresses), to slow guessing. */
  private readonly failuresBy = new Map<string, number>();
  /** Failed logins in the current minute, all clients together. */
  private failures = 0;
  private failureMinute = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** Opens a session; returns the `Set-Cookie` value. */
  open(): string {
    const id = randomBytes(32).toString('base64url');
    const now = this.now();
    for (const [k, exp] of this.sessions) if (exp <= now) this.sessions.delete(k);
    while (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    this.sessions.set(id, now + SESSION_TTL_MS);
    return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_TTL_MS / 1000}`;
  }

  /** Whether the request's cookie names a live session. */
  valid(req: http.IncomingMessage): boolean {
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (id === undefined || id.length !== 43) return false;
    const exp = this.sessions.get(id);
    if (exp === undefined) return false;
    if (exp <= this.now()) {
      this.sessions.delete(id);
      return false;
    }
    return true;
  }

  /** Ends the request's session; returns the `Set-Cookie` value that clears the cookie. */
  close(req: http.IncomingMessage): string {
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (id !== undefined) this.sessions.delete(id);
    return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
  }

  /** Starts a new minute's counts when the minute changed. */
  private minute(): void {
    const minute = Math.floor(this.now() / 60_000);
    if (minute !== this.failureMinute) {
      this.failureMinute = minute;
      this.failures = 0;
      this.failuresBy.clear();
    }
  }

  /**
   * Counts a failed login from `address`; true when logins are now refused
   * for it (answer 429): more than {@link LOGIN_FAILURES_PER_CLIENT} failures
   * from that address this minute, or more than {@link LOGIN_FAILURES_GLOBAL}
   * from everyone. Per address, so a local process guessing tokens locks out
   * itself, not the browser (one address past the table's bound: the new
   * one is counted from the oldest's slot).
   */
  failed(address = ''): boolean {
    this.minute();
    this.failures++;
    const by = this.failuresBy;
    let n = by.get(address);
    if (n === undefined) {
      if (by.size >= MAX_LOGIN_CLIENTS) by.delete(by.keys().next().value!);
      n = 0;
    }
    by.set(address, n + 1);
    return this.throttled(address);
  }

  /** Whether logins from `address` are refused right now (too many failures this minute, from it or from everyone). */
  throttled(address = ''): boolean {
    if (Math.floor(this.now() / 60_000) !== this.failureMinute) return false;
    return (this.failuresBy.get(address) ?? 0) > LOGIN_FAILURES_PER_CLIENT || this.failures > LOGIN_FAILURES_GLOBAL;
  }

  get size(): number {
    return this.sessions.size;
  }
}

/** Logs where the dashboard is (the start's last line), when it is built. */
export function dashboardLine(logger: Logger, adminBase: string, tokenRequired: boolean): void {
  if (defaultDashboardDir() === undefined) return;
  const url = `${adminBase.replace('://0.0.0.0:', '://127.0.0.1:').replace('://[::]:', '://[::1]:')}/`;
  logger.info({ dashboard: url }, `dashboard: open ${url} in a browser${tokenRequired ? ' (log in with admin.token)' : ''}`);
}
