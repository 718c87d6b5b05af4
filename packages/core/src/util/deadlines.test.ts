import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../testing/src/clock.js';
import { Deadlines } from './deadlines.js';

describe('Deadlines', () => {
  it('calls each unfinished operation at its deadline, in any arrival order, on one timer', () => {
    const clock = new FakeClock(1000);
    const q = new Deadlines(clock);
    const fired: string[] = [];
    q.add(1100, () => fired.push(`a@${clock.now()}`));
    q.add(1050, () => fired.push(`b@${clock.now()}`)); // earlier than the armed one: re-arms
    const c = q.add(1200, () => fired.push(`c@${clock.now()}`))!;
    q.add(1300, () => fired.push(`d@${clock.now()}`));
    c.finish(); // finished first: never called
    expect(clock.pendingTimers).toBe(1);
    clock.advance(49);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual(['b@1050']);
    clock.advance(300);
    expect(fired).toEqual(['b@1050', 'a@1100', 'd@1300']);
    expect(q.size).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('lets go of finished entries at the front as new ones arrive (no sweep needed), out-of-order ones at the sweep', () => {
    const clock = new FakeClock(0);
    const q = new Deadlines(clock);
    const fired: number[] = [];
    const ds = Array.from({ length: 5000 }, (_, i) => q.add(5000, () => fired.push(i))!);
    for (let i = 0; i < 4000; i++) ds[i]!.finish();
    ds[4500]!.finish(); // not at the front: held until the sweep
    q.add(5000, () => fired.push(-1));
    expect(q.size).toBe(1001); // 4000..4999 (the finished 4500th among them) + the new one
    clock.advance(5000);
    expect(fired.length).toBe(1000); // 4000..4999 except 4500, and the new one
    expect(fired).not.toContain(4500);
    expect(fired).toContain(-1);
    expect(q.size).toBe(0);
  });

  it('drops finished entries when the timer runs, and refuses past max', () => {
    const clock = new FakeClock(0);
    const q = new Deadlines(clock, 3);
    const all = [q.add(10, () => {}), q.add(10, () => {}), q.add(10, () => {})];
    expect(q.add(10, () => {})).toBeNull();
    for (const d of all) d!.finish();
    clock.advance(10);
    expect(q.size).toBe(0);
    expect(q.add(20, () => {})).not.toBeNull();
    q.clear();
    expect(clock.pendingTimers).toBe(0);
  });
});
