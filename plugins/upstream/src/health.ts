import type { Clock, ClockTimer, Logger } from '@heimdall/core';

/** Health tracking options (see the README's "Health" section). */
export interface HealthOptions {
  /** Consecutive failures that mark an upstream down. Default 3. 0 disables health tracking. */
  maxFailures: number;
  /** First down period in ms; doubles after every failed probe. Default 1000. */
  backoff: number;
  /** Longest down period in ms. Default 60 000. */
  maxBackoff: number;
  /**
   * `true` (default): while down, a background probe is sent when the down
   * period ends; success brings the upstream back. `false`: once the period
   * ends the next real query is let through as the probe.
   */
  probe: boolean;
}

/**
 * At most one health log line per upstream per interval: the first change
 * is logged at once, later ones within the interval are counted and the
 * state at the end of the interval is logged with that count. A flapping
 * upstream costs one line per interval, not one per query.
 */
export class HealthLog {
  #last = -Infinity;
  #suppressed = 0;
  #timer: ClockTimer | undefined;

  constructor(
    readonly url: string,
    readonly intervalMs: number,
    readonly clock: Clock,
    readonly logger: Logger,
    /** Current state, for the summary line. */
    readonly state: () => { down: boolean; consecutiveFailures: number; retryInMs: number },
  ) {}

  /** Records a state change (`down`: marked down or its period extended; else back up). */
  change(down: boolean): void {
    const now = this.clock.now();
    if (now - this.#last >= this.intervalMs) {
      this.#last = now;
      this.#emit(down, 0);
      return;
    }
    this.#suppressed++;
    if (this.#timer === undefined) {
      const t = this.clock.setTimeout(() => this.#flush(), this.#last + this.intervalMs - now);
      (t as NodeJS.Timeout).unref?.();
      this.#timer = t;
    }
  }

  #flush(): void {
    this.#timer = undefined;
    if (this.#suppressed === 0) return;
    this.#last = this.clock.now();
    const n = this.#suppressed;
    this.#suppressed = 0;
    this.#emit(this.state().down, n);
  }

  #emit(down: boolean, suppressed: number): void {
    const s = this.state();
    const fields = { upstream: this.url, ...(suppressed > 0 ? { changesSinceLastLog: suppressed } : {}) };
    if (down) this.logger.warn({ ...fields, failures: s.consecutiveFailures, retryInMs: s.retryInMs }, 'upstream marked down');
    else this.logger.info(fields, 'upstream back up');
  }

  /** Cancels a pending summary. */
  close(): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Smoothing factor of the RTT moving average (weight of the newest sample). */
const EWMA_ALPHA = 0.25;
/** Smallest RTT average (ms): 1 µs, below any real exchange. */
const MIN_RTT_MS = 0.001;

/**
 * Passive health of one upstream: consecutive failures, down state with
 * exponential backoff, and an exponentially weighted moving average of the
 * round-trip time (the `fastest` strategy's weight).
 */
export class Health {
  consecutiveFailures = 0;
  /** True while marked down. */
  down = false;
  /** Epoch ms when the current down period ends. */
  downUntil = 0;
  /** Current down period in ms (0 while up). */
  backoff = 0;
  /** RTT moving average in ms; 0 until the first sample. */
  rtt = 0;
  /** A background probe is in flight. */
  probing = false;

  constructor(readonly options: HealthOptions) {}

  /**
   * Can this upstream take a query now? Down upstreams are skipped (they are
   * still tried last when every upstream is down); with `probe: false` a
   * down upstream whose period has ended is available again (half-open).
   */
  available(now: number): boolean {
    return !this.down || (!this.options.probe && now >= this.downUntil);
  }

  /** A good reply arrived after `rttMs`. Returns true when this brought the upstream back up. */
  success(rttMs: number): boolean {
    this.sample(rttMs);
    this.consecutiveFailures = 0;
    if (!this.down) return false;
    this.down = false;
    this.backoff = 0;
    this.downUntil = 0;
    return true;
  }

  /**
   * Adds an RTT sample (ms, sub-millisecond resolution) without touching the
   * failure count. The average never returns to 0 (which means "no sample
   * yet"): it stays at least {@link MIN_RTT_MS}.
   */
  sample(ms: number): void {
    this.rtt = Math.max(this.rtt === 0 ? ms : this.rtt + EWMA_ALPHA * (ms - this.rtt), MIN_RTT_MS);
  }

  /**
   * An attempt failed at `now`; `penaltyMs` (the time it cost) feeds the RTT
   * average so a flaky upstream also loses the `fastest` race. Returns true
   * when this marked the upstream down (or extended its down period).
   */
  failure(now: number, penaltyMs?: number): boolean {
    if (penaltyMs !== undefined) this.sample(penaltyMs);
    const o = this.options;
    this.consecutiveFailures++;
    if (o.maxFailures <= 0 || this.consecutiveFailures < o.maxFailures) return false;
    // Already down and still inside its period: a real query that was tried
    // anyway (all-down group) failed — do not stretch the period again.
    if (this.down && now < this.downUntil) return false;
    this.backoff = this.down ? Math.min(this.backoff * 2, o.maxBackoff) : Math.min(o.backoff, o.maxBackoff);
    this.down = true;
    this.downUntil = now + this.backoff;
    return true;
  }
}
