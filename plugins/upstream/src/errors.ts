/**
 * Errors raised by the upstream client. Every failure carries a stable
 * `code`, registered in core's error registry, so callers (the plugin's
 * middleware, the cache's refresher, metrics) can branch on it without
 * parsing messages. Messages are prefixed with `plugin/upstream:` and name
 * the upstream they concern.
 */
import { HeimdallError, registerErrorCodes } from '@heimdall/core/errors';

/** The codes of {@link UpstreamError}, each with its registry description. */
const UPSTREAM_ERROR_CODES = {
  TIMEOUT: "an upstream attempt's deadline passed before a valid reply arrived",
  NETWORK: 'socket, TLS or HTTP failure talking to an upstream: refused, reset, unreachable, handshake error',
  ABORTED: "the caller's AbortSignal fired",
  BAD_RESPONSE: 'an upstream reply was malformed or violated the protocol',
  BAD_QUERY: 'the query cannot be forwarded (no single question, too short)',
  QUEUE_FULL: 'too many queries already waiting for an upstream stream connection',
  OVERLOADED: 'past maxInFlight / maxInFlightPerUpstream: shed without asking anyone',
  CLOSED: 'the upstream transport was closed (resolver stopping)',
  EXHAUSTED: 'every upstream attempt of a resolution failed',
} as const;
registerErrorCodes(UPSTREAM_ERROR_CODES, {
  TIMEOUT: 504,
  BAD_QUERY: 400,
  QUEUE_FULL: 503,
  OVERLOADED: 503,
  CLOSED: 503,
  NETWORK: 502,
  BAD_RESPONSE: 502,
  EXHAUSTED: 502,
});

/**
 * Stable error codes of {@link UpstreamError}:
 * - `TIMEOUT`: the attempt's deadline passed before a valid reply arrived.
 * - `NETWORK`: socket/TLS/HTTP failure: refused, reset, unreachable, handshake error.
 * - `ABORTED`: the caller's `AbortSignal` fired.
 * - `BAD_RESPONSE`: the reply was malformed or violated the protocol (bad frame, bad HTTP status or type).
 * - `BAD_QUERY`: the query cannot be forwarded (no single question, too short).
 * - `QUEUE_FULL`: too many queries already waiting for a stream connection.
 * - `OVERLOADED`: past `maxInFlight` / `maxInFlightPerUpstream`: shed without asking anyone.
 * - `CLOSED`: the transport was closed (resolver stopping).
 * - `EXHAUSTED`: every attempt of a resolution failed; see {@link UpstreamExhaustedError}.
 */
export type UpstreamErrorCode = keyof typeof UPSTREAM_ERROR_CODES;

/** A failure talking to an upstream server. */
export class UpstreamError extends HeimdallError {
  override readonly name = 'UpstreamError';
  declare readonly code: UpstreamErrorCode;
  /** The upstream URL concerned, when there is one. */
  readonly upstream: string | undefined;

  constructor(code: UpstreamErrorCode, message: string, upstream?: string, options?: { cause?: unknown }) {
    super(code, `plugin/upstream: ${upstream ? `${upstream}: ` : ''}${message}`, options);
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
