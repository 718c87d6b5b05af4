import type { Buffer } from 'node:buffer';
import { UpstreamError } from '../errors.js';
import { isTruncated } from '../wire.js';
import type { ExchangeOptions, Transport, TransportEvents } from './types.js';

/**
 * UDP first, TCP when the UDP reply has TC set (RFC 7766 §5, RFC 1035
 * §4.2.1): the query is re-sent over TCP to the same server within the same
 * deadline, and the TCP reply (complete) is returned. If TCP fails (refused,
 * timed out), the truncated UDP reply is returned as is.
 */
export class UdpWithTcpFallback implements Transport {
  readonly protocol = 'udp' as const;
  /** Queries retried over TCP because the UDP reply was truncated. */
  truncatedRetries = 0;

  constructor(
    readonly url: string,
    readonly udp: Transport,
    readonly tcp: Transport,
    readonly events: TransportEvents = {},
  ) {}

  async exchange(query: Buffer, options: ExchangeOptions): Promise<Buffer> {
    const reply = await this.udp.exchange(query, options);
    if (!isTruncated(reply)) return reply;
    this.truncatedRetries++;
    this.events.onTruncated?.();
    try {
      return await this.tcp.exchange(query, options);
    } catch (err) {
      // The truncated reply is still a valid answer (RFC 2181 §9): when TCP
      // cannot be had, hand it on and let the client retry over TCP itself.
      if (err instanceof UpstreamError && (err.code === 'ABORTED' || err.code === 'CLOSED' || err.code === 'BAD_QUERY')) throw err;
      return reply;
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.udp.close(), this.tcp.close()]);
  }
}
