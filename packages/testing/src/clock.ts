/**
 * A controllable clock for tests: time moves only when the test says so.
 */
import type { Clock, ClockTimer } from '@heimdall/core';

interface Timer {
  readonly id: number;
  readonly at: number;
  readonly fn: () => void;
}

/**
 * Fake {@link Clock}: `now()` starts at `start` (default 2023-11-14T22:13:20Z,
 * epoch 1 700 000 000 000) and only moves with {@link FakeClock.advance} or
 * {@link FakeClock.set}. Timers fire in time order (then creation order)
 * while advancing, each seeing `now()` equal to its due time.
 *
 * @example
 * const clock = new FakeClock();
 * const resolver = createResolver({ plugins, clock });
 * clock.advance(30_000); // every TTL and timeout moves by 30 s
 */
export class FakeClock implements Clock {
  private current: number;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    const id = ++this.seq;
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    this.timers.push({ id, at: this.current + delay, fn });
    return id;
  }

  clearTimeout(timer: ClockTimer): void {
    const i = this.timers.findIndex((t) => t.id === timer);
    if (i >= 0) this.timers.splice(i, 1);
  }

  /** Number of timers not yet fired or cleared. */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing due timers synchronously in order. Returns the new time. */
  advance(ms: number): number {
    const target = this.targetOf(ms, 'advance');
    while (this.fireNext(target));
    this.current = target;
    return target;
  }

  /**
   * Like {@link advance}, but lets pending promise callbacks and I/O run
   * after each fired timer (and once at the end), so async code reacting to
   * a timer completes before the next one fires.
   */
  async advanceAsync(ms: number): Promise<number> {
    const target = this.targetOf(ms, 'advanceAsync');
    while (this.fireNext(target)) await flush();
    this.current = target;
    await flush();
    return target;
  }

  private targetOf(ms: number, method: string): number {
    if (!(ms >= 0)) throw new RangeError(`FakeClock.${method}: ms must be >= 0`);
    return this.current + ms;
  }

  /** Fires the next timer due at or before `target` (time moves to it). False when there is none. */
  private fireNext(target: number): boolean {
    const next = this.nextDue(target);
    if (next === undefined) return false;
    this.current = next.at;
    next.fn();
    return true;
  }

  /** Sets the time (forward only), firing timers due up to it. */
  set(epochMs: number): void {
    if (epochMs < this.current) throw new RangeError('FakeClock.set: time cannot go backwards');
    this.advance(epochMs - this.current);
  }

  /** Fires every pending timer (including ones they schedule), bounded to 10 000 firings. */
  runAll(): void {
    for (let n = 0; n < 10_000; n++) {
      const next = this.nextDue(Number.POSITIVE_INFINITY);
      if (next === undefined) return;
      if (next.at > this.current) this.current = next.at;
      next.fn();
    }
    throw new Error('FakeClock.runAll: more than 10000 timers fired; a timer keeps rescheduling itself');
  }

  private nextDue(limit: number): Timer | undefined {
    let best = -1;
    for (let i = 0; i < this.timers.length; i++) {
      const t = this.timers[i];
      if (t.at <= limit && (best < 0 || t.at < this.timers[best].at)) best = i;
    }
    if (best < 0) return undefined;
    return this.timers.splice(best, 1)[0];
  }
}

function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
