/**
 * Plain counters of one persistence instance (incremented on the hot path,
 * copied into Prometheus at scrape time).
 */
import { injectable } from '@heimdall/core/di';

/** Counters and gauges of the disk tier and its maintenance. */
@injectable()
export class PersistenceStats {
  /** Tier reads that found a fresh entry. */
  hits = 0;
  /** Tier reads that found nothing (or an expired entry). */
  misses = 0;
  /** Tier reads that failed (counted as misses too). */
  readErrors = 0;
  /** Entries committed to disk. */
  writes = 0;
  /** Write batches committed. */
  batches = 0;
  /** Writes dropped: buffer full, store above 95 % of its cap, closed, or a key LMDB cannot hold. */
  droppedWrites = 0;
  /** Writes lost because their batch failed to commit. */
  writeErrors = 0;
  /** Entries evicted (oldest first) because the store was above 80 % of its cap. */
  evictions = 0;
  /** Expired entries removed by the sweep. */
  expiredRemoved = 0;
  /** Whether this instance holds the environment's maintenance lease (runs the expired-entry and state sweeps), as of its last tick. */
  maintenanceOwner = false;
  /** Times this instance became the maintenance owner (the lease was absent, released by a stopped owner, or expired). */
  maintenanceTakeovers = 0;
  /** Entries removed by flushes. */
  flushed = 0;
  /** Environments moved aside (corrupt, foreign or of another format version). */
  movedAside = 0;
  /** `entries` values that failed their checksum (not served; removed). */
  corruptEntries = 0;
  /** `age` index values that failed their checksum (removed; their entry removed unless rewritten since). */
  corruptAge = 0;
  /** `state` values that failed their checksum (read as absent; removed). */
  corruptState = 0;
  /** Entries on disk at the last maintenance tick or commit. */
  entries = 0;
  /** Bytes in use (pages of every tree) at the last maintenance tick or commit. */
  usedBytes = 0;
  /** Size of data.mdb (its high-water mark) at the last maintenance tick or commit. */
  fileBytes = 0;
}
