/**
 * Running middleware and plugins in tests, without sockets.
 */
import type { Buffer } from 'node:buffer';
import {
  type ClientInfo,
  type Clock,
  createResolver,
  DnsContext,
  type HeimdallPlugin,
  type Logger,
  type Middleware,
  type Resolver,
  type ResolverOptions,
} from '@heimdall/core';
import { compose, type ContextEnv, silentLogger } from '@heimdall/core/pipeline';
import { FakeClock } from './clock.js';

/** Default client of the kit: 192.0.2.10:53000 over UDP (TEST-NET-1). */
export const TEST_CLIENT: ClientInfo = Object.freeze({
  address: '192.0.2.10',
  port: 53000,
  family: 4,
  transport: 'udp',
  localAddress: '127.0.0.1',
  localPort: 53,
});

/** Options of {@link createContext}, {@link runMiddleware} and {@link runChain}. */
export interface RunOptions {
  /** Who asks. Fields not given come from {@link TEST_CLIENT}. */
  client?: Partial<ClientInfo>;
  /** Clock of the context (deadline, `ctx.remaining()`). Default: a new {@link FakeClock}. */
  clock?: Clock;
  /** Logger behind `ctx.log`. Default: silent. */
  logger?: Logger;
  /** Per-query timeout in ms. Default 5000. */
  queryTimeoutMs?: number;
  /** Payload size advertised in built responses. Default 1232. */
  ednsPayloadSize?: number;
  /**
   * Resolver whose built middleware runs (when a plugin rather than a
   * middleware is given). Default: a {@link testResolver} of those plugins.
   */
  resolver?: Resolver;
  /**
   * What runs when the middleware calls `next()` (the rest of the chain).
   * Default: nothing (nobody answers). Give e.g. a middleware that answers
   * to test a cache's store path.
   */
  next?: Middleware;
}

/** Outcome of running middleware on one query. */
export interface RunResult {
  /** The context after the run (state, response…). */
  readonly ctx: DnsContext;
  /** `ctx.response`: null when nobody answered. */
  readonly response: Buffer | null;
  /** True when the chain completed synchronously (no Promise was returned). */
  readonly sync: boolean;
  /** How many times the middleware under test called `next()` (for runMiddleware; 0 or 1 for a correct one). */
  readonly nextCalls: number;
}

/** Builds a context for `query` as the resolver would (client info, deadline, logger, clock). */
export function createContext(query: Buffer, options: RunOptions = {}): DnsContext {
  const env: ContextEnv = {
    logger: options.logger ?? silentLogger(),
    clock: options.clock ?? new FakeClock(),
    ednsPayloadSize: options.ednsPayloadSize ?? 1232,
    recursionAvailable: true,
    queryTimeoutMs: options.queryTimeoutMs ?? 5000,
  };
  const client: ClientInfo = options.client ? { ...TEST_CLIENT, ...options.client } : TEST_CLIENT;
  return new DnsContext(query, client, env);
}

/**
 * Runs one middleware (or a plugin's middleware, built with
 * {@link middlewareOf}) on `query`. Errors it throws propagate (unlike in a
 * resolver, where they become SERVFAIL): tests see them directly. Calling
 * `next()` twice throws, as in a resolver.
 *
 * @example
 * const { response, sync } = await runMiddleware(whoamiMiddleware, query('whoami.test', 'A'), { client: { address: '198.51.100.7' } });
 */
export async function runMiddleware(middleware: Middleware | HeimdallPlugin, query: Buffer, options: RunOptions = {}): Promise<RunResult> {
  const underTest: Middleware = typeof middleware === 'function' ? middleware : middlewareOf(middleware, options.resolver);
  let nextCalls = 0;
  const downstream = options.next;
  const counting: Middleware = (ctx, next) => {
    nextCalls++;
    return downstream ? downstream(ctx, next) : undefined;
  };
  const ctx = createContext(query, options);
  const r = compose([
    { name: 'under-test', middleware: underTest },
    { name: 'next', middleware: counting },
  ])(ctx);
  if (r !== undefined) await r;
  ctx._finalize();
  return { ctx, response: ctx.response, sync: r === undefined, nextCalls };
}

/**
 * The middleware a plugin contributes, as the resolver built it (exactly
 * once, in its own scope). Without a resolver, one is assembled by
 * {@link testResolver} from this plugin alone. Throws when the plugin has no
 * middleware.
 */
export function middlewareOf(plugin: HeimdallPlugin, resolver?: Resolver): Middleware {
  const r = resolver ?? testResolver([plugin]);
  const mw = r.middleware(plugin.name);
  if (typeof mw !== 'function') throw new TypeError(`plugin '${plugin.name}' contributes no middleware`);
  return mw;
}

/** Runs middleware (or plugins' middleware) in order as one chain on `query` (no resolver failure rules; errors propagate). */
export async function runChain(middleware: ReadonlyArray<Middleware | HeimdallPlugin>, query: Buffer, options: RunOptions = {}): Promise<RunResult> {
  let resolver = options.resolver;
  const plugins = middleware.filter((m): m is HeimdallPlugin => typeof m !== 'function');
  if (resolver === undefined && plugins.length > 0) resolver = testResolver(plugins);
  const steps = middleware.map((m) => (typeof m === 'function' ? m : middlewareOf(m, resolver)));
  if (options.next) steps.push(options.next);
  const ctx = createContext(query, options);
  const r = compose(steps.map((m, i) => ({ name: `#${i}`, middleware: m })))(ctx);
  if (r !== undefined) await r;
  ctx._finalize();
  return { ctx, response: ctx.response, sync: r === undefined, nextCalls: 0 };
}

/** Options of {@link testResolver}: those of `createResolver`, with the kit's defaults (silent logger, FakeClock, no listeners). */
export type TestResolverOptions = Partial<Omit<ResolverOptions, 'plugins'>>;

/** A resolver for tests, with its fake clock. */
export interface TestResolver extends Resolver {
  readonly clock: FakeClock | Clock;
  /** Shortcut for `container.get(token)` (services of the resolver and what plugins provide). */
  get<T>(token: symbol): T;
}

/**
 * A real resolver (all of core's failure rules: SERVFAIL on throw, deadline,
 * FORMERR, NOTIMP…) built from plugins, with a silent logger and a
 * {@link FakeClock} unless given. Call `handle(query)` on it; `start()` it
 * when the plugins have start hooks or listeners are configured.
 *
 * @example
 * const r = testResolver([whoami()]);
 * expectAnswers(await r.handle(query('whoami.test'), { address: '198.51.100.7' }), ['198.51.100.7']);
 */
export function testResolver(plugins: HeimdallPlugin[], options: TestResolverOptions = {}): TestResolver {
  const clock = options.clock ?? new FakeClock();
  const resolver = createResolver({ logger: silentLogger(), ...options, clock, plugins });
  const container = resolver.container;
  return Object.assign(resolver, {
    clock,
    get<T>(token: symbol): T {
      return container.get<T>(token);
    },
  });
}
