/**
 * Core's own counters. The hot path increments plain numbers; prom-client
 * reads them only when the registry is scraped (`collect()`), so counting a
 * query costs an array store, not a label lookup.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { rcodeToString } from '../packet/index.js';

/** Why a packet was dropped without an answer. `policy`: a middleware called `ctx.drop()` (an ACL, a rate limiter). */
export type DropReason = 'malformed' | 'response' | 'oversize' | 'stopping' | 'overload' | 'policy';

const DROP_REASONS: readonly DropReason[] = ['malformed', 'response', 'oversize', 'stopping', 'overload', 'policy'];

/**
 * Why the server closed a TCP connection for a limit (RFC 7766 §6):
 * `frameTimeout` a frame did not complete within `frameTimeoutMs`,
 * `clientLimit` refused on accept at `maxConnectionsPerClient`,
 * `evicted` the longest-idle connection, closed at `maxConnections` to admit a new one.
 */
export type TcpCloseReason = 'frameTimeout' | 'clientLimit' | 'evicted';

/** Label values of `heimdall_tcp_connections_closed_total{reason}`. */
const TCP_CLOSE_LABELS: Readonly<Record<TcpCloseReason, string>> = { frameTimeout: 'frame_timeout', clientLimit: 'client_limit', evicted: 'evicted' };

/**
 * Counters kept by the resolver and its transports, exposed in the
 * resolver's registry as `heimdall_queries_total`,
 * `heimdall_queries_dropped_total{reason}`, `heimdall_responses_total{rcode}`,
 * `heimdall_middleware_errors_total{plugin}`, `heimdall_queries_timed_out_total`,
 * `heimdall_tcp_connections_closed_total{reason}` and the gauges
 * `heimdall_queries_in_flight`, `heimdall_tcp_connections`.
 */
export class CoreMetrics {
  /** Packets that reached the resolver (before any check). */
  queries = 0;
  /** Dropped packets by reason. */
  readonly dropped: Record<DropReason, number> = { malformed: 0, response: 0, oversize: 0, stopping: 0, overload: 0, policy: 0 };
  /** Responses by rcode (index = full rcode, 0..4095). Sparse growth; usual values are 0..23. */
  readonly responses: number[] = new Array(24).fill(0);
  /** Middleware errors by plugin name. */
  readonly errors = new Map<string, number>();
  /** Queries answered SERVFAIL because their deadline passed. */
  timedOut = 0;
  /** Queries waiting on an async middleware right now. */
  inFlight = 0;
  /** Open TCP connections (all TCP listeners of this resolver). */
  tcpConnections = 0;
  /** TCP connections closed (or refused on accept) for a limit, by reason (all TCP listeners). */
  readonly tcpClosed: Record<TcpCloseReason, number> = { frameTimeout: 0, clientLimit: 0, evicted: 0 };

  /** Registers the prom-client collectors in `registry`. Call once per registry. */
  register(registry: Registry, prefix = 'heimdall_'): void {
    const self = this;
    registry.registerMetric(
      new Counter({
        name: `${prefix}queries_total`,
        help: 'DNS packets received by the resolver',
        registers: [],
        collect() {
          this.reset();
          this.inc(self.queries);
        },
      }),
    );
    registry.registerMetric(
      new Counter({
        name: `${prefix}queries_dropped_total`,
        help: 'Packets dropped without a response, by reason',
        labelNames: ['reason'],
        registers: [],
        collect() {
          this.reset();
          for (const r of DROP_REASONS) this.inc({ reason: r }, self.dropped[r]);
        },
      }),
    );
    registry.registerMetric(
      new Counter({
        name: `${prefix}responses_total`,
        help: 'Responses sent, by rcode',
        labelNames: ['rcode'],
        registers: [],
        collect() {
          this.reset();
          const r = self.responses;
          for (let i = 0; i < r.length; i++) if (r[i] > 0) this.inc({ rcode: rcodeToString(i) }, r[i]);
        },
      }),
    );
    registry.registerMetric(
      new Counter({
        name: `${prefix}middleware_errors_total`,
        help: 'Errors thrown by middleware (each answered SERVFAIL), by plugin',
        labelNames: ['plugin'],
        registers: [],
        collect() {
          this.reset();
          for (const [plugin, n] of self.errors) this.inc({ plugin }, n);
        },
      }),
    );
    registry.registerMetric(
      new Counter({
        name: `${prefix}queries_timed_out_total`,
        help: 'Queries answered SERVFAIL because their deadline passed',
        registers: [],
        collect() {
          this.reset();
          this.inc(self.timedOut);
        },
      }),
    );
    registry.registerMetric(
      new Counter({
        name: `${prefix}tcp_connections_closed_total`,
        help: 'TCP connections closed by the server for a limit, by reason (frame_timeout, client_limit, evicted)',
        labelNames: ['reason'],
        registers: [],
        collect() {
          this.reset();
          for (const r of Object.keys(TCP_CLOSE_LABELS) as TcpCloseReason[]) this.inc({ reason: TCP_CLOSE_LABELS[r] }, self.tcpClosed[r]);
        },
      }),
    );
    registry.registerMetric(
      new Gauge({
        name: `${prefix}queries_in_flight`,
        help: 'Queries waiting on an asynchronous middleware',
        registers: [],
        collect() {
          this.set(self.inFlight);
        },
      }),
    );
    registry.registerMetric(
      new Gauge({
        name: `${prefix}tcp_connections`,
        help: 'Open TCP connections',
        registers: [],
        collect() {
          this.set(self.tcpConnections);
        },
      }),
    );
  }

  /** Counts a response by its full rcode (header rcode only; extended bits come from OPT and are rare). */
  countResponse(response: Buffer): void {
    const rcode = response[3] & 0xf;
    this.responses[rcode]++;
  }

  /** Counts an error thrown by `plugin`'s middleware. */
  countError(plugin: string): void {
    this.errors.set(plugin, (this.errors.get(plugin) ?? 0) + 1);
  }
}
