/**
 * What transports need from the resolver, and what the resolver needs from
 * transports.
 */
import type { Buffer } from 'node:buffer';
import process from 'node:process';
import type { Logger } from 'pino';
import type { CoreMetrics } from '../pipeline/metrics.js';
import type { ClientInfo } from '../pipeline/types.js';

/**
 * Runs one query. Returns the response bytes (or null: drop) synchronously
 * when the middleware chain completed synchronously, a Promise otherwise.
 * Never throws and never rejects.
 */
export interface QueryHandler {
  process(request: Buffer, client: ClientInfo): Buffer | null | Promise<Buffer | null>;
}

/** A UDP listener. */
export interface UdpListenOptions {
  readonly transport: 'udp';
  /**
   * Address to bind (`127.0.0.1`, `::1`, `0.0.0.0`, `::`). Default `127.0.0.1`.
   * Replies leave from the bound address, so on a multi-homed host bind each
   * address you serve rather than a wildcard (Node cannot choose the source
   * address of a datagram per packet).
   */
  readonly address?: string;
  /** Port; 0 picks a free one (read it back with `resolver.addresses()`). Default 53. */
  readonly port?: number;
  /**
   * Largest UDP response we send, whatever the client's EDNS buffer size
   * (RFC 6891 §6.2.5; DNS Flag Day 2020 recommends 1232). Clamped to
   * 512..65535. Default 1232.
   */
  readonly maxUdpPayload?: number;
  /** Kernel receive/send buffer sizes in bytes (SO_RCVBUF/SO_SNDBUF). Default: the OS's. */
  readonly recvBufferSize?: number;
  readonly sendBufferSize?: number;
  /**
   * The batched native path (`@heimdall/udp`, Linux): `recvmmsg`/`sendmmsg`,
   * one JavaScript call per batch of up to 64 datagrams, `SO_REUSEPORT` on
   * every Node version, and on a wildcard address replies from the address
   * each query arrived at. `'auto'` (default): used when the addon is built,
   * else `node:dgram` (logged once at info); `true`: required; `false`: `node:dgram`.
   */
  readonly native?: boolean | 'auto';
  /** Set `SO_REUSEADDR` (Node cluster workers sharing a port through the primary). Default false. */
  readonly reuseAddr?: boolean;
  /**
   * Set `SO_REUSEPORT`: every process (cluster worker) binds its own socket
   * and the kernel spreads datagrams across them. On the native path on every
   * Node version; with `node:dgram` only where Node supports it (22.12+,
   * 23.1+; see {@link reusePortSupported}) and ignored elsewhere, where
   * cluster workers share the primary's socket instead. Default false.
   */
  readonly reusePort?: boolean;
  /** For `::`, accept only IPv6 (no IPv4-mapped). Default false. */
  readonly ipv6Only?: boolean;
}

/** A TCP listener (RFC 7766). */
export interface TcpListenOptions {
  readonly transport: 'tcp';
  /** Address to bind. Default `127.0.0.1`. */
  readonly address?: string;
  /** Port; 0 picks a free one. Default 53. */
  readonly port?: number;
  /**
   * Close a connection (gracefully) that has had no query outstanding and no
   * complete frame or answer for this long (RFC 7766 §6.2.3). Partial frames
   * are not activity: trickling bytes does not hold it off. 1..3 600 000,
   * default 10 000 ms.
   */
  readonly idleTimeoutMs?: number;
  /**
   * A frame (length prefix and message) must arrive whole within this long of
   * its first byte, however bytes trickle in; otherwise the connection is
   * closed at once (`heimdall_connections_closed_total{transport,reason="frame_timeout"}`).
   * Separate from, and usually shorter than, the idle timeout. 1..3 600 000,
   * default 2000 ms.
   */
  readonly frameTimeoutMs?: number;
  /**
   * Open connections at most (all clients). At the limit a new connection is
   * admitted by closing the longest-idle one — the least recently active
   * connection without a query in flight, else the least recently active —
   * (`heimdall_connections_closed_total{transport,reason="evicted"}`), so a full
   * table cannot lock other clients out. 1..1 000 000, default 1000.
   */
  readonly maxConnections?: number;
  /**
   * Open connections at most from one client address; further ones are
   * closed on accept (`heimdall_connections_closed_total{transport,reason="client_limit"}`).
   * Counted per exact address (IPv4, or IPv6 /128; IPv4-mapped as IPv4).
   * 0 = no per-client limit. 0..1 000 000, default 100.
   */
  readonly maxConnectionsPerClient?: number;
  /** Largest accepted message (the 2-byte length prefix); bigger frames close the connection. 12..65535, default 65535. */
  readonly maxMessageSize?: number;
  /**
   * Queries processed concurrently per connection; reading pauses while at
   * the limit (RFC 7766 §6.2.1.1 pipelining), so a connection holds at most
   * this many queries plus one read chunk. 1..65535, default 100.
   */
  readonly maxInFlightPerConnection?: number;
  /** Queries answered on one connection before it is closed gracefully. Default unlimited (0). */
  readonly maxQueriesPerConnection?: number;
  /**
   * Bytes of answers queued for writing to a client that does not read them
   * before the connection is dropped (`heimdall_queries_dropped_total{reason="overload"}`).
   * With `maxConnections` this bounds answer memory at about
   * `maxConnections × maxWriteBuffer`. 65537..2^30, default 1 MiB.
   */
  readonly maxWriteBuffer?: number;
  /** listen() backlog. Default 511. */
  readonly backlog?: number;
  /** For `::`, accept only IPv6. Default false. */
  readonly ipv6Only?: boolean;
  /**
   * Set `SO_REUSEPORT`: each cluster worker listens on its own socket and the
   * kernel balances connections (instead of the primary's round-robin). Only
   * where Node supports it ({@link reusePortSupported}); ignored elsewhere. Default false.
   */
  readonly reusePort?: boolean;
  /** PROXY protocol v2 from these sources (load balancers); see {@link ProxyProtocolOptions}. Default off. */
  readonly proxyProtocol?: ProxyProtocolOptions;
}

