import { isTruncated } from '../wire.js';
import type { ExchangeOptions, Transport, TransportEvents } from './types.js';

/**
 * UDP first, TCP when the UDP reply has TC set (RFC 7766 §5, RFC 1035
 * §4.2.1): the query is re-sent over TCP to the same server within the same
 * deadline, and the TCP reply (complete) is returned.
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
    return this.tcp.exchange(query, options);
  }

  async close(): Promise<void> {
    await Promise.all([this.udp.close(), this.tcp.close()]);
  }
}
