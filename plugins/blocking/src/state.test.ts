/**
 * The shared enable/disable switch through core's STATE_STORE: what is
 * written, what a restart applies, what other processes follow. The store
 * here is an in-memory stand-in with the persistence store's behaviour (a
 * process is not told of its own writes; a subscriber is told once of the
 * stored value; a `ttlMs` makes the store forget the value). The real disk
 * store is exercised in test/blocking-state.e2e.test.ts.
 */
import { BLOCKING_CONTROL, type BlockingControl, type HeimdallPlugin, STATE_STORE, type StateStore } from '@heimdall/core';
import { ContainerModule } from '@heimdall/core/di';
import { systemClock } from '@heimdall/core/pipeline';
import { expectAnswers, expectRcode, FakeClock, query, record, response, type TestResolver, testResolver } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { blocking } from './plugin.js';

/** Storage shared by the "processes"; each gets its own {@link StateStore} view of it. */
class SharedState {
  readonly data = new Map<string, { value: unknown; expiresAt?: number }>();
  readonly writes: Array<{ key: string; value: unknown; ttlMs?: number }> = [];
  private readonly views = new Set<View>();
  constructor(readonly clock: { now(): number }) {}
  view(): View {
    const v = new View(this);
    this.views.add(v);
    return v;
  }
  /** Tells every view but the writer (as the persistence store does on its next poll). */
  changed(key: string, by: View): void {
    for (const v of this.views) if (v !== by) v.notify(key, this.read(key));
  }
  read(key: string): unknown {
    const r = this.data.get(key);
    return r === undefined || (r.expiresAt !== undefined && r.expiresAt <= this.clock.now()) ? undefined : r.value;
  }
}

class View implements StateStore {
  private readonly listeners = new Map<string, Set<(v: unknown) => void>>();
  constructor(private readonly shared: SharedState) {}
  get(key: string): unknown {
    return this.shared.read(key);
  }
  set(key: string, value: unknown, options?: { readonly ttlMs?: number }): void {
    this.shared.writes.push({ key, value, ...(options?.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}) });
    this.shared.data.set(key, { value, ...(options?.ttlMs !== undefined ? { expiresAt: this.shared.clock.now() + options.ttlMs } : {}) });
    this.shared.changed(key, this);
  }
  subscribe(key: string, listener: (value: unknown) => void): () => void {
    let set = this.listeners.get(key);
    if (set === undefined) this.listeners.set(key, (set = new Set()));
    set.add(listener);
    const value = this.get(key);
    if (value !== undefined) queueMicrotask(() => listener(value));
    return () => set.delete(listener);
  }
  notify(key: string, value: unknown): void {
    for (const l of this.listeners.get(key) ?? []) l(value);
  }
  get subscribers(): number {
    let n = 0;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }
}

/** Provides `store` as STATE_STORE (what the persistence plugin does). */
function statePlugin(store: StateStore): HeimdallPlugin {
  const id = Symbol('state');
  return {
    name: 'state',
    module: new ContainerModule(({ bind }) => void bind(id).toConstantValue(store)),
    provides: [{ token: STATE_STORE, use: id }],
  };
}

const upstreamStub: HeimdallPlugin = {
  name: 'stub',
  middleware: () => (ctx) => {
    ctx.response = response(ctx.request, { answers: [record(ctx.query.qname, 'A', '192.0.2.80', 300)] });
  },
};

const resolvers: TestResolver[] = [];
afterEach(async () => {
  for (const r of resolvers.splice(0)) await r.stop();
});

async function proc(
  store: StateStore | null,
  clock: FakeClock | typeof systemClock,
  options: { enabled?: boolean; name?: string; path?: string } = {},
): Promise<TestResolver> {
  const plugins: HeimdallPlugin[] = [
    blocking(
      { build: 'inline', enabled: options.enabled ?? true, groups: { ads: { block: [{ inline: 'ads.example\n' }] } } },
      options.name || options.path ? { ...(options.name ? { name: options.name } : {}), ...(options.path ? { path: options.path } : {}) } : undefined,
    ),
    upstreamStub,
  ];
  if (store !== null) plugins.unshift(statePlugin(store));
  const r = testResolver(plugins, { clock });
  resolvers.push(r);
  await r.start();
  return r;
}

const KEY = 'blocking.disabledUntil';
const control = (r: TestResolver, token = BLOCKING_CONTROL) => r.get<BlockingControl>(token);
const flush = () => new Promise<void>((r) => setImmediate(r));

