/**
 * Several processes on one directory (the workers of one host), and state
 * that survives a restart.
 */
import { systemClock } from '@heimdall/core/pipeline';
import { afterEach, describe, expect, it } from 'vitest';
import { Child, cleanupDirs, entryOf, type Instance, keyOf, startInstance, tempDir } from './test-util.js';

const children: Child[] = [];
const running: Instance[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill();
  for (const i of running.splice(0)) await i.stop();
  cleanupDirs();
});

async function child(dir: string): Promise<Child> {
  const c = new Child({ dir, statePollMs: 100 });
  children.push(c);
  await c.next((m) => m.ready === true);
  return c;
}

async function until<T>(f: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`not reached in time: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('one directory, several processes', () => {
  it("two processes sharing one dir see each other's entries (and flushes)", async () => {
    const dir = tempDir();
    const [a, b] = [await child(dir), await child(dir)];
    const ka = keyOf('from-a.example');
    const kb = keyOf('from-b.example');
    const exp = Date.now() + 600_000;
    await a.ask({ op: 'set', key: ka.toString('hex'), value: entryOf(ka).toString('hex'), expiresAt: exp });
    await b.ask({ op: 'set', key: kb.toString('hex'), value: entryOf(kb).toString('hex'), expiresAt: exp });
    await a.ask({ op: 'drain' });
    await b.ask({ op: 'drain' });
    expect((await b.ask({ op: 'get', key: ka.toString('hex') })).value).toBe(entryOf(ka).toString('hex'));
    expect((await a.ask({ op: 'get', key: kb.toString('hex') })).value).toBe(entryOf(kb).toString('hex'));
    // And this (third) process too, while they run.
    const me = await startInstance({ dir }, systemClock);
    running.push(me);
    expect(me.tier.get(ka)).toBeDefined();
    await me.tier.flush({ name: 'from-a.example' });
    expect((await b.ask({ op: 'get', key: ka.toString('hex') })).value).toBeNull();
    expect((await b.ask({ op: 'get', key: kb.toString('hex') })).value).not.toBeNull();
  }, 30_000);

  it("the state store reports another process's change, not its own, and survives a restart", async () => {
    const dir = tempDir();
    const a = await child(dir);
    const me = await startInstance({ dir, statePollMs: 100 }, systemClock);
    running.push(me);
    const seen: unknown[] = [];
    me.state.subscribe('blocking.disabledUntil', (v) => seen.push(v));
    await a.ask({ op: 'stateSet', key: 'blocking.disabledUntil', value: 1_900_000_000_000 });
    await until(
      () => seen,
      (s) => s.length === 1,
    );
    expect(seen).toEqual([1_900_000_000_000]);
    expect(me.state.get('blocking.disabledUntil')).toBe(1_900_000_000_000);
    // Our own write is not reported back to us, but the child sees it.
    me.state.set('blocking.disabledUntil', null);
    await until(
      async () => (await a.ask({ op: 'stateGet', key: 'blocking.disabledUntil' })).value,
      (v) => v === null,
    );
    // A deletion elsewhere is reported as undefined.
    await a.ask({ op: 'stateSet', key: 'blocking.disabledUntil' });
    await until(
      () => seen,
      (s) => s.length === 2,
    );
    expect(seen).toEqual([1_900_000_000_000, undefined]);
    // Survives a restart of everyone.
    await a.ask({ op: 'stateSet', key: 'other', value: { a: [1, 'two'] } });
    await a.ask({ op: 'stop' });
    await me.stop();
    running.length = 0;
    const again = await startInstance({ dir }, systemClock);
    running.push(again);
    expect(again.state.get('other')).toEqual({ a: [1, 'two'] });
    const initial: unknown[] = [];
    again.state.subscribe('other', (v) => initial.push(v));
    expect(initial).toEqual([]); // never during subscribe…
    await Promise.resolve();
    expect(initial).toEqual([{ a: [1, 'two'] }]); // …but once, on a microtask
  }, 30_000);
});

describe('state store, one process', () => {
  it('reads its own writes at once; ttlMs forgets; bad keys and values are TypeErrors', async () => {
    const dir = tempDir();
    const { FakeClock } = await import('@heimdall/testing');
    const clock = new FakeClock();
    const i = await startInstance({ dir }, clock);
    running.push(i);
    i.state.set('x', { n: 1 }, { ttlMs: 1000 });
    expect(i.state.get('x')).toEqual({ n: 1 });
    clock.advance(1000);
    expect(i.state.get('x')).toBeUndefined();
    expect(() => i.state.set('', 1)).toThrow(TypeError);
    expect(() => i.state.set('y', () => 1)).toThrow(/not JSON/);
    expect(() => i.state.set('y', 'x'.repeat(70_000))).toThrow(/over 65536 bytes/);
  });
});
