/**
 * Typed per-query state, and the keys core defines for state that several
 * packages share (so plugins never import symbols from each other).
 */

/**
 * A typed key for per-query state (`ctx.get(key)`, `ctx.set(key, value)`).
 * Make one per piece of state, in the package that owns it; compared by
 * identity, so two keys with one description never collide.
 *
 * @example
 * export const GEO_COUNTRY = new StateKey<string>('geo.country');
 * ctx.set(GEO_COUNTRY, 'SE');
 */
export class StateKey<T> {
  declare readonly _type?: T;
  constructor(readonly description: string) {}
}

/** Why a query was blocked: set by a blocking plugin under {@link BLOCKED}, read by query logs and dashboards. */
export interface BlockedInfo {
  /** Client group whose policy blocked it. */
  readonly group: string;
  /** Name of the list (or rule source) that matched. */
  readonly list: string;
  /** How it matched: the list, a regex, or a CNAME in the answer. */
  readonly reason: 'list' | 'regex' | 'cname';
  /** The name that matched (the question, or a CNAME target). */
  readonly name: string;
  /**
   * The entry that matched, as listed: a domain (`ads.example.com` for
   * `x.ads.example.com`) or a regex (`/^ad[0-9]+\./`). Absent when the
   * blocking plugin could not tell (it is looked up only for blocked queries).
   */
  readonly rule?: string;
}

/** Set when a policy plugin blocked the query. */
export const BLOCKED = new StateKey<BlockedInfo>('heimdall.blocked');

/** How the cache answered: `hit`, `stale`, `miss` (set by a cache plugin). */
export const CACHE_RESULT = new StateKey<'hit' | 'stale' | 'miss'>('heimdall.cache');

/** Which upstream answered (set by an upstream plugin). */
export const UPSTREAM_USED = new StateKey<string>('heimdall.upstream');
