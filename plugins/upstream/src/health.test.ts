import { Writable } from 'node:stream';
import { FakeClock } from '@heimdall/testing';
import pino from 'pino';
import { systemClock } from '@heimdall/core/pipeline';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { elapsedMs, UpstreamServer } from './group.js';
import { Health, HealthLog } from './health.js';
import { UpstreamStats } from './stats.js';
import type { Transport } from './transport/types.js';

const opts = { maxFailures: 3, backoff: 1000, maxBackoff: 4000, probe: true };

describe('Health', () => {
  it('marks down after N consecutive failures, doubles the period on each failed probe, caps it', () => {
    const h = new Health(opts);
    expect(h.failure(0)).toBe(false);
    expect(h.failure(0)).toBe(false);
    h.success(5); // resets the streak
    expect(h.failure(10)).toBe(false);
    expect(h.failure(10)).toBe(false);
    expect(h.failure(10)).toBe(true);
    expect(h).toMatchObject({ down: true, backoff: 1000, downUntil: 1010 });
    expect(h.available(500)).toBe(false);
    // A failure inside the period (all-down group tried it anyway) does not stretch it.
    expect(h.failure(500)).toBe(false);
    expect(h.downUntil).toBe(1010);
    // Failed probes after the period: 2000, 4000, then capped at 4000.
    expect(h.failure(1010)).toBe(true);
    expect(h.backoff).toBe(2000);
    expect(h.failure(3010)).toBe(true);
    expect(h.backoff).toBe(4000);
    expect(h.failure(7010)).toBe(true);
    expect(h.backoff).toBe(4000);
    expect(h.success(3)).toBe(true);
    expect(h).toMatchObject({ down: false, backoff: 0, consecutiveFailures: 0 });
    expect(h.available(0)).toBe(true);
  });

  it('with probe: false a down upstream becomes available again when its period ends', () => {
    const h = new Health({ ...opts, maxFailures: 1, probe: false });
    h.failure(0);
    expect(h.available(999)).toBe(false);
    expect(h.available(1000)).toBe(true);
  });

  it('maxFailures 0 never marks down', () => {
    const h = new Health({ ...opts, maxFailures: 0 });
    for (let i = 0; i < 100; i++) expect(h.failure(i)).toBe(false);
    expect(h.down).toBe(false);
  });

  it('keeps an RTT moving average, with failures as penalties', () => {
    const h = new Health(opts);
    h.success(10);
    expect(h.rtt).toBe(10);
    h.success(20);
    expect(h.rtt).toBeCloseTo(12.5);
    h.failure(0, 2000);
    expect(h.rtt).toBeGreaterThan(400);
    for (let i = 0; i < 40; i++) h.success(10);
    expect(h.rtt).toBeLessThan(11);
  });

  it('averages sub-millisecond samples, and never decays back to 0 ("no sample yet")', () => {
    const h = new Health(opts);
    for (let i = 0; i < 50; i++) h.success(0.22);
    expect(h.rtt).toBeCloseTo(0.22, 5);
    for (let i = 0; i < 200; i++) h.success(0);
    expect(h.rtt).toBeGreaterThanOrEqual(0.001);
  });
});

/** A transport that answers after spinning `ms` of real time (synchronously: no timer resolution in the way). */
function spinning(ms: number): Transport {
  return {
    protocol: 'udp',
    url: 'udp://192.0.2.53:53',
    exchange: async (q) => {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        // busy: a real sub-millisecond round trip
      }
      return q;
    },
    close: async () => undefined,
  };
}

describe('UpstreamServer round-trip times', () => {
  afterEach(() => vi.restoreAllMocks());

  it('measures a sub-millisecond reply with the real clock (not whole Date.now() milliseconds)', async () => {
    // Date.now() standing still: a millisecond clock would measure 0 every time.
    const frozen = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(frozen);
    const s = new UpstreamServer('udp://192.0.2.53:53', spinning(0.3), new Health(opts), new UpstreamStats('udp://192.0.2.53:53'), systemClock);
    for (let i = 0; i < 5; i++) expect(await s.probe(frozen + 1000)).toBe(true);
    expect(s.health.rtt).toBeGreaterThanOrEqual(0.3);
    expect(s.health.rtt).toBeLessThan(50);
    expect(elapsedMs(systemClock, frozen, performance.now() - 0.5)).toBeGreaterThanOrEqual(0.5);
  });

  it('measures with the clock it was given when that is not the real one (a fake clock in tests)', async () => {
    const clock = new FakeClock(1000);
    const t: Transport = {
      protocol: 'udp',
      url: 'u',
      exchange: async (q) => {
        clock.advance(7);
        return q;
      },
      close: async () => undefined,
    };
    const s = new UpstreamServer('u', t, new Health(opts), new UpstreamStats('u'), clock);
    await s.probe(10_000);
    expect(s.health.rtt).toBe(7);
  });
});

describe('HealthLog', () => {
  it('logs the first change at once and at most one summary per interval, with the state at its end', () => {
    const clock = new FakeClock();
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _e, cb) {
          lines.push(JSON.parse(String(chunk)));
          cb();
        },
      }),
    );
    let down = false;
    const log = new HealthLog('udp://192.0.2.1:53', 10_000, clock, logger, () => ({ down, consecutiveFailures: 3, retryInMs: 1000 }));
    for (let i = 0; i < 77; i++) {
      down = i % 2 === 0;
      log.change(down);
      clock.advance(10);
    }
    // 77 changes in 770 ms: one line now, the rest summarised when the interval ends.
    expect(lines.map((l) => l.msg)).toEqual(['upstream marked down']);
    clock.advance(10_000);
    expect(lines.map((l) => [l.msg, l.changesSinceLastLog])).toEqual([
      ['upstream marked down', undefined],
      ['upstream marked down', 76],
    ]);
    // Quiet afterwards: nothing more; a later change is logged at once again.
    clock.advance(60_000);
    expect(lines).toHaveLength(2);
    down = false;
    log.change(false);
    expect(lines[2]).toMatchObject({ msg: 'upstream back up', upstream: 'udp://192.0.2.1:53' });
    log.close();
  });
});
