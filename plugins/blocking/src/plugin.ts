/**
 * The `blocking` plugin factory.
 */
import { CLOCK, type Clock, type HeimdallPlugin, LOGGER, type Logger, METRICS, type Registry, systemClock } from '@heimdall/core';
import { ContainerModule } from 'inversify';
import { BlockingMetrics } from './metrics.js';
import { createBlockingMiddleware } from './middleware.js';
import { type BlockingOptions, resolveOptions } from './options.js';
import { BLOCKING_CONTROL, type BlockingControl, BlockingService } from './service.js';


/**
 * Block and allow lists per client group. Options are validated now: a bad
 * field throws `ConfigError` naming it (`blocking.groups.ads.block[1]: must
 * be a path or http(s) URL`). Lists load in `start()` (from the disk copy
 * first, then the network); the service is bound under
 * {@link BLOCKING_CONTROL} for the admin API.
 *
 * Place it before the cache, so blocked names never reach the cache or upstream:
 *
 * @example
 * const resolver = createResolver({
 *   plugins: [
 *     blocking({
 *       groups: {
 *         ads: { block: ['https://big.oisd.nl/domainswild', './my-block.txt'], allow: [{ inline: 'good.example.com' }] },
 *         kids: { block: ['./adult.txt'] },
 *       },
 *       clients: { default: ['ads'], '192.168.1.64/26': ['ads', 'kids'] },
 *       cacheDir: '/var/lib/heimdall/lists',
 *     }),
 *     cache(),
 *     upstream({ servers: ['1.1.1.1'] }),
 *   ],
 * });
 */
export function blocking(options: BlockingOptions): HeimdallPlugin {
  const resolved = resolveOptions(options);
  return {
    name: 'blocking',
    module: new ContainerModule((o) => {
      o.bind<BlockingService>(BLOCKING_CONTROL)
        .toDynamicValue((ctx) => {
          const clock = ctx.get<Clock>(CLOCK, { optional: true }) ?? systemClock;
          const logger = ctx.get<Logger>(LOGGER, { optional: true });
          const registry = ctx.get<Registry>(METRICS, { optional: true });
          const metrics = registry === undefined ? null : new BlockingMetrics(registry, resolved.groups);
          return new BlockingService(resolved, clock, logger?.child({ plugin: 'blocking' }) ?? null, metrics);
        })
        .inSingletonScope();
    }),
    middleware(container) {
      const service = container.get<BlockingService>(BLOCKING_CONTROL);
      return createBlockingMiddleware(service, service.metrics);
    },
    async start(container) {
      await container.get<BlockingService>(BLOCKING_CONTROL).start();
    },
    async stop(container) {
      await container.get<BlockingService>(BLOCKING_CONTROL).stop();
    },
  };
}

export default blocking;
export type { BlockingControl };