describe('blocking: the enable/disable switch in STATE_STORE', () => {
  it('writes blocking.disabledUntil: the absolute end of a timed disable (with that TTL), 0 until enabled, null when enabled', async () => {
    const clock = new FakeClock();
    const shared = new SharedState(clock);
    const r = await proc(shared.view(), clock);
    const now = clock.now();
    control(r).disable(60_000);
    control(r).disable();
    control(r).enable();
    expect(shared.writes).toEqual([
      { key: KEY, value: now + 60_000, ttlMs: 60_000 },
      { key: KEY, value: 0 },
      { key: KEY, value: null },
    ]);
  });

  it('a disable in one process reaches the others (same end time), and so does an enable; each turns itself back on at the end', async () => {
    const clock = new FakeClock();
    const shared = new SharedState(clock);
    const a = await proc(shared.view(), clock);
    const b = await proc(shared.view(), clock);
    control(a).disable(60_000);
    expect(control(b).status()).toMatchObject({ enabled: false, disabledUntil: clock.now() + 60_000 });
    expectAnswers(await b.handle(query('ads.example')), ['192.0.2.80']);
    clock.advance(60_000);
    expect([control(a).status().enabled, control(b).status().enabled]).toEqual([true, true]);
    expectRcode(await b.handle(query('ads.example')), 'NXDOMAIN');
    // Indefinitely, then enabled from the other side.
    control(a).disable();
    expect(control(b).status()).toMatchObject({ enabled: false, disabledUntil: null });
    clock.advance(86_400_000);
    expect(control(b).status().enabled).toBe(false);
    control(b).enable();
    expect(control(a).status().enabled).toBe(true);
    expect(shared.writes.length).toBe(3); // nobody writes back what it was told
  });

  it('a restart applies the stored disable: the rest of a timed one, an indefinite one; a time already past is ignored', async () => {
    const clock = new FakeClock();
    const shared = new SharedState(clock);
    const first = await proc(shared.view(), clock);
    control(first).disable(300_000);
    const until = clock.now() + 300_000;
    await first.stop();
    clock.advance(100_000);
    const second = await proc(shared.view(), clock);
    expect(control(second).status()).toMatchObject({ enabled: false, disabledUntil: until });
    expectAnswers(await second.handle(query('ads.example')), ['192.0.2.80']);
    clock.advance(200_000);
    expect(control(second).status().enabled).toBe(true);
    // A stored time already past (no TTL in this store's record): enabled as configured.
    shared.data.set(KEY, { value: clock.now() - 1 });
    await second.stop();
    const third = await proc(shared.view(), clock);
    await flush();
    expect(control(third).status().enabled).toBe(true);
    // Indefinitely.
    control(third).disable();
    await third.stop();
    const fourth = await proc(shared.view(), clock);
    await flush();
    expect(control(fourth).status()).toMatchObject({ enabled: false, disabledUntil: null });
  });

  it('a stored null or nothing keeps `enabled: false` from the options; a later enable elsewhere is followed; values of another shape are ignored', async () => {
    const clock = new FakeClock();
    const shared = new SharedState(clock);
    shared.data.set(KEY, { value: null });
    const off = await proc(shared.view(), clock, { enabled: false });
    await flush(); // the store's report of the stored value at subscription changes nothing
    expect(control(off).status().enabled).toBe(false);
    const other = shared.view();
    other.set(KEY, 'soon');
    expect(control(off).status().enabled).toBe(false);
    other.set(KEY, null);
    expect(control(off).status().enabled).toBe(true);
  });

  it('each instance has its own key; stop unsubscribes', async () => {
    const clock = new FakeClock();
    const shared = new SharedState(clock);
    const view = shared.view();
    const r = await proc(view, clock, { name: 'blocking-kids', path: 'plugins[1].options' }); // the key is the name's, not the config path's
    expect(view.subscribers).toBe(1);
    control(r).disable();
    expect(shared.writes).toEqual([{ key: 'blocking-kids.disabledUntil', value: 0 }]);
    await r.stop();
    resolvers.splice(resolvers.indexOf(r), 1);
    expect(view.subscribers).toBe(0);
  });

  it('without a STATE_STORE nothing changes: disable/enable are local', async () => {
    const clock = new FakeClock();
    const r = await proc(null, clock);
    control(r).disable(1000);
    expect(control(r).status().enabled).toBe(false);
    clock.advance(1000);
    expect(control(r).status().enabled).toBe(true);
  });

  it('a disable longer than one timer can wait (30 days, over 2^31 - 1 ms) does not end at once on the real clock', async () => {
    const r = await proc(null, systemClock);
    control(r).disable(30 * 86_400_000);
    // A window on purpose: an overflowing timer fires after 1 ms; this checks that nothing happens, so there is no event to wait for.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(control(r).status().enabled).toBe(false);
    control(r).enable();
  });
});
