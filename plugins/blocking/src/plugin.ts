/**
 * The `blocking` plugin factory.
 */
import { ADMIN_ACTIONS, BLOCKING_CONTROL, definePlugin } from '@heimdall/core';
import { ContainerModule } from '@heimdall/core/di';
import { BlockingAdmin } from './admin.js';
import { checkLists } from './check.js';
import { BlockingMetrics } from './metrics.js';
import { BlockingMiddleware } from './middleware.js';
import { blockingOptionsSchema, compileOptions } from './options.js';
import { BlockingService } from './service.js';
import { BLOCKING_CONFIG } from './tokens.js';

/**
 * Block and allow lists per client group. Options are validated at the call:
 * a bad field throws `ConfigError` naming it (`blocking.groups.ads.block[1]:
 * must be a path or an http(s) URL`; given a `path`, as the app gives
 * `plugins[1].options`, that path: `plugins[1].options.groups.ads.block[1]`);
 * so do `start()`'s `BLOCKING_REQUIRED_LIST` and the `check()` problems. `start()` builds from the lists on
 * this machine and downloads the rest in the background; the service is
 * provided as core's `BLOCKING_CONTROL`, with admin actions under
 * `ADMIN_ACTIONS`.
 *
 * Place it before the cache, so blocked names never reach the cache or upstream.
 */
export const blocking = definePlugin({
  name: 'blocking',
  description: 'Block and allow lists (hosts, domains, wildcards, adblock-style, regex) per client group, refreshed in the background',
  options: blockingOptionsSchema,
  setup: (options, instance) => {
    // Errors name `instance.path` (`plugins[1].options.groups…` from the app, `blocking.groups…` as a library); the state key uses the name.
    const config = compileOptions(options, instance);
    return {
      module: new ContainerModule(({ bind }) => {
        bind(BLOCKING_CONFIG).toConstantValue(config);
        bind(BlockingMetrics).toSelf();
        bind(BlockingService).toSelf();
        bind(BlockingMiddleware).toSelf();
        bind(BlockingAdmin).toSelf();
      }),
      provides: [
        { token: BLOCKING_CONTROL, use: BlockingService },
        { token: ADMIN_ACTIONS, use: BlockingAdmin },
      ],
      middleware: (scope) => scope.get(BlockingMiddleware).handle,
      start: (scope) => scope.get(BlockingService).start(),
      stop: (scope) => scope.get(BlockingService).stop(),
      check: () => checkLists(config),
    };
  },
});

export default blocking;
