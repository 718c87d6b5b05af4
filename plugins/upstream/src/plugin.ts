/**
 * The `upstream` plugin factory: binds the forwarding client under
 * `UPSTREAM`, forwards every query that reaches it, and closes sockets on stop.
 */
import { CLOCK, type Clock, type DnsContext, type HeimdallPlugin, LOGGER, type Logger, METRICS, type Middleware, type Registry, systemClock, UPSTREAM } from '@heimdall/core';
import { ContainerModule } from 'inversify';
import { UpstreamClient } from './client.js';
import { UpstreamError, UpstreamExhaustedError } from './errors.js';
import { resolveOptions, type UpstreamOptions } from './options.js';

type Container = Parameters<NonNullable<HeimdallPlugin['start']>>[0];

function optional<T>(container: Container, token: symbol): T | undefined {
  return container.isBound(token) ? container.get<T>(token) : undefined;
}

/**
 * Builds the middleware that forwards `ctx.request` through `client` and sets
 * `ctx.response`. On failure it answers SERVFAIL with an extended DNS error
 * (22 No Reachable Authority when every attempt timed out, 23 Network Error
 * otherwise), or FORMERR for a query that cannot be forwarded. A query no
 * group covers (only domain groups configured) goes to `next()`.
 */
export function createUpstreamMiddleware(client: UpstreamClient, logger?: Logger): Middleware {
  // Decided once: a per-query child logger is only built when debug logging is on.
  const debug = logger?.isLevelEnabled('debug') ?? false;
  return async (ctx: DnsContext, next) => {
    const group = client.route(ctx.query);
    if (group === null) return next();
    try {
      // The deadline bounds every attempt; ctx.signal is not used so that no
      // AbortController is allocated per query (stop() closes the transports).
      ctx.response = await client.resolveWith(group, ctx.request, ctx.query, { deadline: ctx.deadline, client: ctx.client });
    } catch (e) {
      if (!(e instanceof UpstreamError)) throw e;
      if (e instanceof UpstreamExhaustedError) {
        ctx.servfail({ code: e.ede, text: e.ede === 22 ? 'upstream timed out' : 'upstream unreachable' });
      } else if (e.code === 'BAD_QUERY') {
        ctx.formerr();
      } else {
        // ABORTED / CLOSED (resolver stopping), BAD_RESPONSE (malformed reply records).
        ctx.servfail({ code: 23, text: e.code === 'BAD_RESPONSE' ? 'malformed upstream reply' : 'upstream closed' });
      }
      if (debug) ctx.log.debug({ err: e.message }, 'upstream failed');
    }
  };
}

/**
 * The upstream (forwarding) plugin. Options are validated now: a bad field
 * throws `ConfigError` naming it (`upstream.servers[1]: invalid upstream
 * "tls://x#!": …`). It is normally the last plugin of the chain.
 *
 * Binds {@link UpstreamClient} (an `Upstream`) under core's `UPSTREAM`
 * token so other plugins (the cache's prefetch and serve-stale refresh) can
 * resolve through it.
 *
 * @example
 * const resolver = createResolver({
 *   plugins: [
 *     cache(),
 *     upstream({
 *       servers: ['tls://1.1.1.1#cloudflare-dns.com', 'tls://9.9.9.9#dns.quad9.net'],
 *       strategy: 'fastest',
 *       domains: { 'corp.example': ['10.0.0.53'] },
 *     }),
 *   ],
 *   listen: [{ transport: 'udp', address: '127.0.0.1', port: 5353 }],
 * });
 */
export function upstream(options: UpstreamOptions): HeimdallPlugin {
  const resolved = resolveOptions(options);
  return {
    name: 'upstream',
    module: new ContainerModule((o) => {
      o.bind(UPSTREAM)
        .toDynamicValue(
          (ctx) =>
            new UpstreamClient(resolved, {
              clock: ctx.get<Clock>(CLOCK, { optional: true }) ?? systemClock,
              logger: ctx.get<Logger>(LOGGER, { optional: true })?.child({ plugin: 'upstream' }),
              registry: ctx.get<Registry>(METRICS, { optional: true }),
            }),
        )
        .inSingletonScope();
    }),
    middleware(container) {
      return createUpstreamMiddleware(container.get<UpstreamClient>(UPSTREAM), optional<Logger>(container, LOGGER));
    },
    async stop(container) {
      if (container.isBound(UPSTREAM)) await optional<UpstreamClient>(container, UPSTREAM)?.close();
    },
  };
}

export default upstream;
