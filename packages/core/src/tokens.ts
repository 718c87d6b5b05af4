/**
 * Dependency-injection tokens and the contracts that more than one package
 * uses. No plugin imports another plugin: they meet here.
 *
 * Scopes: the resolver's container holds core's services and whatever
 * plugins *provide*; each plugin has its own child container (its "scope")
 * holding its own bindings plus the per-plugin tokens below. Always inject
 * with these tokens explicitly (`@inject(LOGGER)`): Heimdall never relies on
 * emitted decorator metadata.
 */
import type { Buffer } from 'node:buffer';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { TSchema } from '@sinclair/typebox';
import type { ClientInfo } from './pipeline/types.js';

// ---------------------------------------------------------------- resolver-wide

/** The resolver's pino logger (`Logger`). Inside a plugin, inject {@link PLUGIN_LOGGER} instead. */
export const LOGGER: unique symbol = Symbol.for('heimdall.logger');
/** The resolver's {@link Clock}. Tests bind a fake one to drive TTLs and timeouts. */
export const CLOCK: unique symbol = Symbol.for('heimdall.clock');
/** The resolver's prom-client `Registry`. Inside a plugin, inject {@link PLUGIN_METRICS} to register metrics. */
export const METRICS: unique symbol = Symbol.for('heimdall.metrics');
/** The resolver's {@link Lifecycle}: register start/stop work that is not a plugin hook. */
export const LIFECYCLE: unique symbol = Symbol.for('heimdall.lifecycle');

// ---------------------------------------------------------------- per plugin

/** In a plugin's scope: its {@link PluginInfo} (instance name, metrics prefix). */
export const PLUGIN: unique symbol = Symbol.for('heimdall.plugin');
/** In a plugin's scope: its validated options, defaults filled in. */
export const PLUGIN_OPTIONS: unique symbol = Symbol.for('heimdall.plugin.options');
/** In a plugin's scope: a child of the resolver's logger bound to `{ plugin: name }`. */
export const PLUGIN_LOGGER: unique symbol = Symbol.for('heimdall.plugin.logger');
/** In a plugin's scope: its {@link PluginMetrics}, which names and registers its Prometheus metrics. */
export const PLUGIN_METRICS: unique symbol = Symbol.for('heimdall.plugin.metrics');

/** Who a plugin instance is. */
export interface PluginInfo {
  /** Instance name, unique in the resolver (`upstream`, `upstream-lan`). */
  readonly name: string;
  /** The plugin's own name (`upstream`), shared by its instances. */
  readonly kind: string;
  /** Prefix of its metric names: `heimdall_` + the instance name in snake case + `_`. */
  readonly metricsPrefix: string;
}

// ---------------------------------------------------------------- contracts

/**
 * The forwarding client ({@link Upstream}), provided by `@heimdall/plugin-upstream`.
 * Optional: inject with `@inject(UPSTREAM) @optional()`.
 */
export const UPSTREAM: unique symbol = Symbol.for('heimdall.upstream');
/** The cache's control view ({@link CacheControl}), provided by `@heimdall/plugin-cache`. */
export const CACHE_CONTROL: unique symbol = Symbol.for('heimdall.cache.control');
/** Blocking control ({@link BlockingControl}), provided by `@heimdall/plugin-blocking`. */
export const BLOCKING_CONTROL: unique symbol = Symbol.for('heimdall.blocking.control');
/** Multi-injected: every {@link AdminActions} group the chain contributes. The app mounts them. */
export const ADMIN_ACTIONS: unique symbol = Symbol.for('heimdall.admin.actions');
/** Multi-injected, in chain order: the {@link CacheTier}s the cache consults after its in-memory L1. */
export const CACHE_TIERS: unique symbol = Symbol.for('heimdall.cache.tiers');

/**
 * Small runtime state that outlives a process or is shared by instances
 * ({@link StateStore}): blocking's disable-until, provided by a disk
 * (persistence) or Redis plugin. Optional: inject with `@optional()`.
 */
export const STATE_STORE: unique symbol = Symbol.for('heimdall.state.store');

/** Tokens that several plugins may provide at once (collected with `getAll`). */
export const MULTI_TOKENS: ReadonlySet<symbol> = new Set([ADMIN_ACTIONS, CACHE_TIERS]);

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

