/**
 * A circuit breaker: after `failures` consecutive failed or timed-out
 * reads it opens (Redis is not asked at all); after `cooldownMs` it lets
 * one probe through (half-open); the probe's success closes it, its failure
 * opens it again. A new connection closes it. Timed-out reads are also
 * counted on their own ({@link Breaker.onTimeout}): many in a row on an open
 * connection mean the connection itself is dead.
 */
import { CLOCK, type Clock, PLUGIN_OPTIONS } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import type { RedisOptions } from './options.js';
import { RedisStats } from './stats.js';

export const BREAKER_CLOSED = 0;
export const BREAKER_OPEN = 1;
export const BREAKER_HALF_OPEN = 2;
export type BreakerState = typeof BREAKER_CLOSED | typeof BREAKER_OPEN | typeof BREAKER_HALF_OPEN;

@injectable()
export class Breaker {
  /** 0 closed, 1 open, 2 half-open (the `breaker_state` gauge). */
  state: BreakerState = BREAKER_CLOSED;
  private consecutive = 0;
  /** Timed-out reads in a row (an error or a success ends the run). */
  private timeoutsInARow = 0;
  private readonly timeoutListeners: Array<(inARow: number) => void> = [];
  private openUntil = 0;
  private readonly threshold: number;
  private readonly cooldownMs: number;
  private readonly clock: Clock;
  private readonly stats: RedisStats;
  /** Called when the state changes (logging). */
  onChange: ((state: BreakerState) => void) | null = null;

  constructor(@inject(PLUGIN_OPTIONS) options: RedisOptions, @inject(CLOCK) clock: Clock, @inject(RedisStats) stats: RedisStats) {
    this.threshold = options.breaker.failures;
    this.cooldownMs = options.breaker.cooldownMs;
    this.clock = clock;
    this.stats = stats;
  }

  /** Whether a read may go to Redis now. When the cool-down is over, the first caller gets the probe. */
  allowRead(): boolean {
    if (this.state === BREAKER_CLOSED) return true;
    if (this.state === BREAKER_OPEN && this.clock.now() >= this.openUntil) {
      this.set(BREAKER_HALF_OPEN);
      return true;
    }
    return false;
  }

  /** Whether writes may go to Redis (only while closed). */
  get closed(): boolean {
    return this.state === BREAKER_CLOSED;
  }

  /** Calls `fn` after each timed-out read with the number of timeouts in a row (the state already updated). */
  onTimeout(fn: (inARow: number) => void): void {
    this.timeoutListeners.push(fn);
  }

  /** A read (or write batch) was answered. */
  success(): void {
    this.consecutive = 0;
    this.timeoutsInARow = 0;
    if (this.state !== BREAKER_CLOSED) this.set(BREAKER_CLOSED);
  }

  /** A read failed with an error (an answer of sorts: the connection carries bytes, or ioredis knows it is gone). */
  failure(): void {
    this.timeoutsInARow = 0;
    this.fail();
  }

  /** A read (or write batch) was not answered in time. */
  timeout(): void {
    this.fail();
    const n = ++this.timeoutsInARow;
    for (const fn of this.timeoutListeners) fn(n);
  }

  private fail(): void {
    this.consecutive++;
    if (this.state === BREAKER_HALF_OPEN || (this.state === BREAKER_CLOSED && this.consecutive >= this.threshold)) this.open();
  }

  /** Opens now (also used when a write batch times out). */
  open(): void {
    this.openUntil = this.clock.now() + this.cooldownMs;
    if (this.state !== BREAKER_OPEN) {
      this.stats.breakerOpened++;
      this.set(BREAKER_OPEN);
    }
  }

  /** A fresh connection: closed, counters cleared. */
  reset(): void {
    this.consecutive = 0;
    this.timeoutsInARow = 0;
    if (this.state !== BREAKER_CLOSED) this.set(BREAKER_CLOSED);
  }

  private set(state: BreakerState): void {
    this.state = state;
    this.onChange?.(state);
  }
}
