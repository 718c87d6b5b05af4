import { FakeClock } from '../../../testing/src/clock.js';
import { describe, expect, it } from 'vitest';
import { CoarseClock, TICK_MS } from './coarse-clock.js';

describe('CoarseClock', () => {
  it('reads the clock in ticks while it is read, and stops a second after the last read', () => {
    const clock = new FakeClock(1_000_000);
    const coarse = new CoarseClock(clock);
    expect(coarse.read()).toBe(1_000_000);
    clock.advance(TICK_MS - 1);
    expect(coarse.read()).toBe(1_000_000); // not yet a tick
    clock.advance(1);
    expect(coarse.read()).toBe(1_000_000 + TICK_MS);
    clock.advance(2000);
    expect(coarse.ticking).toBe(false);
    expect(clock.pendingTimers).toBe(0);
    expect(coarse.read()).toBe(clock.now()); // a read after the pause reads the clock itself
  });

  it('is shared per clock: one timer for every plugin on the same clock', () => {
    const a = new FakeClock(0);
    const b = new FakeClock(0);
    expect(CoarseClock.shared(a)).toBe(CoarseClock.shared(a));
    expect(CoarseClock.shared(a)).not.toBe(CoarseClock.shared(b));
    CoarseClock.shared(a).read();
    expect(a.pendingTimers).toBe(1);
  });
});
