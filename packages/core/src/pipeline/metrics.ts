/**
 * Core's own counters. The hot path increments plain numbers; prom-client
 * reads them only when the registry is scraped (`collect()`), so counting a
 * query costs an array store, not a label lookup.
 */
import type { Buffer } from 'node:buffer';
import { Counter, Gauge, type Registry } from 'prom-client';
import { rcodeToString } from '../packet/index.js';

/**
 * Why a packet was dropped without an answer. `policy`: a middleware called
 * `ctx.drop()` (an ACL, a rate limiter). `receive_buffer`: the kernel dropped
 * it before Heimdall saw it, its socket's receive buffer full (counted on the
 * native UDP path only, from SO_RXQ_OVFL; see `udp.recvBufferSize`).
 */
export type DropReason = 'malformed' | 'response' | 'oversize' | 'stopping' | 'overload' | 'policy' | 'receive_buffer';

const DROP_REASONS: readonly DropReason[] = ['malformed', 'response', 'oversize', 'stopping', 'overload', 'policy', 'receive_buffer'];

/**
 * Why the server closed a stream connection (TCP, DoT, DoH) for a limit (RFC 7766 §6):
 * `frameTimeout` a frame did not complete within `frameTimeoutMs` (TCP, DoT),
 * `clientLimit` refused on accept at `maxConnectionsPerClient`,
 * `evicted` the longest-idle connection, closed at `maxConnections` to admit a new one.
 */
export type TcpCloseReason = 'frameTimeout' | 'clientLimit' | 'evicted';

/** Why a stream connection was closed by the server for a limit (the `reason` of `heimdall_connections_closed_total`). */
export type ConnectionCloseReason = TcpCloseReason;

/** The connection-oriented transports (the `transport` label of the connection metrics). */
export type StreamTransport = 'tcp' | 'tls' | 'https';

/** The encrypted transports: DNS over TLS (`tls`) and DNS over HTTPS (`https`). */
export type EncryptedTransport = 'tls' | 'https';

/**
 * Why a TLS handshake of an encrypted listener failed:
 * `timeout` it did not complete within `handshakeTimeoutMs`,
 * `noAlpn` the client offered ALPN without a protocol we serve (`dot` on
 * DoT; `h2` or `http/1.1` on DoH), `protocolError` any other TLS failure
 * (unsupported version, not TLS at all, a reset mid-handshake).
 */
export type HandshakeFailure = 'timeout' | 'noAlpn' | 'protocolError';

/**
 * Why a PROXY v2 preamble was refused (the connection is closed):
 * `invalid` a trusted source sent a malformed or oversized header,
 * `timeout` a trusted source did not send a whole header in time,
 * `closed` the connection ended before the header,
 * `untrustedHeader` a source outside `trusted` sent a header.
 */
export type ProxyRejectReason = 'invalid' | 'timeout' | 'closed' | 'untrustedHeader';

const STREAM_TRANSPORTS: readonly StreamTransport[] = ['tcp', 'tls', 'https'];
const ENCRYPTED_TRANSPORTS: readonly EncryptedTransport[] = ['tls', 'https'];

/** Label values of `reason` in `heimdall_connections_closed_total` (and `heimdall_tcp_connections_closed_total`). */
const TCP_CLOSE_LABELS: Readonly<Record<TcpCloseReason, string>> = { frameTimeout: 'frame_timeout', clientLimit: 'client_limit', evicted: 'evicted' };
const HANDSHAKE_LABELS: Readonly<Record<HandshakeFailure, string>> = { timeout: 'timeout', noAlpn: 'no_alpn', protocolError: 'protocol_error' };
const PROXY_LABELS: Readonly<Record<ProxyRejectReason, string>> = {
  invalid: 'invalid',
  timeout: 'timeout',
  closed: 'closed',
  untrustedHeader: 'untrusted_header',
};

