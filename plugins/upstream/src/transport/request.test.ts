import { FakeClock } from '@heimdall/testing';
import { describe, expect, it } from 'vitest';
import type { UpstreamError } from '../errors.js';
import { arm, type Queueable, refusal, settle } from './request.js';

function request(): Queueable {
  return { origId: 1, qEnd: 17, resolve: () => {}, reject: () => {}, timer: undefined, signal: undefined, onAbort: undefined, queued: false, done: false };
}

describe('the shared life of an exchange', () => {
  it('refuses before sending: CLOSED, then BAD_QUERY, then ABORTED', () => {
    const q = Buffer.alloc(20);
    const aborted = AbortSignal.abort();
    expect(refusal(true, q, -1, { deadline: 0, signal: aborted }, 'u')?.code).toBe('CLOSED');
    expect(refusal(false, q, -1, { deadline: 0, signal: aborted }, 'u')?.code).toBe('BAD_QUERY');
    expect(refusal(false, Buffer.alloc(70_000), 12, { deadline: 0 }, 'u', 65535)?.message).toContain('larger than 65535 bytes');
    expect(refusal(false, q, 12, { deadline: 0, signal: aborted }, 'u')?.code).toBe('ABORTED');
    expect(refusal(false, q, 12, { deadline: 0 }, 'u')).toBeNull();
  });

  it('fails with TIMEOUT at the deadline (after onTimeout) and with ABORTED on abort; settle stops both and leaves the queue', () => {
    const clock = new FakeClock();
    const errors: string[] = [];
    const a = request();
    arm(
      a,
      { deadline: clock.now() + 100 },
      clock,
      'udp://x',
      (e: UpstreamError) => errors.push(e.code),
      () => errors.push('onTimeout'),
    );
    clock.advance(99);
    expect(errors).toEqual([]);
    clock.advance(1);
    expect(errors).toEqual(['onTimeout', 'TIMEOUT']);

    const ac = new AbortController();
    const b = request();
    arm(b, { deadline: clock.now() + 100, signal: ac.signal }, clock, 'udp://x', (e) => errors.push(e.code));
    ac.abort();
    expect(errors.at(-1)).toBe('ABORTED');

    const ac2 = new AbortController();
    const c = request();
    const queue = [request(), c];
    c.queued = true;
    arm(c, { deadline: clock.now() + 100, signal: ac2.signal }, clock, 'udp://x', (e) => errors.push(e.code));
    settle(c, clock, queue);
    expect(c.done).toBe(true);
    expect(queue).not.toContain(c);
    ac2.abort();
    clock.advance(1000);
    // c (settled) adds nothing; b's timer still fires: only settling stops it, which the transports' fail does.
    expect(errors).toEqual(['onTimeout', 'TIMEOUT', 'ABORTED', 'TIMEOUT']);
    expect(clock.pendingTimers).toBe(0);
  });
});
