import { Counter, Gauge, type Registry } from 'prom-client';
import type { UpstreamServer } from './group.js';
import { RTT_BUCKETS } from './stats.js';

/**
 * Registers the per-upstream collectors in `registry` (label `upstream`: the
 * canonical URL). Values are read from each server's `UpstreamStats` at
 * scrape time. Metric names: `heimdall_upstream_requests_total`,
 * `heimdall_upstream_failures_total{reason}`, `heimdall_upstream_timeouts_total`,
 * `heimdall_upstream_spoofs_total`, `heimdall_upstream_truncated_total`,
 * `heimdall_upstream_edns_fallbacks_total`,
 * `heimdall_upstream_up`, `heimdall_upstream_rtt_ewma_seconds`,
 * `heimdall_upstream_rtt_seconds` (histogram). Metrics already registered
 * under these names (a second upstream plugin in the same resolver) are left
 * alone and the call returns false.
 */
export function registerUpstreamMetrics(registry: Registry, servers: () => Iterable<UpstreamServer>, prefix = 'heimdall_upstream_'): boolean {
  if (registry.getSingleMetric(`${prefix}requests_total`)) return false;
  const counter = (name: string, help: string, value: (s: UpstreamServer) => number) =>
    registry.registerMetric(
      new Counter({
        name: `${prefix}${name}`,
        help,
        labelNames: ['upstream'],
        registers: [],
        collect() {
          this.reset();
          for (const s of servers()) this.inc({ upstream: s.url }, value(s));
        },
      }),
    );
  counter('requests_total', 'Attempts sent to each upstream (retries and probes included)', (s) => s.stats.requests);
  counter('timeouts_total', 'Attempts that got no valid reply in time', (s) => s.stats.failures.timeout);
  counter('spoofs_total', 'Datagrams rejected as possible spoofs (wrong source, ID or question; malformed)', (s) => s.stats.spoofs);
  counter('truncated_total', 'UDP replies with TC set, retried over TCP', (s) => s.stats.truncated);
  counter('edns_fallbacks_total', 'Queries re-sent without EDNS after FORMERR/NOTIMP without OPT', (s) => s.stats.ednsFallbacks);
  registry.registerMetric(
    new Counter({
      name: `${prefix}failures_total`,
      help: 'Failed attempts by reason (timeout, network, protocol, rcode)',
      labelNames: ['upstream', 'reason'],
      registers: [],
      collect() {
        this.reset();
        for (const s of servers()) for (const [reason, n] of Object.entries(s.stats.failures)) this.inc({ upstream: s.url, reason }, n);
      },
    }),
  );
  registry.registerMetric(
    new Gauge({
      name: `${prefix}up`,
      help: '1 while the upstream is considered healthy, 0 while marked down',
      labelNames: ['upstream'],
      registers: [],
      collect() {
        this.reset();
        for (const s of servers()) this.set({ upstream: s.url }, s.health.down ? 0 : 1);
      },
    }),
  );
  registry.registerMetric(
    new Gauge({
      name: `${prefix}rtt_ewma_seconds`,
      help: 'Moving average of the round-trip time (the fastest strategy weight)',
      labelNames: ['upstream'],
      registers: [],
      collect() {
        this.reset();
        for (const s of servers()) this.set({ upstream: s.url }, s.health.rtt / 1000);
      },
    }),
  );
  const name = `${prefix}rtt_seconds`;
  const help = 'Round-trip time of successful attempts';
  // A histogram read from plain bucket counters: no prom-client work per query.
  const histogram = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    reset() {},
    async get() {
      const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
      for (const s of servers()) {
        let cum = 0;
        for (let i = 0; i < RTT_BUCKETS.length; i++) {
          cum += s.stats.rttBuckets[i]!;
          values.push({ labels: { upstream: s.url, le: RTT_BUCKETS[i]! }, value: cum, metricName: `${name}_bucket` });
        }
        cum += s.stats.rttBuckets[RTT_BUCKETS.length]!;
        values.push({ labels: { upstream: s.url, le: '+Inf' }, value: cum, metricName: `${name}_bucket` });
        values.push({ labels: { upstream: s.url }, value: s.stats.rttSum, metricName: `${name}_sum` });
        values.push({ labels: { upstream: s.url }, value: s.stats.rttCount, metricName: `${name}_count` });
      }
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
  };
  registry.registerMetric(histogram as never);
  return true;
}
