/**
 * A child process for the multi-process tests: hosts one persistence
 * instance (options from argv[2]) and obeys JSON lines on stdin, answering
 * `{ id, ... }` on stdout. Not part of the build.
 */
import { createInterface } from 'node:readline';
import { CACHE_TIERS, type CacheTier, STATE_STORE, type StateStore } from '@heimdall/core';
import { systemClock } from '@heimdall/core/pipeline';
import { testResolver } from '@heimdall/testing';
import { Maintenance } from './maintenance.js';
import { persistence } from './plugin.js';
import { PersistenceStats } from './stats.js';
import type { DiskTier } from './tier.js';

const options = JSON.parse(process.argv[2] ?? '{}');
const resolver = testResolver([persistence(options)], { clock: systemClock });
await resolver.start();
const tier = resolver.container.getAll<CacheTier>(CACHE_TIERS)[0] as DiskTier;
const state = resolver.get<StateStore>(STATE_STORE);
const maintenance = resolver.scope('persistence').get(Maintenance);
const stats = resolver.scope('persistence').get(PersistenceStats);
const out = (m: unknown): void => void process.stdout.write(`${JSON.stringify(m)}\n`);

/** Same derivation as test-util's entryOf. */
function entryOf(key: Uint8Array, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (key[i % key.length] + i * 7) & 0xff;
  return b;
}

type Msg = { id?: number; op: string; [k: string]: unknown };
const handlers: Record<string, (m: Msg) => unknown> = {
  set: (m) => {
    tier.set(Buffer.from(m.key as string, 'hex'), Buffer.from(m.value as string, 'hex'), m.expiresAt as number);
    return {};
  },
  get: (m) => {
    const v = tier.get(Buffer.from(m.key as string, 'hex'));
    return { value: v === undefined ? null : Buffer.from(v).toString('hex') };
  },
  drain: async () => {
    await tier.drain();
    return {};
  },
  stateSet: (m) => {
    state.set(m.key as string, m.value, m.ttlMs === undefined ? undefined : { ttlMs: m.ttlMs as number });
    return {};
  },
  stateGet: (m) => ({ value: state.get(m.key as string) ?? null }),
  subscribe: (m) => {
    state.subscribe(m.key as string, (value) => out({ event: 'state', key: m.key, value: value ?? null }));
    return {};
  },
  // Writes batches of `perBatch` entries forever (until killed), reporting each committed batch.
  burst: async (m) => {
    const perBatch = m.perBatch as number;
    const size = m.size as number;
    for (let b = 0; ; b++) {
      const expiresAt = Date.now() + 3_600_000;
      for (let j = 0; j < perBatch; j++) {
        const key = Buffer.from(`b${b}-${j}`, 'latin1');
        tier.set(key, entryOf(key, size), expiresAt);
      }
      await tier.drain();
      out({ committed: b });
    }
  },
  // One maintenance tick now; answers whether this process owns maintenance.
  tick: async () => {
    await maintenance.tick();
    return { owner: stats.maintenanceOwner, takeovers: stats.maintenanceTakeovers, token: maintenance.token };
  },
  stop: async () => {
    await resolver.stop();
    return {};
  },
};

createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line) as Msg;
  Promise.resolve()
    .then(() => handlers[m.op]!(m))
    .then(
      (r) => out({ id: m.id, ...(r as object) }),
      (err: Error) => out({ id: m.id, error: err.message }),
    );
});
out({ ready: true, pid: process.pid });
