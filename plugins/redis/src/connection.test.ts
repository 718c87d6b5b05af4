import { type Clock, parseOptions } from '@heimdall/core';
import { silentLogger } from '@heimdall/core/pipeline';
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
    expect(stats.forcedReconnects).toBe(1);
    expect(dropped).toBe(1);
    clock.t += 999;
    expect(conn.replace('timeouts')).toBe(false);
    expect(stats.forcedReconnects).toBe(1);
    clock.t += 1;
    expect(conn.replace('timeouts')).toBe(true);
    expect(stats.forcedReconnects).toBe(2);
    client.status = 'reconnecting';
    clock.t += 5000;
    expect(conn.replace('timeouts')).toBe(false);
    expect(dropped).toBe(2);
  });
});
