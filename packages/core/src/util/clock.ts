/**
 * The real clock. Tests bind `FakeClock` from `@heimdall/testing` instead.
 */
import type { Clock, ClockTimer } from '../tokens.js';

/**
 * `Date.now()` and the global timers. Timers are `unref()`ed: a pending
 * query timeout never keeps the process alive on its own.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn: () => void, ms: number): ClockTimer {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout(timer: ClockTimer): void {
    clearTimeout(timer as NodeJS.Timeout);
  },
};
