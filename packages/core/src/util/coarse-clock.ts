/**
 * A coarse view of the resolver's clock for the per-query path: a timer
 * copies `clock.now()` into a field every {@link TICK_MS}, so a query reads a
 * number instead of calling `Date.now()` (a third of core's per-query
 * overhead). The timer runs only while queries arrive: after a second
 * without any it stops, and the next query reads the clock itself and
 * starts it again. Under a fake clock the ticks are fake timers too.
 */
import type { Clock, ClockTimer } from '../tokens.js';

/** Resolution of the coarse time. */
export const TICK_MS = 10;
const sharedClocks = new WeakMap<Clock, CoarseClock>();

/** Ticks without a query before the timer stops. */
const IDLE_TICKS = 100;

export class CoarseClock {
  /** The time of the last tick (epoch ms). */
  now: number;
  #ticking = false;
  #used = false;
  #idle = 0;
  #stopped = false;
  #timer: ClockTimer | undefined;
  readonly #clock: Clock;
  readonly #tick: () => void;
  /** Called on each tick with the time (periodic work of the owner). */
  onTick: ((now: number) => void) | undefined;

  /**
   * The one coarse clock of `clock` that plugins share (one timer for all of
   * them instead of one each). Never stopped by its users: it stops by
   * itself a second after the last read, and its timer never keeps the
   * process alive (the resolver's clock unrefs timers).
   */
  static shared(clock: Clock): CoarseClock {
    let c = sharedClocks.get(clock);
    if (c === undefined) {
      c = new CoarseClock(clock);
      sharedClocks.set(clock, c);
    }
    return c;
  }

  constructor(clock: Clock) {
    this.#clock = clock;
    this.now = clock.now();
    this.#tick = () => {
      this.now = this.#clock.now();
      this.#timer = undefined;
      if (this.#used) this.#idle = 0;
      else this.#idle++;
      this.#used = false;
      this.onTick?.(this.now);
      if (this.#idle >= IDLE_TICKS || this.#stopped) this.#ticking = false;
      else this.#timer = this.#clock.setTimeout(this.#tick, TICK_MS);
    };
  }

  /** The current coarse time; starts the timer when it is not running. */
  read(): number {
    if (!this.#ticking) this.#wake();
    this.#used = true;
    return this.now;
  }

  /** Whether the timer runs. */
  get ticking(): boolean {
    return this.#ticking;
  }

  #wake(): void {
    this.now = this.#clock.now();
    if (this.#stopped) return;
    this.#ticking = true;
    this.#idle = 0;
    this.#timer = this.#clock.setTimeout(this.#tick, TICK_MS);
  }

  /** Stops the timer for good (`read()` then reads the clock each time). */
  stop(): void {
    this.#stopped = true;
    this.#ticking = false;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