/**
 * PROXY protocol v2 (the HAProxy binary header) on a stream listener. A
 * connection from a `trusted` source must start with a valid header (else it
 * is closed) and its client address is the header's source; `LOCAL`
 * (health checks) keeps the connection's own address. A connection from any
 * other source is served as is, and closed if it starts with a header.
 * Headers are at most 16 + 1024 octets.
 */
export interface ProxyProtocolOptions {
  /** Addresses or CIDRs (`10.0.0.0/8`, `::1`). */
  readonly trusted: readonly string[];
  /** The header must arrive whole within this long. 1..60 000, default 2000 ms. */
  readonly timeoutMs?: number;
}

/** Certificate settings of the encrypted listeners. */
export interface TlsCertificateOptions {
  /** PEM certificate chain file. Required. Reloaded on `reloadCertificates()` and when the file changes. */
  readonly cert?: string;
  /** PEM private key file. Required. */
  readonly key?: string;
  /** The TLS handshake must complete within this long. Default 5000 ms. */
  readonly handshakeTimeoutMs?: number;
  /**
   * EDNS padding of responses (RFC 7830) to a multiple of 468 octets (RFC 8467
   * block-length policy). `'always'` (default): every response carrying an OPT
   * record, i.e. whenever the query used EDNS (RFC 8467 §4.1 recommends that
   * responders pad; RFC 7830 §4 allows it when the query had EDNS but no
   * padding option); `'query'`: only when the query carried the padding
   * option (what RFC 7830 requires); `'off'`.
   */
  readonly padding?: 'always' | 'query' | 'off';
}

/** A DNS-over-TLS listener (RFC 7858): TCP's framing, pipelining and limits inside TLS 1.2/1.3, ALPN `dot`. */
export interface TlsListenOptions extends Omit<TcpListenOptions, 'transport' | 'port'>, TlsCertificateOptions {
  readonly transport: 'tls';
  /** Default 853. */
  readonly port?: number;
}

/**
 * A DNS-over-HTTPS listener (RFC 8484) on `node:http2`, HTTP/1.1 allowed:
 * `GET <path>?dns=` and `POST <path>` (`application/dns-message`), and
 * `<path>/<client-id>` naming the client (`ClientInfo.clientId`).
 */
export interface HttpsListenOptions extends TlsCertificateOptions {
  readonly transport: 'https';
  readonly address?: string;
  /** Default 443. */
  readonly port?: number;
  /** Default `/dns-query`. */
  readonly path?: string;
  /** Also serve the JSON API (`application/dns-json`, `?name=&type=`). Default false. */
  readonly json?: boolean;
  /** Reverse proxies (addresses or CIDRs) whose `Forwarded`/`X-Forwarded-For` name the client. Default none. */
  readonly trustedProxies?: readonly string[];
  /** Close a connection with no request for this long. Default 30 000 ms. */
  readonly idleTimeoutMs?: number;
  /** Open connections at most; the longest-idle is closed to admit a new one. Default 1000. */
  readonly maxConnections?: number;
  /** Open connections at most per client address (0: no limit). Default 100. */
  readonly maxConnectionsPerClient?: number;
  /** HTTP/2 streams in progress at once per connection. Default 100. */
  readonly maxConcurrentStreams?: number;
  readonly backlog?: number;
  readonly proxyProtocol?: ProxyProtocolOptions;
  readonly reusePort?: boolean;
  readonly ipv6Only?: boolean;
}

/**
 * True when this Node accepts `reusePort` for `dgram.createSocket` and
 * `net.Server.listen` (added in 23.1.0 and back-ported to 22.12.0).
 */
export const reusePortSupported: boolean = (() => {
  const [major, minor] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
})();

/** One entry of `createResolver({ listen })`. */
export type ListenOptions = UdpListenOptions | TcpListenOptions | TlsListenOptions | HttpsListenOptions;

/** An address a transport actually bound (port 0 resolved). */
export interface BoundAddress {
  readonly transport: 'udp' | 'tcp' | 'tls' | 'https';
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/** What every transport server gives the resolver. */
export interface TransportServer {
  /** Binds. Rejects with `ListenError` when the address cannot be bound. */
  listen(): Promise<void>;
  /** The bound address (after `listen`). */
  address(): BoundAddress;
  /** Stops accepting new queries/connections; in-flight queries may still be answered. */
  stopAccepting(): void;
  /** Closes every socket. Pending answers are discarded. */
  close(): Promise<void>;
  /**
   * Encrypted listeners: re-reads the certificate and key files and uses them
   * for new connections (open ones keep theirs). Rejects, keeping the old
   * pair, when the new one is unreadable or mismatched.
   */
  reloadCertificates?(): Promise<void>;
}

/** Shared dependencies of transports. */
export interface TransportDeps {
  readonly handler: QueryHandler;
  readonly logger: Logger;
  readonly metrics: CoreMetrics;
}
