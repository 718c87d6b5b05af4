/**
 * The life of one exchange that every transport shares: the checks before
 * anything is sent, the deadline timer and abort listener while it waits,
 * and their removal when it settles (plus leaving the wait queue, for the
 * stream and DoH transports, which queue when they are at capacity).
 */
import type { Buffer } from 'node:buffer';
import type { Clock, ClockTimer } from '@heimdall/core';
import { UpstreamError } from '../errors.js';
import type { ExchangeOptions } from './types.js';

/** The deadline and abort bookkeeping of one exchange. */
export interface Armed {
  timer: ClockTimer | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** One exchange in flight: the caller's ID and question end, and its promise's settlers. */
export interface Exchanging extends Armed {
  readonly origId: number;
  readonly qEnd: number;
  readonly resolve: (b: Buffer) => void;
  readonly reject: (e: Error) => void;
}

/** An exchange that may wait in its transport's queue for room. */
export interface Queueable extends Exchanging {
  queued: boolean;
  done: boolean;
}

/**
 * Why an exchange cannot start (`CLOSED`, `BAD_QUERY`: `qEnd` < 0 or a query
 * over 65535 bytes when `maxLength` says so, `ABORTED`), or null when it can.
 */
export function refusal(closed: boolean, query: Buffer, qEnd: number, options: ExchangeOptions, url: string, maxLength = Infinity): UpstreamError | null {
  if (closed) return new UpstreamError('CLOSED', 'transport closed', url);
  if (qEnd < 0) return new UpstreamError('BAD_QUERY', 'query has no valid single question', url);
  if (query.length > maxLength) return new UpstreamError('BAD_QUERY', `query larger than ${maxLength} bytes`, url);
  if (options.signal?.aborted) return new UpstreamError('ABORTED', 'aborted', url);
  return null;
}

/**
 * Starts the deadline timer (`TIMEOUT` at `options.deadline`) and listens to
 * `options.signal` (`ABORTED`); both end in `fail`. `onTimeout` runs first
 * when the deadline passes (UDP remembers the ID, so its late reply is not
 * taken for a spoof).
 */
export function arm(req: Armed, options: ExchangeOptions, clock: Clock, url: string, fail: (err: UpstreamError) => void, onTimeout?: () => void): void {
  const wait = Math.max(0, options.deadline - clock.now());
  req.timer = clock.setTimeout(() => {
    req.timer = undefined;
    onTimeout?.();
    fail(new UpstreamError('TIMEOUT', `no reply within ${Math.round(wait)} ms`, url));
  }, wait);
  if (options.signal) {
    req.signal = options.signal;
    req.onAbort = () => fail(new UpstreamError('ABORTED', 'aborted', url));
    options.signal.addEventListener('abort', req.onAbort, { once: true });
  }
}

/** Stops the timer and the abort listener {@link arm} started. */
export function disarm(req: Armed, clock: Clock): void {
  if (req.timer !== undefined) clock.clearTimeout(req.timer);
  if (req.onAbort) req.signal!.removeEventListener('abort', req.onAbort);
}

/** Marks a queueable exchange settled: disarmed and out of `queue` if it waited there. */
export function settle<R extends Queueable>(req: R, clock: Clock, queue: R[]): void {
  req.done = true;
  disarm(req, clock);
  if (req.queued) {
    const i = queue.indexOf(req);
    if (i >= 0) queue.splice(i, 1);
    req.queued = false;
  }
}
