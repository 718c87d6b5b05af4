import type { PluginMetrics } from '@heimdall/core/di';
import type { UpstreamClient } from './client.js';
import type { UpstreamServer } from './group.js';
import { RTT_BUCKETS } from './stats.js';

/**
 * Registers the instance's metrics through its `PLUGIN_METRICS` (prefix
 * `heimdall_<instance>_`, so `heimdall_upstream_…` for the default
 * instance). Per-upstream series carry the label `upstream` (the canonical
 * URL). Values are plain numbers the hot path bumps, read at scrape time.
 */
export function registerUpstreamMetrics(metrics: PluginMetrics, client: UpstreamClient): void {
  const servers = (): Iterable<UpstreamServer> => client.servers.values();
  const perUpstream = (name: string, help: string, value: (s: UpstreamServer) => number) =>
    metrics.counter({
      name,
      help,
      labelNames: ['upstream'],
      collect() {
        this.reset();
        for (const s of servers()) this.inc({ upstream: s.url }, value(s));
      },
    });
  perUpstream('requests_total', 'Attempts sent to each upstream (retries and probes included)', (s) => s.stats.requests);
  perUpstream('timeouts_total', 'Attempts that got no valid reply within their timeout', (s) => s.stats.failures.timeout);
  perUpstream('late_replies_total', "Replies accepted after their attempt's timeout, within the query's budget", (s) => s.stats.late);
  perUpstream('spoofs_total', 'Datagrams rejected as possible spoofs (wrong source, ID or question; malformed)', (s) => s.stats.spoofs);
  perUpstream('truncated_total', 'UDP replies with TC set, retried over TCP', (s) => s.stats.truncated);
  perUpstream('edns_fallbacks_total', 'Queries re-sent without EDNS after FORMERR/NOTIMP without OPT', (s) => s.stats.ednsFallbacks);
  metrics.counter({
    name: 'failures_total',
    help: 'Failed attempts by reason (timeout, network, protocol = malformed reply or HTTP error, rcode = a retry rcode)',
    labelNames: ['upstream', 'reason'],
    collect() {
      this.reset();
      for (const s of servers()) for (const [reason, n] of Object.entries(s.stats.failures)) this.inc({ upstream: s.url, reason }, n);
    },
  });
  metrics.counter({
    name: 'shed_total',
    help: 'Queries answered SERVFAIL at once because in-flight bounds were reached (limit: global = maxInFlight, upstream = every upstream at maxInFlightPerUpstream)',
    labelNames: ['limit'],
    collect() {
      this.reset();
      this.inc({ limit: 'global' }, client.shed.global);
      this.inc({ limit: 'upstream' }, client.shed.upstream);
    },
  });
  metrics.gaugeOf('in_flight', 'Queries being forwarded now', () => client.inFlight);
  metrics.gauge({
    name: 'attempts_in_flight',
    help: 'Attempts outstanding per upstream (slow ones included)',
    labelNames: ['upstream'],
    collect() {
      this.reset();
      for (const s of servers()) this.set({ upstream: s.url }, s.inFlight);
    },
  });
  metrics.gauge({
    name: 'up',
    help: '1 while the upstream is considered healthy, 0 while marked down (by any worker)',
    labelNames: ['upstream'],
    // Each worker keeps its own health view of the same upstream: 0 as soon as one marks it down.
    aggregator: 'min',
    collect() {
      this.reset();
      for (const s of servers()) this.set({ upstream: s.url }, s.health.down ? 0 : 1);
    },
  });
  metrics.gauge({
    name: 'rtt_ewma_seconds',
    help: 'Moving average of the round-trip time (the fastest strategy weight; averaged over workers)',
    labelNames: ['upstream'],
    aggregator: 'average',
    collect() {
      this.reset();
      for (const s of servers()) this.set({ upstream: s.url }, s.health.rtt / 1000);
    },
  });
  // A histogram read from plain bucket counters at scrape time: no
  // prom-client work per query. PluginMetrics.histogram() has no collect-time
  // source for precomputed buckets, so it is registered with the instance's
  // own name and registry.
  const name = metrics.name('rtt_seconds');
  const help = 'Round-trip time of successful attempts';
  metrics.registry.registerMetric({
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
  } as never);
}
