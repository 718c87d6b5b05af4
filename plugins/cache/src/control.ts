/**
 * What the cache offers other packages through core's contracts:
 * `CACHE_CONTROL` (size and flush) and an `ADMIN_ACTIONS` group (`flush`,
 * `stats`). Flushes reach the tiers too.
 */
import { type AdminAction, type AdminActions, type CacheControl, type FlushScope, options, PLUGIN, type PluginInfo, Type } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { BadRequestError } from '@heimdall/core/errors';
import { CacheStore } from './store.js';
import { CacheTiers } from './tiers.js';

/** `CACHE_CONTROL`: the cache's size, and flushes of L1 and every tier. */
@injectable()
export class CacheControlService implements CacheControl {
  private readonly store: CacheStore;
  private readonly tiers: CacheTiers;

  constructor(@inject(CacheStore) store: CacheStore, @inject(CacheTiers) tiers: CacheTiers) {
    this.store = store;
    this.tiers = tiers;
  }

  /** Entries in memory (fresh and stale). */
  get size(): number {
    return this.store.size;
  }

  /**
   * Removes everything (`{ all: true }`), one name (all types, classes and
   * flag variants; case-insensitive) or a name and everything below it
   * (`{ suffix }`, label-aligned; a leading `*.` means the same). The scope
   * goes on to every tier. Returns how many entries left memory. A bad name
   * throws `BadRequestError` before anything is flushed.
   */
  flush(scope: FlushScope): number {
    let removed: number;
    if ('all' in scope && scope.all === true) removed = this.store.flush();
    else if ('name' in scope) removed = this.store.flushName(scope.name);
    else if ('suffix' in scope) removed = this.store.flushSuffix(scope.suffix);
    else throw new BadRequestError('flush scope must be { all: true }, { name } or { suffix }');
    this.tiers.flush(scope);
    return removed;
  }
}

const flushArgs = options({
  name: Type.Optional(Type.String({ minLength: 1, description: 'Flush this name (all types; case-insensitive).' })),
  suffix: Type.Optional(Type.String({ minLength: 1, description: 'Flush this name and every name below it (`example.com` or `*.example.com`).' })),
});

/** What the `stats` action returns (summed across workers). */
export interface CacheStatsResult {
  readonly entries: number;
  readonly bytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly negativeHits: number;
  readonly evictions: number;
  readonly expiredEvictions: number;
  readonly positiveStored: number;
  readonly nxdomainStored: number;
  readonly nodataStored: number;
  readonly servfailStored: number;
  readonly prefetches: number;
  readonly refreshFailures: number;
  readonly staleAnswers: number;
  readonly tierHits: number;
  readonly tierTimeouts: number;
  readonly tierErrors: number;
}

/** `ADMIN_ACTIONS`: `POST /<instance>/flush` and `GET /<instance>/stats`. */
@injectable()
export class CacheAdmin implements AdminActions {
  readonly plugin: string;
  readonly actions: readonly AdminAction[];

  constructor(@inject(PLUGIN) info: PluginInfo, @inject(CacheControlService) control: CacheControlService, @inject(CacheStore) store: CacheStore) {
    this.plugin = info.name;
    const flush: AdminAction<{ name?: string; suffix?: string }, { removed: number }> = {
      name: 'flush',
      method: 'POST',
      description: 'Removes cached answers: everything, one `name`, or a `suffix` and everything below it (tiers included).',
      args: flushArgs,
      combine: 'sum',
      run: ({ name, suffix }) => {
        if (name !== undefined && suffix !== undefined) throw new BadRequestError('give name or suffix, not both');
        const scope: FlushScope = name !== undefined ? { name } : suffix !== undefined ? { suffix } : { all: true };
        return { removed: control.flush(scope) };
      },
    };
    const stats: AdminAction<Record<string, never>, CacheStatsResult> = {
      name: 'stats',
      method: 'GET',
      description: 'Entries, bytes and the counters of the cache (hits, misses, stores, evictions, prefetches, stale answers, tiers).',
      args: options({}),
      combine: 'sum',
      run: () => ({ entries: store.size, bytes: store.bytes, ...store.stats }),
    };
    this.actions = Object.freeze([flush, stats]);
  }
}
