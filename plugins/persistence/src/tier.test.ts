import { FakeClock } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupDirs, entryOf, type Instance, keyOf, startInstance, tempDir } from './test-util.js';

const running: Instance[] = [];
async function start(options: Parameters<typeof startInstance>[0], clock = new FakeClock()): Promise<Instance & { clock: FakeClock }> {
  const i = await startInstance(options, clock);
  running.push(i);
  return Object.assign(i, { clock });
}
afterEach(async () => {
  for (const i of running.splice(0)) await i.stop();
  cleanupDirs();
});

const hex = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString('hex'));

describe('disk tier', () => {
  it('is named disk; a set entry is read back after its batch commits, not before', async () => {
    const { tier, clock } = await start({ dir: tempDir() });
    expect(tier.name).toBe('disk');
    const key = keyOf('www.example.com');
    const entry = entryOf(key);
    tier.set(key, entry, clock.now() + 60_000);
    expect(tier.get(key)).toBeUndefined();
    expect(tier.pendingWrites).toBe(1);
    await tier.drain();
    expect(hex(tier.get(key))).toBe(entry.toString('hex'));
    expect(tier.get(keyOf('other.example.com'))).toBeUndefined();
  });

  it('commits by itself after flushIntervalMs, or at once when a batch is full', async () => {
    const { tier, clock, stats } = await start({ dir: tempDir(), batchSize: 3, flushIntervalMs: 500 });
    const exp = clock.now() + 60_000;
    tier.set(keyOf('a.test'), entryOf(keyOf('a.test')), exp);
    clock.advance(499);
    expect(stats.batches).toBe(0);
    clock.advance(1);
    await vitestWait(() => stats.batches === 1);
    expect(tier.get(keyOf('a.test'))).toBeDefined();
    for (const n of ['b', 'c', 'd']) tier.set(keyOf(`${n}.test`), entryOf(keyOf(`${n}.test`)), exp);
    clock.advance(0); // the full batch is due at once
    await vitestWait(() => stats.batches === 2);
    expect(stats.writes).toBe(4);
  });

  it('returns nothing once the absolute expiry passes (across a reopen too)', async () => {
    const dir = tempDir();
    const clock = new FakeClock();
    const a = await start({ dir }, clock);
    const key = keyOf('expiring.test');
    a.tier.set(key, entryOf(key), clock.now() + 10_000);
    a.tier.set(keyOf('past.test'), entryOf(key), clock.now()); // already expired: not stored
    await a.tier.drain();
    expect(a.stats.writes).toBe(1);
    await a.stop();
    running.length = 0;
    const b = await start({ dir }, clock);
    expect(b.tier.get(key)).toBeDefined();
    clock.advance(9_999);
    expect(b.tier.get(key)).toBeDefined();
    clock.advance(1);
    expect(b.tier.get(key)).toBeUndefined();
    expect(b.stats.hits).toBe(2);
    expect(b.stats.misses).toBe(1);
  });

  it('a rewrite replaces the entry and its age-index record', async () => {
    const { tier, clock, env } = await start({ dir: tempDir() });
    const key = keyOf('www.example.com');
    tier.set(key, entryOf(key, 50), clock.now() + 60_000);
    await tier.drain();
    clock.advance(1000);
    tier.set(key, entryOf(key, 70), clock.now() + 60_000);
    await tier.drain();
    expect(tier.get(key)?.length).toBe(70);
    expect(env.env!.entries.getCount()).toBe(1);
    expect(env.env!.age.getCount()).toBe(1);
  });

  it('flushes everything, one name (all types and flags), or a suffix, label-aligned', async () => {
    const { tier, clock, env } = await start({ dir: tempDir() });
    const exp = clock.now() + 60_000;
    const keys = {
      www: keyOf('www.example.com'),
      wwwAAAA: keyOf('www.example.com', 28),
      wwwDo: keyOf('www.example.com', 1, '3'),
      apex: keyOf('example.com'),
      deep: keyOf('a.b.example.com'),
      bad: keyOf('badexample.com'),
      other: keyOf('example.org'),
      wwwx: keyOf('wwwx.example.com'),
    };
    const setAll = async (): Promise<void> => {
      for (const k of Object.values(keys)) tier.set(k, entryOf(k), exp);
      await tier.drain();
    };
    const present = (): string[] =>
      Object.entries(keys)
        .filter(([, k]) => tier.get(k) !== undefined)
        .map(([n]) => n);
    await setAll();
    await tier.flush({ name: 'WWW.Example.com.' });
    expect(present()).toEqual(['apex', 'deep', 'bad', 'other', 'wwwx']);
    await setAll();
    await tier.flush({ suffix: 'example.com' });
    expect(present()).toEqual(['bad', 'other']);
    await setAll();
    await tier.flush({ suffix: '*.b.example.com' });
    expect(present()).toEqual(['www', 'wwwAAAA', 'wwwDo', 'apex', 'bad', 'other', 'wwwx']);
    await tier.flush({ all: true });
    expect(present()).toEqual([]);
    expect(env.env!.age.getCount()).toBe(0);
  });

  it('a flush also drops matching writes still waiting in memory', async () => {
    const { tier, clock } = await start({ dir: tempDir() });
    const k = keyOf('www.example.com');
    tier.set(k, entryOf(k), clock.now() + 60_000);
    tier.set(keyOf('example.org'), entryOf(k), clock.now() + 60_000);
    await tier.flush({ suffix: 'example.com' });
    await tier.drain();
    expect(tier.get(k)).toBeUndefined();
    expect(tier.get(keyOf('example.org'))).toBeDefined();
  });

  it('drops (and counts) writes beyond maxPendingWrites', async () => {
    const { tier, clock, stats } = await start({ dir: tempDir(), maxPendingWrites: 2, batchSize: 10 });
    for (const n of ['a', 'b', 'c', 'd']) tier.set(keyOf(`${n}.test`), entryOf(keyOf('x')), clock.now() + 60_000);
    expect(tier.pendingWrites).toBe(2);
    expect(stats.droppedWrites).toBe(2);
    await tier.drain();
    expect(stats.writes).toBe(2);
  });

  it('the sweep removes expired entries in bounded ticks, resuming where it stopped', async () => {
    const { tier, clock, stats, maintenance, env } = await start({ dir: tempDir(), sweepBatch: 10 });
    for (let i = 0; i < 25; i++) tier.set(keyOf(`short${i}.test`), entryOf(keyOf('x')), clock.now() + 1000);
    clock.advance(1); // written later: after the short ones in the age index
    for (let i = 0; i < 5; i++) tier.set(keyOf(`long${i}.test`), entryOf(keyOf('x')), clock.now() + 600_000);
    await tier.drain();
    clock.advance(1000);
    await maintenance.tick();
    expect(stats.expiredRemoved).toBe(10);
    await maintenance.tick();
    expect(stats.expiredRemoved).toBe(20);
    await maintenance.tick();
    expect(stats.expiredRemoved).toBe(25);
    await maintenance.tick(); // a new pass from the start: nothing left to remove
    expect(stats.expiredRemoved).toBe(25);
    expect(env.env!.entries.getCount()).toBe(5);
    expect(env.env!.age.getCount()).toBe(5);
  });

  it('evicts the oldest entries above 80 % of the cap and refuses writes above 95 %', async () => {
    const { tier, clock, stats, maintenance, env } = await start({ dir: tempDir(), maxSizeMb: 8, batchSize: 500, sweepBatch: 100_000 });
    const cap = 8 * 1024 * 1024;
    // ~10 MB of 2 KB entries, written in order: the first ones are the oldest.
    let i = 0;
    while (!tier.full && i < 8000) {
      for (let j = 0; j < 500; j++, i++) tier.set(keyOf(`n${i}.test`), entryOf(keyOf('x'), 2000), clock.now() + 600_000);
      clock.advance(1);
      await tier.drain();
    }
    expect(tier.full).toBe(true);
    expect(stats.usedBytes).toBeGreaterThanOrEqual(0.95 * cap);
    const dropped = stats.droppedWrites;
    tier.set(keyOf('late.test'), entryOf(keyOf('x')), clock.now() + 600_000);
    expect(stats.droppedWrites).toBe(dropped + 1);
    await maintenance.tick();
    expect(stats.evictions).toBeGreaterThan(0);
    expect(stats.usedBytes).toBeLessThanOrEqual(0.8 * cap);
    expect(tier.full).toBe(false);
    // The oldest went first.
    expect(tier.get(keyOf('n0.test'))).toBeUndefined();
    expect(tier.get(keyOf(`n${i - 1}.test`))).toBeDefined();
    expect(env.env!.entries.getCount()).toBe(env.env!.age.getCount());
  });
});

async function vitestWait(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