const closeCounts = (): Record<TcpCloseReason, number> => ({ frameTimeout: 0, clientLimit: 0, evicted: 0 });
const proxyCounts = (): Record<ProxyRejectReason, number> => ({ invalid: 0, timeout: 0, closed: 0, untrustedHeader: 0 });
const handshakeCounts = (): Record<HandshakeFailure, number> => ({ timeout: 0, noAlpn: 0, protocolError: 0 });

/** Largest HTTP status counted in `dohResponses` (index = status). */
const MAX_HTTP_STATUS = 599;

/**
 * Counters kept by the resolver and its transports, exposed in the
 * resolver's registry as `heimdall_queries_total`,
 * `heimdall_queries_dropped_total{reason}`, `heimdall_responses_total{rcode}`,
 * `heimdall_middleware_errors_total{plugin}`, `heimdall_queries_timed_out_total`,
 * `heimdall_connections_closed_total{transport,reason}`,
 * `heimdall_tls_handshake_failures_total{transport,reason}`,
 * `heimdall_proxy_protocol_rejected_total{transport,reason}`,
 * `heimdall_doh_responses_total{status}` and the gauges
 * `heimdall_queries_in_flight`, `heimdall_connections{transport}`.
 * `heimdall_tcp_connections` and `heimdall_tcp_connections_closed_total{reason}`
 * remain as the sums over the stream transports (what they counted before
 * the `transport` label existed).
 */
export class CoreMetrics {
  /** Packets that reached the resolver (before any check). */
  queries = 0;
  /** Dropped packets by reason. */
  readonly dropped: Record<DropReason, number> = { malformed: 0, response: 0, oversize: 0, stopping: 0, overload: 0, policy: 0, receive_buffer: 0 };
  /** Responses by rcode (index = full rcode, 0..4095). Sparse growth; usual values are 0..23. */
  readonly responses: number[] = new Array(24).fill(0);
  /** Middleware errors by plugin name. */
  readonly errors = new Map<string, number>();
  /** Queries answered SERVFAIL because their deadline passed. */
  timedOut = 0;
  /** Queries waiting on an async middleware right now. */
  inFlight = 0;
  /** Open connections by stream transport (all listeners of this resolver). */
  readonly connections: Record<StreamTransport, number> = { tcp: 0, tls: 0, https: 0 };
  /** Connections closed (or refused on accept) for a limit, by transport and reason. */
  readonly connectionsClosed: Record<StreamTransport, Record<TcpCloseReason, number>> = { tcp: closeCounts(), tls: closeCounts(), https: closeCounts() };
  /** Failed TLS handshakes by encrypted transport and reason. */
  readonly tlsHandshakeFailures: Record<EncryptedTransport, Record<HandshakeFailure, number>> = { tls: handshakeCounts(), https: handshakeCounts() };
  /** Connections closed because of their PROXY v2 preamble, by transport and reason. */
  readonly proxyRejected: Record<StreamTransport, Record<ProxyRejectReason, number>> = { tcp: proxyCounts(), tls: proxyCounts(), https: proxyCounts() };
  /** DoH responses sent, by HTTP status (index = status, 0..599). */
  readonly dohResponses: number[] = new Array(MAX_HTTP_STATUS + 1).fill(0);

  /**
   * Open connections of every stream transport (TCP, DoT, DoH).
   * @deprecated read `connections[transport]`; kept for `heimdall_tcp_connections`.
   */
  get tcpConnections(): number {
    return this.connections.tcp + this.connections.tls + this.connections.https;
  }

