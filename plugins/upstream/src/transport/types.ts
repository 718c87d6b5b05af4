/** Options of one {@link Transport.exchange}. */
import type { Buffer } from 'node:buffer';
export interface ExchangeOptions {
  /** Epoch ms (on the transport's clock) after which the attempt fails with `TIMEOUT`. */
  deadline: number;
  /** Aborts the attempt with `ABORTED`. */
  signal?: AbortSignal | undefined;
}

/** Counters a transport bumps on events it alone can see. */
export interface TransportEvents {
  /** A datagram or frame that was not a valid reply to a pending query (wrong source, ID or question). */
  onSpoof?(reason: 'source' | 'id' | 'question' | 'malformed'): void;
  /** A UDP reply had TC set and the query is being retried over TCP. */
  onTruncated?(): void;
}

/** Protocol of a transport. */
export type TransportProtocol = 'udp' | 'tcp' | 'tls' | 'https';

/**
 * One way of talking to one upstream server. `exchange` sends a query (wire
 * format, any ID; never modified) and resolves with a validated reply — same
 * question, QR set — carrying the query's ID, in a buffer the caller owns.
 */
export interface Transport {
  readonly protocol: TransportProtocol;
  /** The upstream's URL, as configured (metrics label, error messages). */
  readonly url: string;
  exchange(query: Buffer, options: ExchangeOptions): Promise<Buffer>;
  /** Closes sockets/sessions and rejects pending exchanges with `CLOSED`. Idempotent. */
  close(): Promise<void>;
}
