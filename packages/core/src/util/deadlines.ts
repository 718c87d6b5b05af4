/**
 * Time limits for many short operations with one timer: a read from a
 * cache tier, a Redis GET. A `setTimeout` + `clearTimeout` per operation
 * costs a timer object, two timer-list updates and garbage per query; here
 * an operation costs one small entry, and the one timer fires only when the
 * earliest live deadline passes (or finds nothing to do and stops).
 *
 * Entries are kept in arrival order; a deadline earlier than the one the
 * timer is armed for re-arms it. A finished operation is only marked
 * ({@link Deadline.finish}: it drops its callback at once); finished
 * entries at the front are dropped by the next `add`, the rest when the
 * timer runs. So the entries held are about the operations in flight (or
 * at most `max`: past it, `add` returns null and the caller fails fast).
 */
import type { Clock, ClockTimer } from '../tokens.js';

/**
 * One operation's time limit. Call {@link finish} when the operation ends
 * first: the timeout is then never called, and the entry lets go of its
 * callback at once (what the callback holds — a promise, its value — is
 * not kept alive until the next sweep).
 */
export class Deadline {
  /** Epoch ms. */
  readonly at: number;
  /** @internal The timeout; null once finished or fired. */
  fn: (() => void) | null;

  constructor(at: number, fn: () => void) {
    this.at = at;
    this.fn = fn;
  }

  /** Whether the operation finished or timed out. */
  get done(): boolean {
    return this.fn === null;
  }

  /** Marks the operation finished (no timeout will be called). */
  finish(): void {
    this.fn = null;
  }
}

export class Deadlines {
  #entries: Deadline[] = [];
  /** Entries before this index are finished and dropped (operations mostly end in the order they start). */
  #head = 0;
  #timer: ClockTimer | undefined;
  /** The deadline the timer is armed for (Infinity when not armed). */
  #armedAt = Number.POSITIVE_INFINITY;
  readonly #clock: Clock;
  readonly #max: number;
  readonly #run: () => void;

  /** `max`: most entries held (live or finished but not yet swept). */
  constructor(clock: Clock, max = 100_000) {
    this.#clock = clock;
    this.#max = max;
    this.#run = () => this.#sweep();
  }

  /**
   * Calls `onTimeout` once `at` (epoch ms) has passed, unless the returned
   * entry is {@link Deadline.finish}ed first. Returns null when `max` entries are held.
   */
  add(at: number, onTimeout: () => void): Deadline | null {
    // Let go of the finished entries at the front, so that finished operations are not kept until the sweep.
    let entries = this.#entries;
    let h = this.#head;
    while (h < entries.length && entries[h]!.fn === null) h++;
    if (h === entries.length) {
      entries.length = 0;
      h = 0;
    } else if (h >= 1024 && h * 2 >= entries.length) {
      entries = this.#entries = entries.slice(h);
      h = 0;
    }
    this.#head = h;
    if (entries.length - h >= this.#max) return null;
    const d = new Deadline(at, onTimeout);
    entries.push(d);
    if (at < this.#armedAt) this.#arm(at);
    return d;
  }

  /** Entries held (live or finished, not yet swept). */
  get size(): number {
    return this.#entries.length - this.#head;
  }

  /** Drops every entry without calling it and stops the timer. */
  clear(): void {
    this.#entries = [];
    this.#head = 0;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#timer = this.#clock.setTimeout(this.#run, Math.max(0, at - this.#clock.now()));
  }

  #sweep(): void {
    this.#timer = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    const entries = this.#entries;
    const keep: Deadline[] = [];
    const due: Deadline[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (let i = this.#head; i < entries.length; i++) {
      const d = entries[i]!;
      if (d.fn === null) continue;
      if (d.at <= now) due.push(d);
      else {
        keep.push(d);
        if (d.at < next) next = d.at;
      }
    }
    this.#entries = keep;
    this.#head = 0;
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
    for (const d of due) {
      const fn = d.fn;
      d.fn = null;
      fn?.();
    }
  }
}
