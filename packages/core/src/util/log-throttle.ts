/**
 * Log lines about abusive traffic must not become a flood themselves: one
 * line per interval at most, carrying how many were held back since the last.
 */
export class LogThrottle {
  #next = Number.NEGATIVE_INFINITY;
  #suppressed = 0;

  constructor(readonly intervalMs: number) {}

  /** At time `now` (ms): -1 when the line must be skipped, else how many lines were skipped before it. */
  take(now: number): number {
    if (now < this.#next) {
      this.#suppressed++;
      return -1;
    }
    this.#next = now + this.intervalMs;
    const n = this.#suppressed;
    this.#suppressed = 0;
    return n;
  }
}
