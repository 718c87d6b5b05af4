import { type Clock, type Logger, parseOptions } from '@heimdall/core';
import { silentLogger } from '@heimdall/core/pipeline';
import { FakeClock } from '@heimdall/testing';
import { describe, expect, it } from 'vitest';
import { RedisConnection } from './connection.js';
import { redisOptionsSchema } from './options.js';
import { RedisStats } from './stats.js';

/** A clock whose time the test sets (replace() uses no timers). */
function clockAt(): Clock & { t: number } {
  const c = {
    t: 1_000_000,
    now: () => c.t,
    setTimeout: (): never => {
      throw new Error('not used');
    },
    clearTimeout: (): void => {},
  };
  return c as unknown as Clock & { t: number };
}

describe('RedisConnection.replace (a connection still open but dead)', () => {
  it('replaces at most once per breaker.cooldownMs of the resolver clock, and only a ready connection', () => {
    const options = parseOptions(redisOptionsSchema, { url: 'redis://127.0.0.1:1', breaker: { cooldownMs: 1000 } }, 'redis');
    const stats = new RedisStats();
    const clock = clockAt();
    const conn = new RedisConnection(options, silentLogger(), stats, clock);
    let dropped = 0;
    // Stands in for an ioredis client that still reports ready: replace() disconnects it and destroys its socket.
    const client = { status: 'ready', stream: { destroy: () => dropped++ }, disconnect: () => {} };
    conn.client = client as unknown as RedisConnection['client'];
    expect(conn.replace('timeouts')).toBe(false); // not ready yet
    conn.ready = true;
    expect(conn.replace('timeouts')).toBe(true);
    expect(stats.forcedReconnectsTimeouts).toBe(1);
    expect(dropped).toBe(1);
    clock.t += 999;
    expect(conn.replace('timeouts')).toBe(false);
    expect(stats.forcedReconnectsTimeouts).toBe(1);
    clock.t += 1;
    expect(conn.replace('timeouts')).toBe(true);
    expect(stats.forcedReconnectsTimeouts).toBe(2);
    client.status = 'reconnecting';
    clock.t += 5000;
    expect(conn.replace('timeouts')).toBe(false);
    expect(dropped).toBe(2);
    expect(stats.forcedReconnectsHandshake).toBe(0);
  });
});

describe('RedisConnection.logError (one warning per 10 s of an outage)', () => {
  it('limits warnings by the resolver clock, not the system clock', () => {
    const options = parseOptions(redisOptionsSchema, { url: 'redis://127.0.0.1:1' }, 'redis');
    // Starts at 0: the first error of a resolver whose clock starts there is a warning too.
    const clock = new FakeClock(0);
    const lines: Array<[level: string, msg: string]> = [];
    const record = (level: string) => (_fields: unknown, msg: string) => lines.push([level, msg]);
    const logger = { warn: record('warn'), debug: record('debug'), info: record('info'), error: record('error') } as unknown as Logger;
    const conn = new RedisConnection(options, logger, new RedisStats(), clock);
    conn.logError(new Error('ECONNREFUSED'), 'connection error');
    clock.advance(9_999);
    conn.logError(new Error('ECONNREFUSED'), 'connection error');
    // 10 s of the resolver clock later: a warning again, however little the system clock moved.
    clock.advance(1);
    conn.logError(new Error('ECONNREFUSED'), 'connection error');
    conn.logError(new Error('ECONNREFUSED'), 'connection error');
    expect(lines.map(([level]) => level)).toEqual(['warn', 'debug', 'warn', 'debug']);
    expect(lines[0]![1]).toBe('plugin/redis: connection error');
  });
});
