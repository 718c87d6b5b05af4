/**
 * The `metrics` plugin: counts every query by type, response code and
 * transport, and times it, into the resolver's Prometheus registry (through
 * its `PLUGIN_METRICS`). Put it first in the chain so it sees every answer.
 *
 * Exported metrics (the default instance keeps these names; an instance
 * named otherwise gets its own prefix, `heimdall_<name>_requests_total` …):
 * - `heimdall_requests_total{qtype, rcode, transport}` (counter)
 * - `heimdall_request_duration_seconds{transport}` (histogram: for an answer
 *   the chain completes asynchronously, seconds from the moment it went
 *   asynchronous to its end; an answer completed synchronously — a cache hit,
 *   a block — is counted as 0 s, in the first bucket, without reading a clock)
 *
 * Cost on the hot path of a synchronous answer: no clock read, one array
 * (or Map) update and the first bucket; label strings are built only when
 * Prometheus scrapes.
 */
import type { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import {
  ConfigError,
  definePlugin,
  type DnsContext,
  type Middleware,
  options,
  PLUGIN_METRICS,
  PLUGIN_OPTIONS,
  type PluginMetrics,
  type Static,
  Type,
} from '@heimdall/core';
import { ContainerModule, inject, injectable } from '@heimdall/core/di';
import { rcodeToString, typeToString } from '@heimdall/core/packet';
import { Counter, type Registry } from 'prom-client';

/** Default latency buckets (seconds): sub-millisecond resolution for cache hits, seconds for upstream timeouts. */
export const DEFAULT_BUCKETS: readonly number[] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Options of the {@link metrics} plugin. */
export const metricsOptionsSchema = options({
  buckets: Type.Array(Type.Number({ exclusiveMinimum: 0 }), {
    minItems: 1,
    maxItems: 64,
    default: [...DEFAULT_BUCKETS],
    description: 'Upper bounds of the latency histogram buckets, seconds, ascending.',
  }),
});

/** The metrics plugin's options, defaults filled in. */
export type MetricsOptions = Static<typeof metricsOptionsSchema>;

const HELP_DURATION = 'Time from the start of the chain to its answer, seconds';
const TRANSPORTS = ['udp', 'tcp', 'tls', 'https', 'internal'] as const;

function transportIndex(t: string): number {
  switch (t) {
    case 'udp':
      return 0;
    case 'tcp':
      return 1;
    case 'tls':
      return 2;
    case 'https':
      return 3;
    default:
      return 4;
  }
}

/** rcode 16 stands for "no response" (the chain did not answer; core then answers SERVFAIL or REFUSED). */
const UNANSWERED = 16;

/** Registers the two metrics and builds the middleware that feeds them (once per instance). */
@injectable()
class RequestMetrics {
  readonly handle: Middleware;

  constructor(@inject(PLUGIN_OPTIONS) options: MetricsOptions, @inject(PLUGIN_METRICS) metrics: PluginMetrics) {
    // The default instance's prefix is `heimdall_` (definePlugin's metricsPrefix): heimdall_requests_total.
    const prefix = metrics.prefix;
    const registry: Registry = metrics.registry;
    const buckets = options.buckets;
    const boundsMs = Float64Array.from(buckets, (b) => b * 1000);
    const nb = boundsMs.length;
    // Counter cells: (qtype * 17 + rcode) * 5 + transport, rcode 0..15 or 16 (unanswered).
    // qtypes below 256 live in a flat array (an increment, no hashing); others in a Map.
    const CELLS_PER_TYPE = 17 * 5;
    const common = new Float64Array(256 * CELLS_PER_TYPE);
    const rare = new Map<number, number>();
    // per transport: nb bucket counts (non-cumulative) + overflow, sum (ms), count
    const hist = TRANSPORTS.map(() => ({ buckets: new Float64Array(nb + 1), sumMs: 0, count: 0 }));

    new Counter({
      name: `${prefix}requests_total`,
      help: 'DNS queries answered, by query type, response code and transport',
      labelNames: ['qtype', 'rcode', 'transport'],
      registers: [registry],
      collect() {
        this.reset();
        const add = (cell: number, n: number): void => {
          const transport = cell % 5;
          const rcode = Math.floor(cell / 5) % 17;
          const qtype = Math.floor(cell / CELLS_PER_TYPE);
          this.inc({ qtype: typeToString(qtype), rcode: rcode === UNANSWERED ? 'unanswered' : rcodeToString(rcode), transport: TRANSPORTS[transport]! }, n);
        };
        for (let cell = 0; cell < common.length; cell++) if (common[cell]! > 0) add(cell, common[cell]!);
        for (const [cell, n] of rare) add(cell, n);
      },
    });
    const name = `${prefix}request_duration_seconds`;
    registry.registerMetric({
      name,
      help: HELP_DURATION,
      type: 'histogram',
      aggregator: 'sum',
      get() {
        const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
        hist.forEach((h, t) => {
          if (h.count === 0) return;
          const transport = TRANSPORTS[t]!;
          let cumulative = 0;
          for (let i = 0; i < nb; i++) {
            cumulative += h.buckets[i]!;
            values.push({ labels: { le: buckets[i]!, transport }, value: cumulative, metricName: `${name}_bucket` });
          }
          values.push({ labels: { le: '+Inf', transport }, value: h.count, metricName: `${name}_bucket` });
          values.push({ labels: { transport }, value: h.sumMs / 1000, metricName: `${name}_sum` });
          values.push({ labels: { transport }, value: h.count, metricName: `${name}_count` });
        });
        return Promise.resolve({ name, help: HELP_DURATION, type: 'histogram', values, aggregator: 'sum' });
      },
      reset() {
        for (const h of hist) {
          h.buckets.fill(0);
          h.sumMs = 0;
          h.count = 0;
        }
      },
    } as unknown as Parameters<Registry['registerMetric']>[0]);

    const record = (response: Buffer | null, qtype: number, transport: number, ms: number): void => {
      const rcode = response === null || response.length < 4 ? UNANSWERED : response[3]! & 15;
      const cell = qtype * CELLS_PER_TYPE + rcode * 5 + transport;
      if (qtype < 256) common[cell]!++;
      else rare.set(cell, (rare.get(cell) ?? 0) + 1);
      const h = hist[transport]!;
      let i = 0;
      while (i < nb && ms > boundsMs[i]!) i++;
      h.buckets[i]!++;
      h.sumMs += ms;
      h.count++;
    };

    // An answer the chain completes synchronously is counted as taking 0 s
    // (first bucket): no clock is read for it. An asynchronous one is timed
    // from the moment the chain went asynchronous (what ran synchronously
    // before, microseconds, is not counted) to its end.
    const mw: Middleware = (ctx, next) => {
      const transport = transportIndex(ctx.client.transport);
      let qtype: number;
      try {
        qtype = ctx.query.qtype;
      } catch {
        qtype = 0;
      }
      const r = next();
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') return timed(r as Promise<void>, ctx, qtype, transport);
      record(ctx.response, qtype, transport, 0);
    };
    // The asynchronous end, out of `mw`: closures there would make V8 allocate
    // a context for ctx, qtype and transport on every query, answered
    // synchronously or not.
    const timed = (r: Promise<void>, ctx: DnsContext, qtype: number, transport: number): Promise<void> => {
      const t0 = performance.now();
      return r.then(
        () => record(ctx.response, qtype, transport, performance.now() - t0),
        (err: unknown) => {
          record(null, qtype, transport, performance.now() - t0);
          throw err;
        },
      );
    };
    this.handle = mw;
  }
}

/** The metrics plugin: request counts by qtype, rcode and transport, and a latency histogram. */
export const metrics = definePlugin({
  name: 'metrics',
  // Sees every query and answer, core's own CHAOS/AXFR/ANY answers included.
  role: 'observer',
  metricsPrefix: 'heimdall_',
  description: 'Counts answered queries by type, response code and transport, and times them (Prometheus).',
  options: metricsOptionsSchema,
  setup(options, instance) {
    options.buckets.forEach((b, i) => {
      if (i > 0 && b <= options.buckets[i - 1]!) throw new ConfigError(`${instance.name}.buckets[${i}]`, 'must be greater than the previous bucket', b);
    });
    return {
      module: new ContainerModule(({ bind }) => {
        bind(RequestMetrics).toSelf();
      }),
      middleware: (scope) => scope.get(RequestMetrics).handle,
    };
  },
});

export default metrics;
