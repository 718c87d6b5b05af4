/**
 * Plain counters of one redis instance (incremented on the hot path,
 * copied into Prometheus at scrape time).
 */
import { injectable } from '@heimdall/core/di';

@injectable()
export class RedisStats {
  /** Reads that found an entry. */
  hits = 0;
  /** Reads that found none (key absent). */
  misses = 0;
  /** Reads not answered within `timeoutMs` (read as misses). */
  timeouts = 0;
  /** Reads and write batches that failed (connection lost, error reply). */
  errors = 0;
  /** Reads not sent because Redis is down or the breaker is open (read as misses at once). */
  skipped = 0;
  /** Entries sent to Redis (SET with PX). */
  writes = 0;
  /** Entries not written: buffer full, Redis down, breaker open, or their batch failed. */
  droppedWrites = 0;
  /** Times the breaker opened. */
  breakerOpened = 0;
  /** Connections the plugin closed and made again because reads kept timing out on an open one (`reason="timeouts"`). */
  forcedReconnectsTimeouts = 0;
  /** New connections the plugin closed and tried again because nothing came back to their handshake (`reason="handshake"`). */
  forcedReconnectsHandshake = 0;

  /** Both kinds of forced reconnects. */
  get forcedReconnects(): number {
    return this.forcedReconnectsTimeouts + this.forcedReconnectsHandshake;
  }
  /** Sync messages published (flushes, state changes). */
  syncSent = 0;
  /** Sync messages from other instances applied (pub/sub or replayed from the flush log). */
  syncReceived = 0;
  /** Keys deleted in Redis by flushes. */
  flushedKeys = 0;
}
