/**
 * The `dedup` plugin: identical questions in flight share one downstream
 * resolution.
 */
import { definePlugin, PLUGIN_METRICS } from '@heimdall/core';
import { ContainerModule, inject, injectable, type PluginMetrics } from '@heimdall/core/di';
import { Deduplicator } from './dedup.js';
import { dedupOptionsSchema } from './options.js';

/** The plugin's Prometheus metrics, read from the {@link Deduplicator}'s counters at scrape time. */
@injectable()
export class DedupMetrics {
  constructor(@inject(PLUGIN_METRICS) metrics: PluginMetrics, @inject(Deduplicator) d: Deduplicator) {
    metrics.counterFields(d.stats, [
      ['leaders_total', 'leaders', 'Queries that ran the chain for their question (first of a flight).'],
      ['coalesced_total', 'coalesced', 'Queries answered from an identical in-flight query.'],
      ['failures_total', 'failures', 'Waiting queries answered SERVFAIL because the shared query failed or timed out.'],
      ['overflows_total', 'overflows', 'Queries not coalesced because maxWaiters or maxInFlight was reached.'],
    ]);
    metrics.gaugeOf('in_flight', 'Distinct questions in flight.', () => d.inFlight);
  }
}

/**
 * The dedup plugin: identical questions in flight share one downstream
 * resolution. Put it after the cache and before the upstream:
 * `plugins: [cache(), dedup(), upstream({ servers: ['1.1.1.1'] })]`.
 *
 * @example
 * createResolver({ plugins: [cache(), dedup({ maxWaiters: 256 }), upstream({ servers: ['9.9.9.9'] })] });
 */
export const dedup = definePlugin({
  name: 'dedup',
  description: 'Coalesces identical questions in flight: one downstream resolution, every waiter gets a copy with its own ID and letter case.',
  options: dedupOptionsSchema,
  setup: () => ({
    module: new ContainerModule(({ bind }) => {
      bind(Deduplicator).toSelf();
      bind(DedupMetrics).toSelf();
    }),
    middleware(scope) {
      scope.get(DedupMetrics);
      return scope.get(Deduplicator).middleware;
    },
  }),
});

export default dedup;
