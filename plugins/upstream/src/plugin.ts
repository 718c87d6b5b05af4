/**
 * The `upstream` plugin: forwards the queries that reach it (within its
 * `zones`) through its {@link UpstreamClient}, provides core's `UPSTREAM`
 * and a `health` admin action, and closes its sockets on stop.
 */
import type { Buffer } from 'node:buffer';
import {
  ADMIN_ACTIONS,
  type AdminAction,
  type AdminActions,
  type DnsContext,
  definePlugin,
  EdeCode,
  type Logger,
  type Middleware,
  type Next,
  PLUGIN,
  PLUGIN_LOGGER,
  PLUGIN_OPTIONS,
  type PluginInfo,
  UPSTREAM,
  UPSTREAM_USED,
  type Upstream,
  type UpstreamResolveOptions,
} from '@heimdall/core';
import { ContainerModule, inject, injectable, multiInject } from '@heimdall/core/di';
import { MessageReader } from '@heimdall/core/packet';
import { UpstreamClient, type UpstreamHealth } from './client.js';
import { UpstreamError, UpstreamExhaustedError } from './errors.js';
import type { UpstreamGroup } from './group.js';
import { deriveSettings, type UpstreamOptions, upstreamOptionsSchema } from './options.js';

/** Every upstream instance's client in the resolver, in chain order (this package's own multi token). */
const UPSTREAM_INSTANCES: unique symbol = Symbol('heimdall.plugin-upstream.instances');

const OVERLOADED_TEXT = 'upstream capacity exceeded';

/** The middleware: built once per instance, one closure per query at most (the async forward). */
@injectable()
export class UpstreamMiddleware {
  readonly handle: Middleware;

  constructor(@inject(UpstreamClient) client: UpstreamClient, @inject(PLUGIN_OPTIONS) options: UpstreamOptions, @inject(PLUGIN_LOGGER) logger: Logger) {
    const margin = options.deadlineMargin;
    const debug = logger.isLevelEnabled('debug');
    const forward = async (ctx: DnsContext, group: UpstreamGroup): Promise<void> => {
      try {
        // The resolver's own payload size goes into the OPT of our answer.
        const prep = client.prepare(ctx.request, ctx.query, ctx.ednsPayloadSize, ctx.client);
        // Give up `deadlineMargin` before core's deadline, so that our SERVFAIL (with its EDE) is the one the client gets.
        ctx.response = await client.forward(group, prep, ctx.deadline - margin);
        ctx.set(UPSTREAM_USED, prep.upstream);
      } catch (e) {
        if (!(e instanceof UpstreamError)) throw e;
        if (e instanceof UpstreamExhaustedError) {
          ctx.servfail({ code: e.ede, text: e.ede === EdeCode.NO_REACHABLE_AUTHORITY ? 'upstream timed out' : 'upstream unreachable' });
        } else if (e.code === 'OVERLOADED') {
          // A local condition: answer at once, and keep it out of caches.
          ctx.noCache = true;
          ctx.servfail({ code: EdeCode.OTHER, text: OVERLOADED_TEXT });
        } else if (e.code === 'BAD_QUERY') {
          ctx.formerr();
        } else {
          // ABORTED / CLOSED: the resolver is stopping.
          ctx.servfail({ code: EdeCode.NETWORK_ERROR, text: 'upstream closed' });
        }
        if (debug) ctx.log.debug({ err: e.message }, 'upstream failed');
      }
    };
    this.handle = (ctx: DnsContext, next: Next) => {
      const group = client.route(ctx.query);
      if (group === null) return next();
      return forward(ctx, group);
    };
  }
}

/** `GET /<instance>/health`: per-upstream state, RTT, in-flight attempts and failures, from every worker. */
@injectable()
export class UpstreamAdmin implements AdminActions {
  readonly plugin: string;
  readonly actions: readonly AdminAction[];

  constructor(@inject(PLUGIN) info: PluginInfo, @inject(UpstreamClient) client: UpstreamClient) {
    this.plugin = info.name;
    const health: AdminAction<Record<string, never>, UpstreamHealth[]> = {
      name: 'health',
      method: 'GET',
      description: 'Health (up/down, consecutive failures, time to retry), RTT average, attempts in flight and failure counts of every upstream',
      combine: 'all',
      run: () => client.health(),
    };
    this.actions = [health];
  }
}

/**
 * What the resolver gets under `UPSTREAM`: with several upstream instances
 * (split routing), a query goes to the first instance in chain order whose
 * zones cover it, as it would through the chain — so the cache's prefetch of
 * `nas.lan` goes to the LAN resolver, not to the public one.
 */
@injectable()
export class UpstreamRouter implements Upstream {
  constructor(@multiInject(UPSTREAM_INSTANCES) readonly clients: readonly UpstreamClient[]) {}

  resolve(query: Buffer, options?: UpstreamResolveOptions): Promise<Buffer> {
    const clients = this.clients;
    if (clients.length === 1) return clients[0]!.resolve(query, options);
    let reader: MessageReader;
    try {
      reader = new MessageReader(query);
    } catch (e) {
      return Promise.reject(new UpstreamError('BAD_QUERY', (e as Error).message, undefined, { cause: e }));
    }
    for (const c of clients) if (c.route(reader) !== null) return c.resolve(query, options);
    return Promise.reject(new UpstreamError('BAD_QUERY', `no upstream instance covers "${reader.qname}"`));
  }
}

/**
 * The upstream (forwarding) plugin. Options are validated at the call: a bad
 * field throws `ConfigError` naming it (`upstream.servers[1]: …`). It is
 * normally the last plugin of the chain; with `zones`, several instances
 * split the name space (`upstream({ zones: ['lan'], servers: ['192.168.1.1'] },
 * { name: 'upstream-lan' })` before `upstream({ servers: ['1.1.1.1'] })`).
 */
export const upstream = definePlugin({
  name: 'upstream',
  description: 'Forwards queries to upstream resolvers over UDP, TCP, DNS over TLS and DNS over HTTPS.',
  options: upstreamOptionsSchema,
  setup: (options, instance) => {
    // What the schema cannot check (IPs, ports, duplicate domains, CA file) fails now, at the factory call.
    deriveSettings(options, instance.name);
    return {
      module: new ContainerModule(({ bind }) => {
        bind(UpstreamClient).toSelf();
        bind(UpstreamMiddleware).toSelf();
        bind(UpstreamAdmin).toSelf();
        bind(UpstreamRouter).toSelf();
      }),
      provides: [
        { token: UPSTREAM, use: UpstreamRouter },
        { token: UPSTREAM_INSTANCES, use: UpstreamClient, multi: true },
        { token: ADMIN_ACTIONS, use: UpstreamAdmin },
      ],
      middleware: (scope) => scope.get(UpstreamMiddleware).handle,
      stop: (scope) => scope.get(UpstreamClient).close(),
    };
  },
});

export default upstream;
