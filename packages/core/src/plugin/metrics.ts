/**
 * The one way a plugin registers Prometheus metrics: names get the plugin's
 * prefix (`heimdall_cache_hits_total`), the metric lands in the resolver's
 * registry, and two resolvers in one process never collide.
 *
 * Under the reference app's `--workers N`, `/metrics` combines the workers'
 * values of each metric by its `aggregator` (prom-client's
 * `AggregatorRegistry`): `sum` by default, right for what each worker has
 * of its own (its cache's entries, its queries). A gauge of something the
 * workers share or each hold a copy of (one LMDB environment, the same block
 * lists, an upstream's health as each sees it) says so: `max`, `min` or
 * `average`, or it would read N times too high.
 */
import {
  type Aggregator,
  Counter,
  type CounterConfiguration,
  Gauge,
  type GaugeConfiguration,
  Histogram,
  type HistogramConfiguration,
  type Registry,
} from 'prom-client';

type Named<C> = Omit<C, 'registers' | 'name'> & { name: string };

/** Injected as `PLUGIN_METRICS` in each plugin's scope. */
export class PluginMetrics {
  /**
   * @param registry the resolver's registry
   * @param prefix `heimdall_<instance>_`
   */
  constructor(
    readonly registry: Registry,
    readonly prefix: string,
  ) {}

  /** Full metric name for `name` (`hits_total` → `heimdall_cache_hits_total`). */
  name(name: string): string {
    return this.prefix + name;
  }

  /** A counter named `<prefix><name>`. Give `collect` to fill it at scrape time from plain numbers. */
  counter<L extends string = string>(config: Named<CounterConfiguration<L>>): Counter<L> {
    return new Counter<L>({ ...config, name: this.name(config.name), registers: [this.registry] });
  }

  /** A gauge named `<prefix><name>`. */
  gauge<L extends string = string>(config: Named<GaugeConfiguration<L>>): Gauge<L> {
    return new Gauge<L>({ ...config, name: this.name(config.name), registers: [this.registry] });
  }

  /**
   * Counters whose values live in a plain object the hot path increments
   * (`stats.hits++`, no prom-client call per query), copied into Prometheus
   * at scrape time: one counter per `[name, field, help]`.
   *
   * @example
   * metrics.counterFields(stats, [['hits_total', 'hits', 'Answers served from the tier.']]);
   */
  counterFields<T extends object>(
    source: T,
    fields: ReadonlyArray<readonly [name: string, field: { [K in keyof T]: T[K] extends number ? K : never }[keyof T], help: string]>,
  ): void {
    for (const [name, field, help] of fields) {
      this.counter({
        name,
        help,
        collect() {
          this.reset();
          this.inc(source[field] as number);
        },
      });
    }
  }

  /**
   * A gauge named `<prefix><name>` whose value `read()` gives at scrape time.
   * `aggregator`: how the workers' values combine (see the module comment;
   * default `sum`).
   */
  gaugeOf(name: string, help: string, read: () => number, aggregator: Aggregator = 'sum'): Gauge<string> {
    return this.gauge({
      name,
      help,
      aggregator,
      collect() {
        this.set(read());
      },
    });
  }

  /** A histogram named `<prefix><name>`. */
  histogram<L extends string = string>(config: Named<HistogramConfiguration<L>>): Histogram<L> {
    return new Histogram<L>({ ...config, name: this.name(config.name), registers: [this.registry] });
  }
}

/** `heimdall_` + the instance name in snake case + `_` (`upstream-lan` → `heimdall_upstream_lan_`). */
export function metricsPrefix(instance: string): string {
  const snake = instance
    .replace(/^@/, '')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .toLowerCase();
  return `heimdall_${snake}_`;
}
