/**
 * The `persistence` plugin: one LMDB environment in `dir`, shared by every
 * worker of the host and surviving restarts, providing a disk tier below the
 * cache's L1 (`CACHE_TIERS`) and a small state store (`STATE_STORE`).
 */
import { CACHE_TIERS, definePlugin, PLUGIN_METRICS, STATE_STORE } from '@heimdall/core';
import { ContainerModule, inject, injectable, type PluginMetrics } from '@heimdall/core/di';
import { CorruptValues } from './corrupt.js';
import { PersistenceEnv } from './env.js';
import { Maintenance } from './maintenance.js';
import { persistenceOptionsSchema } from './options.js';
import { DiskStateStore } from './state.js';
import { PersistenceStats } from './stats.js';
import { DiskTier } from './tier.js';

/** The plugin's Prometheus metrics, read from {@link PersistenceStats} at scrape time. */
@injectable()
export class PersistenceMetrics {
  constructor(@inject(PLUGIN_METRICS) metrics: PluginMetrics, @inject(PersistenceStats) stats: PersistenceStats) {
    metrics.counterFields(stats, [
      ['hits_total', 'hits', 'Disk tier reads that found a fresh entry.'],
      ['misses_total', 'misses', 'Disk tier reads that found no fresh entry.'],
      ['read_errors_total', 'readErrors', 'Disk tier reads that failed (also counted as misses).'],
      ['writes_total', 'writes', 'Entries committed to disk.'],
      ['batches_total', 'batches', 'Write batches (LMDB transactions) committed.'],
      ['dropped_writes_total', 'droppedWrites', 'Entries not written: buffer full, store above 95 % of its cap, or closed.'],
      ['write_errors_total', 'writeErrors', 'Entries lost because their batch failed to commit.'],
      ['evictions_total', 'evictions', 'Entries evicted, oldest first, above 80 % of the cap.'],
      ['expired_removed_total', 'expiredRemoved', 'Expired entries removed by the sweep.'],
      ['flushed_total', 'flushed', 'Entries removed by cache flushes.'],
      ['moved_aside_total', 'movedAside', 'Unusable environments (corrupt, foreign, other format version) moved aside.'],
      ['maintenance_takeovers_total', 'maintenanceTakeovers', 'Times this process became the maintenance owner (lease absent, released or expired).'],
    ]);
    metrics.counter({
      name: 'corrupt_total',
      help: 'Values that failed their checksum (changed on disk, or under another key): not used, removed. db: entries, age or state.',
      labelNames: ['db'] as const,
      collect() {
        this.reset();
        this.labels('entries').inc(stats.corruptEntries);
        this.labels('age').inc(stats.corruptAge);
        this.labels('state').inc(stats.corruptState);
      },
    });
    metrics.gaugeOf('maintenance_owner', '1 when this process holds the maintenance lease (runs the expired-entry and state sweeps), else 0.', () =>
      stats.maintenanceOwner ? 1 : 0,
    );
    // One environment shared by every worker: its size is the same thing seen N times, not N things (max, not sum).
    metrics.gaugeOf('entries', 'Entries on disk (at the last maintenance tick or commit).', () => stats.entries, 'max');
    metrics.gaugeOf('used_bytes', 'Bytes in use in the environment (pages of every tree).', () => stats.usedBytes, 'max');
    metrics.gaugeOf('file_bytes', 'Size of data.mdb (its high-water mark).', () => stats.fileBytes, 'max');
  }
}

/**
 * The persistence plugin. Put it anywhere in the chain (it has no
 * middleware); the cache consults its tier after L1:
 * `plugins: [cache(), persistence({ dir: '/var/cache/heimdall' }), upstream({ servers: ['1.1.1.1'] })]`.
 */
export const persistence = definePlugin({
  name: 'persistence',
  description: 'A disk cache tier and state store on LMDB: shared by every worker of the host, survives restarts, bounded in size.',
  options: persistenceOptionsSchema,
  setup: () => ({
    module: new ContainerModule(({ bind }) => {
      bind(PersistenceStats).toSelf();
      bind(PersistenceEnv).toSelf();
      bind(CorruptValues).toSelf();
      bind(DiskTier).toSelf();
      bind(DiskStateStore).toSelf();
      bind(Maintenance).toSelf();
      bind(PersistenceMetrics).toSelf();
    }),
    provides: [
      { token: CACHE_TIERS, use: DiskTier },
      { token: STATE_STORE, use: DiskStateStore },
    ],
    start(scope) {
      scope.get(PersistenceMetrics);
      const env = scope.get(PersistenceEnv);
      env.open();
      scope.get(PersistenceStats).movedAside = env.movedAsideCount;
      scope.get(Maintenance).start();
      scope.get(DiskStateStore).start();
    },
    async stop(scope) {
      await scope.get(Maintenance).stop();
      await scope.get(DiskStateStore).stop();
      const tier = scope.get(DiskTier);
      await tier.drain();
      await scope.get(PersistenceEnv).close();
    },
  }),
});

export default persistence;
