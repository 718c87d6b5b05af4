/**
 * The `dedup` plugin factory.
 */
import { CLOCK, type Clock, type HeimdallPlugin, METRICS, type Registry, systemClock } from '@heimdall/core';
import { ContainerModule } from 'inversify';
import { Counter, Gauge } from 'prom-client';
import { type DedupOptions, Deduplicator, resolveDedupOptions } from './dedup.js';

/** DI token of the plugin's {@link Deduplicator} (stats, in-flight count). */
export const DEDUP: unique symbol = Symbol.for('heimdall.dedup');

type Container = Parameters<NonNullable<HeimdallPlugin['start']>>[0];

const registered = new WeakSet<object>();

function registerMetrics(registry: Registry, d: Deduplicator): void {
  const counters: ReadonlyArray<readonly [string, 'leaders' | 'coalesced' | 'failures' | 'overflows', string]> = [
    ['heimdall_dedup_leaders_total', 'leaders', 'Queries that ran the chain for their question (first of a flight).'],
    ['heimdall_dedup_coalesced_total', 'coalesced', 'Queries answered from an identical in-flight query.'],
    ['heimdall_dedup_failures_total', 'failures', 'Waiting queries answered SERVFAIL because the shared query failed or timed out.'],
    ['heimdall_dedup_overflows_total', 'overflows', 'Queries not coalesced because maxWaiters or maxInFlight was reached.'],
  ];
  for (const [name, field, help] of counters) {
    new Counter({
      name,
      help,
      registers: [registry],
      collect(this: Counter) {
        this.reset();
        this.inc(d.stats[field]);
      },
    });
  }
  new Gauge({
    name: 'heimdall_dedup_in_flight',
    help: 'Distinct questions in flight.',
    registers: [registry],
    collect(this: Gauge) {
      this.set(d.inFlight);
    },
  });
}

function optional<T>(container: Container, token: symbol): T | undefined {
  return container.isBound(token) ? container.get<T>(token) : undefined;
}

/**
 * The dedup plugin: identical questions in flight share one downstream
 * resolution. Put it after the cache and before the upstream:
 * `plugins: [cache(), dedup(), upstream({ servers: ['1.1.1.1'] })]`.
 *
 * @example
 * createResolver({ plugins: [cache(), dedup({ maxWaiters: 256 }), upstream({ servers: ['9.9.9.9'] })] });
 */
export function dedup(options: DedupOptions = {}): HeimdallPlugin {
  const resolved = resolveDedupOptions(options);
  return {
    name: 'dedup',
    module: new ContainerModule((o) => {
      o.bind<Deduplicator>(DEDUP)
        .toDynamicValue((ctx) => new Deduplicator(resolved, ctx.get<Clock>(CLOCK, { optional: true }) ?? systemClock))
        .inSingletonScope();
    }),
    middleware(container) {
      const d = container.get<Deduplicator>(DEDUP);
      const registry = optional<Registry>(container, METRICS);
      if (registry !== undefined && !registered.has(registry)) {
        registered.add(registry);
        registerMetrics(registry, d);
      }
      return d.middleware;
    },
  };
}

export default dedup;
