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
  /**
   * The client's own name for itself, when the transport carries one: DoH
   * `<path>/<client-id>` (letters, digits, `.`, `_`, `-`; at most 64). For
   * groups and logs; not authenticated.
   */
  readonly clientId?: string;
}

/**
 * Calls the rest of the chain. Returns a Promise only when some middleware
 * further down returned one; `await next()` works in both cases.
 */
export type Next = () => void | Promise<void>;

/**
 * One step of the onion. Answer by setting `ctx.response` (or calling an
 * answering helper such as `ctx.answer(...)`) and returning without calling
 * `next()`; or call `next()` and inspect/replace the response afterwards.
 * Return nothing for a synchronous step: no Promise is created then.
 *
 * The context type is a parameter so that tests and embedders can run a
 * chain over their own object; the resolver always passes a `DnsContext`.
 */
export type Middleware<C = import('./context.js').DnsContext> = (ctx: C, next: Next) => void | Promise<void>;