  /**
   * Connections closed for a limit, by reason, summed over the stream transports (a snapshot).
   * @deprecated read `connectionsClosed[transport]`; kept for `heimdall_tcp_connections_closed_total`.
   */
  get tcpClosed(): Readonly<Record<TcpCloseReason, number>> {
    const out = closeCounts();
    for (const t of STREAM_TRANSPORTS) for (const r of Object.keys(out) as TcpCloseReason[]) out[r] += this.connectionsClosed[t][r];
    return out;
  }

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
        name: `${prefix}connections_closed_total`,
        help: 'Stream connections (tcp, tls = DoT, https = DoH) closed by the server for a limit, by transport and reason (frame_timeout, client_limit, evicted)',
        labelNames: ['transport', 'reason'],
        registers: [],
        collect() {
          this.reset();
          for (const transport of STREAM_TRANSPORTS) {
            const c = self.connectionsClosed[transport];
            for (const r of Object.keys(TCP_CLOSE_LABELS) as TcpCloseReason[]) this.inc({ transport, reason: TCP_CLOSE_LABELS[r] }, c[r]);
          }
        },
      }),
    );
    registry.registerMetric(
      new Counter({
        name: `${prefix}tcp_connections_closed_total`,
        help: 'Stream connections closed by the server for a limit, by reason, all transports (deprecated: heimdall_connections_closed_total{transport,reason})',
        labelNames: ['reason'],
        registers: [],
        collect() {
          this.reset();
          const c = self.tcpClosed;
          for (const r of Object.keys(TCP_CLOSE_LABELS) as TcpCloseReason[]) this.inc({ reason: TCP_CLOSE_LABELS[r] }, c[r]);
        },
      }),
    );
    registry.registerMetric(
      new Counter({
        name: `${prefix}tls_handshake_failures_total`,
        help: 'Failed TLS handshakes of the encrypted listeners, by transport (tls = DoT, https = DoH) and reason (timeout, no_alpn, protocol_error)',
        labelNames: ['transport', 'reason'],
        registers: [],
        collect() {
          this.reset();
          for (const transport of ENCRYPTED_TRANSPORTS) {
            const c = self.tlsHandshakeFailures[transport];
            for (const r of Object.keys(HANDSHAKE_LABELS) as HandshakeFailure[]) this.inc({ transport, reason: HANDSHAKE_LABELS[r] }, c[r]);
          }
        },
      }),
    );
    registry.registerMetric(
      new Counter({
        name: `${prefix}proxy_protocol_rejected_total`,
        help: 'Connections closed for their PROXY v2 preamble, by transport and reason (invalid, timeout, closed, untrusted_header)',
        labelNames: ['transport', 'reason'],
        registers: [],
        collect() {
          this.reset();
          for (const transport of STREAM_TRANSPORTS) {
            const c = self.proxyRejected[transport];
            for (const r of Object.keys(PROXY_LABELS) as ProxyRejectReason[]) this.inc({ transport, reason: PROXY_LABELS[r] }, c[r]);
          }
        },
      }),
    );
    registry.registerMetric(
      new Counter({
        name: `${prefix}doh_responses_total`,
        help: 'DNS-over-HTTPS responses sent, by HTTP status',
        labelNames: ['status'],
        registers: [],
        collect() {
          this.reset();
          const d = self.dohResponses;
          for (let i = 0; i < d.length; i++) if (d[i]! > 0) this.inc({ status: String(i) }, d[i]!);
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
        name: `${prefix}connections`,
        help: 'Open stream connections, by transport (tcp, tls = DoT, https = DoH)',
        labelNames: ['transport'],
        registers: [],
        collect() {
          for (const transport of STREAM_TRANSPORTS) this.set({ transport }, self.connections[transport]);
        },
      }),
    );
    registry.registerMetric(
      new Gauge({
        name: `${prefix}tcp_connections`,
        help: 'Open stream connections, all transports (deprecated: heimdall_connections{transport})',
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

  /** Counts a DoH response by its HTTP status. */
  countDohResponse(status: number): void {
    if (status >= 0 && status <= MAX_HTTP_STATUS) this.dohResponses[status]!++;
  }

  /** Counts an error thrown by `plugin`'s middleware. */
  countError(plugin: string): void {
    this.errors.set(plugin, (this.errors.get(plugin) ?? 0) + 1);
  }
}
