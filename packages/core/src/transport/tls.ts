/**
 * DNS over TLS (RFC 7858): the framed connection of `stream.ts` (TCP's
 * framing, pipelining, limits and hostile-client protections) inside TLS 1.2
 * or 1.3 with ALPN `dot` (RFC 7858 §3.2 via RFC 8310; a client offering ALPN
 * without `dot` is refused). PROXY v2 headers are read before the handshake.
 * Responses are padded (RFC 7830, 468-octet blocks of RFC 8467) and answer
 * edns-tcp-keepalive (RFC 7828). The certificate is reloaded without
 * touching open connections: new connections use the new pair.
 */
import type net from 'node:net';
import tls from 'node:tls';
import type { Static } from '../plugin/options.js';
import type { HandshakeFailure } from '../pipeline/metrics.js';
import type { ClientInfo } from '../pipeline/types.js';
import { type CertificatePair, CertificateFiles, CertifiedStreamServer, parseCertifiedOptions } from './certs.js';
import { tlsListenSchema } from './schema.js';
import { FramedConnection, type FramedHost } from './stream.js';
import type { TlsListenOptions, TransportDeps } from './types.js';

/** A DoT listener's validated settings, defaults filled in. */
export type TlsSettings = Static<typeof tlsListenSchema>;

/** The secure context of a pair (TLS 1.2 and later). */
export function secureContext(pair: CertificatePair): tls.SecureContext {
  return tls.createSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' });
}

/**
 * The reason label of a failed handshake's error: `noAlpn` when the client
 * offered ALPN without a protocol we serve, else `protocolError` (timeouts
 * are counted by whoever runs the deadline).
 */
export function handshakeFailure(err: unknown): HandshakeFailure {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'timeout';
  return code === 'ERR_SSL_NO_APPLICATION_PROTOCOL' ? 'noAlpn' : 'protocolError';
}

/** A DNS-over-TLS listener. */
export class TlsServer extends CertifiedStreamServer<FramedConnection> implements FramedHost {
  readonly limits: TlsSettings;
  readonly padding: TlsSettings['padding'];
  /** The certificate files (reloaded on change). */
  readonly certificates: CertificateFiles;
  private context: tls.SecureContext;
  /** `heimdall_tls_handshake_failures_total{transport="tls"}` counters. */
  private readonly failures: Record<HandshakeFailure, number>;

  constructor(options: TlsListenOptions, deps: TransportDeps, path = 'listen') {
    const { settings: limits, files } = parseCertifiedOptions(tlsListenSchema, 'tls', options, path, 'a tls listener');
    super('tls', limits, deps, path);
    this.limits = limits;
    this.padding = limits.padding;
    this.certificates = new CertificateFiles(files.cert, files.key, files.fields, deps.logger, (pair) => {
      this.context = secureContext(pair);
    });
    this.context = secureContext(this.certificates.pair);
    this.failures = deps.metrics.tlsHandshakeFailures.tls;
  }

  protected open(socket: net.Socket, client: ClientInfo): FramedConnection {
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: this.context, ALPNProtocols: ['dot'] });
    // Settled: the handshake completed or its failure was counted (once).
    let settled = false;
    const conn = new FramedConnection(this, secure, client);
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      this.failures.timeout++;
      conn.destroy();
    }, this.limits.handshakeTimeoutMs);
    timer.unref();
    secure.once('secure', () => {
      settled = true;
      clearTimeout(timer);
    });
    secure.once('close', () => clearTimeout(timer));
    secure.on('error', (err) => {
      if (settled) return;
      settled = true;
      this.failures[handshakeFailure(err)]++;
    });
    return conn;
  }
}
