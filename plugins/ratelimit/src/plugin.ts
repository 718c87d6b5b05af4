/**
 * The `ratelimit` plugin factory.
 */
import { ADMIN_ACTIONS, definePlugin, PLUGIN, type PluginInfo } from '@heimdall/core';
import { ContainerModule } from '@heimdall/core/di';
import { limiterActions } from '@heimdall/core/pipeline';
import { compileRatelimit, ratelimitOptionsSchema } from './options.js';
import { RATELIMIT_ACTIONS, RATELIMIT_ADMIN, RATELIMIT_CONFIG, RatelimitMiddleware, RatelimitService } from './service.js';

/**
 * Query rate limiting per client prefix: a token bucket per /24 (IPv4) or
 * /56 (IPv6), `rate` queries per second with a `burst`; excess UDP queries
 * get an empty TC=1 answer (real clients retry over TCP) or nothing. Place
 * it first in the chain (after an ACL), so excess queries cost nothing else.
 */
export const ratelimit = definePlugin({
  name: 'ratelimit',
  // Decides for every query, core's own CHAOS/AXFR/ANY answers included (they come after it).
  role: 'admission',
  description: 'Token bucket per client prefix (rate, burst, allowlist); excess UDP queries get TC=1 or are dropped.',
  options: ratelimitOptionsSchema,
  setup: (options, { path }) => {
    const config = compileRatelimit(options, path);
    return {
      module: new ContainerModule(({ bind }) => {
        bind(RATELIMIT_CONFIG).toConstantValue(config);
        bind(RatelimitService).toSelf();
        bind(RatelimitMiddleware).toSelf();
        bind(RATELIMIT_ADMIN).toDynamicValue(({ get }) => limiterActions(get<PluginInfo>(PLUGIN).name, get(RatelimitService), RATELIMIT_ACTIONS));
      }),
      provides: [{ token: ADMIN_ACTIONS, use: RATELIMIT_ADMIN }],
      middleware: (scope) => scope.get(RatelimitMiddleware).handle,
      stop: (scope) => scope.get(RatelimitService).stop(),
    };
  },
});

export default ratelimit;
