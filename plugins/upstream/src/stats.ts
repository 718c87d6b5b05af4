/** RTT histogram bucket upper bounds, in seconds (prom-client `le`). */
export const RTT_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * Per-upstream counters. The hot path bumps plain numbers; the prom-client
 * collectors (see `registerUpstreamMetrics`) read them on scrape, so a query
 * costs no label lookup.
 */
export class UpstreamStats {
  /** Attempts sent to this upstream (each retry and each probe counts). */
  requests = 0;
  /** Attempts that failed (timeouts included), by reason. */
  readonly failures = { timeout: 0, network: 0, protocol: 0, rcode: 0 };
  /** Datagrams rejected as possible spoofs (wrong source, ID or question; malformed). */
  spoofs = 0;
  /** Replies accepted after their attempt's own timeout (within the query's budget). */
  late = 0;
  /** Queries retried over TCP after a truncated UDP reply. */
  truncated = 0;
  /** Queries re-sent without EDNS after a FORMERR/NOTIMP without OPT (RFC 6891 §7). */
  ednsFallbacks = 0;
  /** RTT histogram: counts per {@link RTT_BUCKETS} bucket (not cumulative) + overflow. */
  readonly rttBuckets: number[] = new Array(RTT_BUCKETS.length + 1).fill(0);
  rttSum = 0;
  rttCount = 0;

  constructor(readonly url: string) {}

  /** Records one successful exchange's round-trip time. */
  observeRtt(ms: number): void {
    const s = ms / 1000;
    let i = 0;
    while (i < RTT_BUCKETS.length && s > RTT_BUCKETS[i]!) i++;
    this.rttBuckets[i]!++;
    this.rttSum += s;
    this.rttCount++;
  }

  /** Total failures. */
  get failed(): number {
    const f = this.failures;
    return f.timeout + f.network + f.protocol + f.rcode;
  }
}
