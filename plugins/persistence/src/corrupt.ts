/**
 * Values that fail their checksum (see layout.ts): counted once per value
 * (per process), logged at most once per {@link CORRUPT_LOG_INTERVAL_MS},
 * and removed by a write that re-checks them under the write lock.
 */
import { CLOCK, type Clock, type Logger, PLUGIN_LOGGER } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { PersistenceStats } from './stats.js';

/** The databases whose values carry a checksum (the `db` label of `corrupt_total`). */
export type ChecksummedDb = 'entries' | 'age' | 'state';

/** Shortest time (ms of the CLOCK) between two corruption warnings; the ones in between are counted in the next. */
export const CORRUPT_LOG_INTERVAL_MS = 10_000;

/** Counts, logs and tracks the removal of corrupt values of one plugin instance. */
@injectable()
export class CorruptValues {
  private readonly stats: PersistenceStats;
  private readonly logger: Logger;
  private readonly clock: Clock;
  /** Removals in flight, by `db:key`: a value found again before its removal committed is not counted twice. */
  private readonly removing = new Map<string, Promise<void>>();
  private lastLog = Number.NEGATIVE_INFINITY;
  private unlogged = 0;

  constructor(@inject(PersistenceStats) stats: PersistenceStats, @inject(PLUGIN_LOGGER) logger: Logger, @inject(CLOCK) clock: Clock) {
    this.stats = stats;
    this.logger = logger;
    this.clock = clock;
  }

  /**
   * A corrupt value was found (and is being removed by the caller's own
   * transaction): counts and logs it, unless its removal is already in
   * flight. `key`: printable (hex for binary keys).
   */
  found(db: ChecksummedDb, key: string): void {
    if (this.removing.has(`${db}:${key}`)) return;
    this.count(db, key);
  }

  /**
   * A corrupt value was found by a read: counts and logs it, and runs
   * `remove` (a write transaction that deletes the value only if it still
   * fails its checksum, so a fresh write that landed meanwhile is kept) —
   * once per value until that removal has committed.
   */
  remove(db: ChecksummedDb, key: string, remove: () => Promise<unknown>): void {
    const id = `${db}:${key}`;
    if (this.removing.has(id)) return;
    this.count(db, key);
    const done = Promise.resolve()
      .then(remove)
      .then(
        () => undefined,
        (err: unknown) =>
          this.logger.warn({ err, db, key }, 'plugin/persistence: could not remove a corrupt value (it is not served; removal is retried at its next read)'),
      );
    this.removing.set(id, done);
    void done.finally(() => this.removing.delete(id));
  }

  /** Resolves when every removal started so far has committed (or failed). */
  async settled(): Promise<void> {
    while (this.removing.size > 0) await Promise.all([...this.removing.values()]);
  }

  private count(db: ChecksummedDb, key: string): void {
    if (db === 'entries') this.stats.corruptEntries++;
    else if (db === 'age') this.stats.corruptAge++;
    else this.stats.corruptState++;
    const now = this.clock.now();
    if (now - this.lastLog < CORRUPT_LOG_INTERVAL_MS) {
      this.unlogged++;
      return;
    }
    this.lastLog = now;
    const more = this.unlogged;
    this.unlogged = 0;
    this.logger.warn(
      {
        db,
        key,
        moreSinceLastWarning: more,
        corrupt: { entries: this.stats.corruptEntries, age: this.stats.corruptAge, state: this.stats.corruptState },
      },
      `plugin/persistence: corrupt value in the ${db} database (checksum mismatch: changed on disk, or under another key); not used, removed`,
    );
  }
}
