/**
 * Admin actions run against one resolver's container: cache flush and
 * blocking control. The admin HTTP server calls them directly in a single
 * process, or asks every worker over IPC in cluster mode.
 *
 * The services are looked up by their DI tokens (`Symbol.for` names, the
 * same symbols the plugins export), so the app works with whichever plugins
 * the chain has; an action on an absent plugin fails with `NotAvailable`.
 */
import type { Container } from 'inversify';

/** `CACHE_STORE` of @heimdall/plugin-cache. */
export const CACHE_STORE_TOKEN: symbol = Symbol.for('heimdall.cache.store');
/** `BLOCKING_CONTROL` of @heimdall/plugin-blocking. */
export const BLOCKING_CONTROL_TOKEN: symbol = Symbol.for('heimdall.blocking.control');

/** The admin actions. */
export type ActionName = 'cache.flush' | 'cache.stats' | 'blocking.status' | 'blocking.enable' | 'blocking.disable' | 'blocking.reload';

/** Arguments of an action (query-string values). */
export interface ActionArgs {
  name?: string;
  suffix?: string;
  /** blocking.disable: milliseconds; absent = until enabled again. */
  durationMs?: number;
}

/** The action's plugin is not in the chain (HTTP 404). */
export class NotAvailable extends Error {
  constructor(what: string) {
    super(`${what} is not in this resolver's chain`);
    this.name = 'NotAvailable';
  }
}

/** Bad arguments (HTTP 400). */
export class BadRequest extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadRequest';
  }
}

interface CacheStoreLike {
  readonly size?: number;
  flush(): number;
  flushName(name: string): number;
  flushSuffix(name: string): number;
}

type Fn = (...args: unknown[]) => unknown;

function service<T>(container: Container, token: symbol, what: string): T {
  if (!container.isBound(token)) throw new NotAvailable(what);
  return container.get<T>(token);
}

function call(obj: Record<string, unknown>, names: string[], args: unknown[], what: string): unknown {
  for (const n of names) if (typeof obj[n] === 'function') return (obj[n] as Fn).apply(obj, args);
  throw new NotAvailable(`${what} (${names[0]})`);
}

/** Runs one action on `container`. Resolves to a JSON-able result. */
export async function runAction(container: Container, action: ActionName, args: ActionArgs = {}): Promise<unknown> {
  switch (action) {
    case 'cache.flush': {
      const store = service<CacheStoreLike>(container, CACHE_STORE_TOKEN, 'the cache plugin');
      try {
        if (args.name !== undefined) return { removed: store.flushName(args.name) };
        if (args.suffix !== undefined) return { removed: store.flushSuffix(args.suffix) };
      } catch (err) {
        throw new BadRequest((err as Error).message);
      }
      return { removed: store.flush() };
    }
    case 'cache.stats': {
      const store = service<CacheStoreLike>(container, CACHE_STORE_TOKEN, 'the cache plugin');
      return { entries: store.size ?? null };
    }
    case 'blocking.status': {
      const control = service<Record<string, unknown>>(container, BLOCKING_CONTROL_TOKEN, 'the blocking plugin');
      return await call(control, ['status'], [], 'blocking control');
    }
    case 'blocking.enable': {
      const control = service<Record<string, unknown>>(container, BLOCKING_CONTROL_TOKEN, 'the blocking plugin');
      await call(control, ['enable'], [], 'blocking control');
      return await call(control, ['status'], [], 'blocking control');
    }
    case 'blocking.disable': {
      const control = service<Record<string, unknown>>(container, BLOCKING_CONTROL_TOKEN, 'the blocking plugin');
      await call(control, ['disable'], args.durationMs === undefined ? [] : [args.durationMs], 'blocking control');
      return await call(control, ['status'], [], 'blocking control');
    }
    case 'blocking.reload': {
      const control = service<Record<string, unknown>>(container, BLOCKING_CONTROL_TOKEN, 'the blocking plugin');
      const result = await call(control, ['reload'], [], 'blocking control');
      return result ?? (await call(control, ['status'], [], 'blocking control'));
    }
    default:
      throw new BadRequest(`unknown action ${String(action)}`);
  }
}

/** Parses `30s`, `5m`, `1h`, `1500ms` or a plain number of seconds into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new BadRequest(`duration must look like 30s, 5m, 1h or 1500ms, got ${JSON.stringify(text)}`);
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : m[2] === 'h' ? n * 3_600_000 : n * 1000;
  if (!(ms > 0) || ms > 7 * 24 * 3_600_000) throw new BadRequest('duration must be more than 0 and at most 7 days');
  return Math.round(ms);
}
