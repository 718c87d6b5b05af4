/**
 * DNS over TCP (RFC 1035 §4.2.2, RFC 7766): the framed connection of
 * `stream.ts` on a plain socket. The connection logic (framing, pipelining,
 * idle and frame timeouts, limits, hostile-client protections, PROXY v2) is
 * shared with DNS over TLS; see {@link StreamServer} and {@link FramedConnection}.
 */
import type net from 'node:net';
import { parseOptions, type Static } from '../plugin/options.js';
import type { ClientInfo } from '../pipeline/types.js';
import { tcpListenSchema } from './schema.js';
import { FramedConnection, type FramedHost, StreamServer } from './stream.js';
import type { TcpListenOptions, TransportDeps } from './types.js';

/** A TCP listener's validated settings, defaults filled in. */
export type TcpLimits = Static<typeof tcpListenSchema>;

/** Checks TCP listener options and fills in defaults ({@link tcpListenSchema}). Throws `ConfigError` naming the field. */
export function tcpLimits(options: TcpListenOptions, path = 'listen'): TcpLimits {
  return parseOptions(tcpListenSchema, { ...options, transport: 'tcp' }, path);
}

/** A TCP listener. */
export class TcpServer extends StreamServer<FramedConnection> implements FramedHost {
  /** The resolved limits of this listener. */
  readonly limits: TcpLimits;
  /** Plain TCP is not padded (RFC 7830 padding is for encrypted transports). */
  readonly padding = 'off' as const;

  constructor(options: TcpListenOptions, deps: TransportDeps, path = 'listen') {
    const limits = tcpLimits(options, path);
    super('tcp', limits, deps, path);
    this.limits = limits;
  }

  protected open(socket: net.Socket, client: ClientInfo): FramedConnection {
    return new FramedConnection(this, socket, client);
  }
}
