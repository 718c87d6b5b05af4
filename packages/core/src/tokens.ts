/**
 * Dependency-injection tokens that core binds in every resolver's container,
 * plus the cross-plugin service contracts that more than one plugin needs.
 *
 * Always inject with these tokens explicitly (`@inject(LOGGER)`): Heimdall
 * never relies on emitted decorator metadata.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ClientInfo } from './pipeline/types.js';

/** The resolver's pino logger (`Logger`). Plugins take a child: `logger.child({ plugin: 'cache' })`. */
export const LOGGER: unique symbol = Symbol.for('heimdall.logger');
/** The resolver's {@link Clock}. Tests bind a fake one to drive TTLs and timeouts. */
export const CLOCK: unique symbol = Symbol.for('heimdall.clock');
/** The resolver's prom-client `Registry`. One per resolver, so several resolvers can live in one process. */
export const METRICS: unique symbol = Symbol.for('heimdall.metrics');
/** The resolver's {@link Lifecycle}: register start/stop work that is not a plugin hook. */
export const LIFECYCLE: unique symbol = Symbol.for('heimdall.lifecycle');
/**
 * The forwarding client ({@link Upstream}), bound by `@heimdall/plugin-upstream`.
 * Other plugins (the cache's prefetch and serve-stale refresh) resolve it with
 * `container.isBound(UPSTREAM)` first: it is optional.
 */
export const UPSTREAM: unique symbol = Symbol.for('heimdall.upstream');

export type { Logger, Registry };

/** Time source. `now()` is epoch milliseconds. Fakeable in tests (see `FakeClock` in `@heimdall/testing`). */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

/** Opaque timer handle returned by {@link Clock.setTimeout}. */
export type ClockTimer = { readonly __clockTimer?: never } | NodeJS.Timeout | number;

/** Start/stop hooks that are not tied to a plugin (e.g. a periodic sweep owned by a service). */
export interface Lifecycle {
  onStart(fn: () => void | Promise<void>): void;
  onStop(fn: () => void | Promise<void>): void;
}

/** Options for one {@link Upstream.resolve} call. */
export interface UpstreamResolveOptions {
  /** Aborts the whole resolution (all attempts). */
  signal?: AbortSignal;
  /** Epoch ms after which the resolution is abandoned; bounded by the query's deadline. */
  deadline?: number;
  /** The client the query came from (client-subnet policy, logging). Absent for background refreshes. */
  client?: ClientInfo;
}

/**
 * Sends a query (wire format, any ID) to the configured upstreams and returns
 * the response in wire format with the ID of the given query. Rejects when
 * every attempt failed or the deadline passed.
 */
export interface Upstream {
  resolve(query: Buffer, options?: UpstreamResolveOptions): Promise<Buffer>;
}