/** What a cache flush removes. */
export type FlushScope = { readonly all: true } | { readonly name: string } | { readonly suffix: string };

/** The narrow view of a cache that other packages need (admin, sync across instances). */
export interface CacheControl {
  /** Entries held in memory. */
  readonly size: number;
  /** Removes entries; returns how many were removed from memory. Names are presentation format. */
  flush(scope: FlushScope): number;
}

/** Blocking state, as reported by {@link BlockingControl.status}. */
export interface BlockingStatus {
  readonly enabled: boolean;
  /** Epoch ms at which blocking turns itself back on, or null. */
  readonly disabledUntil: number | null;
  readonly [key: string]: unknown;
}

/** Turning blocking on and off, and reloading its lists. */
export interface BlockingControl {
  status(): BlockingStatus;
  enable(): void;
  /** Disables blocking, for `durationMs` or until enabled again. */
  disable(durationMs?: number): void;
  /** Reloads every list now; resolves when done. */
  reload(): Promise<unknown>;
}

/**
 * A cache tier below the in-memory L1 (a disk or Redis tier). Values are the
 * cache's binary entry (wire answer + absolute expiry), keyed by the cache's
 * question key. Synchronous tiers (a local disk) return values directly;
 * remote ones a Promise, which the cache bounds by its own budget.
 *
 * A value returned by `get` (directly or through its Promise) may only be
 * valid until the next `get` on that tier — e.g. a zero-copy view of an
 * LMDB read buffer: the caller checks and copies what it needs before
 * reading that tier again, and never keeps the value. The `expiresAt`
 * given to `set` is how long the tier should keep the entry (its expiry
 * plus the cache's serve-stale window, when on); the entry's own freshness
 * is inside the value.
 */
export interface CacheTier {
  readonly name: string;
  /**
   * True when a Promise returned by `get` never rejects and settles by the
   * `deadline` it is given (a late value is dropped by the tier itself):
   * the cache then awaits it as is instead of racing it against a timer of
   * its own (one Promise and one timer entry fewer per read).
   */
  readonly settlesByDeadline?: boolean;
  /**
   * The entry under `key`, or undefined. `deadline` (epoch ms) is when the
   * cache stops waiting: the whole read budget for this lookup, shared by
   * the tiers after this one. `key` is valid only during the call (the
   * cache reuses its bytes): copy it to keep it.
   */
  get(key: Uint8Array, deadline: number): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /** Stores an entry; must not block (batch, buffer, drop when full). `expiresAt` is epoch ms. */
  set(key: Uint8Array, entry: Uint8Array, expiresAt: number): void;
  flush(scope: FlushScope): void | Promise<void>;
}

/**
 * A small key → JSON value store for runtime state (not a cache). Reads are
 * synchronous from a local copy; writes go to the backing store (disk,
 * Redis) in the background; `subscribe` reports changes made by other
 * processes or instances (and, once, the stored value at subscription when
 * there is one).
 */
export interface StateStore {
  get(key: string): unknown;
  /** Stores `value` (JSON-able; `undefined` deletes). `ttlMs` lets the backend forget it. */
  set(key: string, value: unknown, options?: { readonly ttlMs?: number }): void;
  subscribe(key: string, listener: (value: unknown) => void): () => void;
}

/** How an action's results from several workers combine into one. */
export type AdminCombine = 'sum' | 'first' | 'all';

/**
 * One admin operation a plugin offers, mounted by the app at
 * `/<plugin>/<name>` and asked of every worker in cluster mode.
 */
export interface AdminAction<A = any, R = unknown> {
  /** Path segment (`flush`, `status`). */
  readonly name: string;
  /** GET for reads, POST for changes (POST requests get the admin API's cross-site protections). */
  readonly method: 'GET' | 'POST';
  /** One line for the endpoint listing and docs. */
  readonly description: string;
  /** Schema of the arguments (query string or JSON body), validated by core's validator before `run`. */
  readonly args?: TSchema;
  /** `sum`: numeric fields added across workers; `first`: the first worker's result; `all`: an array of every result. */
  readonly combine: AdminCombine;
  run(args: A): R | Promise<R>;
}

/** What a plugin contributes under {@link ADMIN_ACTIONS}. */
export interface AdminActions {
  /** Instance name of the contributing plugin: the first path segment. */
  readonly plugin: string;
  readonly actions: readonly AdminAction[];
}
