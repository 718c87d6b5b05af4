/** Transport a query arrived on. `internal` is `resolver.handle()` and background work. */
export type TransportKind = 'udp' | 'tcp' | 'tls' | 'https' | 'internal';

/** Who asked, and over what. */
export interface ClientInfo {
  /** Client IP address (IPv4 dotted or IPv6 text, no brackets, no zone for global addresses). */
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
  readonly transport: TransportKind;
  /** The local address the query arrived at (replies over UDP leave from it). */
  readonly localAddress?: string;
  readonly localPort?: number;
}
