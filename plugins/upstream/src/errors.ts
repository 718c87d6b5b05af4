/**
 * Errors raised by the upstream client. Every failure carries a stable
 * `code` so callers (the plugin's middleware, the cache's refresher, metrics)
 * can branch on it without parsing messages. Messages are prefixed with
 * `plugin/upstream:` and name the upstream they concern.
 */

/** Stable error codes of {@link UpstreamError}. */
export type UpstreamErrorCode =
  /** The attempt's deadline passed before a valid reply arrived. */
  | 'TIMEOUT'
  /** Socket/TLS/HTTP failure: refused, reset, unreachable, handshake error. */
  | 'NETWORK'
  /** The caller's `AbortSignal` fired. */
  | 'ABORTED'
  /** The reply was malformed or violated the protocol (bad frame, bad HTTP status or type). */
  | 'BAD_RESPONSE'
  /** The query cannot be forwarded (no single question, too short). */
  | 'BAD_QUERY'
  /** Too many queries already waiting for a stream connection. */
  | 'QUEUE_FULL'
  /** Past `maxInFlight` / `maxInFlightPerUpstream`: shed without asking anyone. */
  | 'OVERLOADED'
  /** The transport was closed (resolver stopping). */
  | 'CLOSED'
  /** Every attempt of a resolution failed; see {@link UpstreamExhaustedError}. */
  | 'EXHAUSTED';

/** A failure talking to an upstream server. */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  readonly code: UpstreamErrorCode;
  /** The upstream URL concerned, when there is one. */
  readonly upstream: string | undefined;

  constructor(code: UpstreamErrorCode, message: string, upstream?: string, options?: { cause?: unknown }) {
    super(`plugin/upstream: ${upstream ? `${upstream}: ` : ''}${message}`, options);
    this.code = code;
    this.upstream = upstream;
  }
}

/** RFC 8914 info codes this plugin attaches to the SERVFAIL it answers when it gives up. */
export const EDE_NO_REACHABLE_AUTHORITY = 22;
/** RFC 8914 "Network Error". */
export const EDE_NETWORK_ERROR = 23;

/**
 * Every attempt of one resolution failed (or the budget ran out).
 * `ede` is the RFC 8914 code that best describes why: 22 (No Reachable
 * Authority) when every attempt timed out, 23 (Network Error) when at least
 * one failed on the network or protocol level.
 */
export class UpstreamExhaustedError extends UpstreamError {
  /** RFC 8914 extended error code to attach to the SERVFAIL. */
  readonly ede: number;
  /** The individual attempt failures, in order. */
  readonly attempts: readonly UpstreamError[];

  constructor(attempts: readonly UpstreamError[], reason?: string) {
    const allTimeouts = attempts.length === 0 || attempts.every((a) => a.code === 'TIMEOUT' || a.code === 'ABORTED');
    const detail = attempts.length ? attempts.map((a) => a.message.replace('plugin/upstream: ', '')).join('; ') : (reason ?? 'no attempt made');
    super('EXHAUSTED', `all upstream attempts failed (${detail})`, undefined, { cause: attempts[attempts.length - 1] });
    this.attempts = attempts;
    this.ede = allTimeouts ? EDE_NO_REACHABLE_AUTHORITY : EDE_NETWORK_ERROR;
  }
}
