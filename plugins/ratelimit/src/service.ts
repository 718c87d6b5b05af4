/**
 * The ratelimit service (the bucket table, its clock, counters, logs) and
 * the middleware built from it once.
 *
 * Hot path of a query that is not limited: a transport check, the client
 * address read into a number (IPv4) or one memoized `Map.get` (IPv6), the
 * exemption check, one `Map.get` and a few integer operations on the
 * bucket, then `next()` — no allocation, no clock call. A client with no
 * known address (empty: a trusted proxy named none) is limited too, all
 * such queries in one bucket keyed {@link UNKNOWN_CLIENT}.
 */
import { CLOCK, type Clock, type Logger, type Middleware, PLUGIN_LOGGER, PLUGIN_METRICS } from '@heimdall/core';
import { inject, injectable, type PluginMetrics } from '@heimdall/core/di';
import { CoarseClock, type LimiterActionsText, LogThrottle } from '@heimdall/core/pipeline';
import type { RatelimitConfig } from './options.js';
import { ipv4Value, PrefixKeyer } from '@heimdall/core/wire';
import { type Bucket, BucketTable, LIMITED_HOLD_MS, type LimitedPrefix } from './table.js';

/** DI token of the compiled options in the plugin's scope. */
export const RATELIMIT_CONFIG: unique symbol = Symbol('heimdall.ratelimit.config');
/** DI token of the admin actions in the plugin's scope. */
export const RATELIMIT_ADMIN: unique symbol = Symbol('heimdall.ratelimit.admin');

/**
 * The one bucket of every query whose client address is not an IP address:
 * core leaves the address empty when a trusted DoH proxy names no client
 * (no `Forwarded`/`X-Forwarded-For`, `for=_hidden`, `unknown`). Also its
 * text in the `limited` action and the logs (IPv6 keys hold a `:`, IPv4
 * keys are numbers: no prefix shares it).
 */
export const UNKNOWN_CLIENT = 'unknown';

/** Interval of the sweep that forgets idle prefixes. */
const SWEEP_MS = 10_000;
/** At most one "limiting" log line per this interval. */
const LOG_INTERVAL_MS = 10_000;

/** The plugin's state: buckets, coarse clock, counters. */
@injectable()
export class RatelimitService {
  readonly config: RatelimitConfig;
  readonly table: BucketTable;
  readonly keyer: PrefixKeyer;
  readonly clock: CoarseClock;
  /** Queries over the limit answered with TC=1 / dropped. */
  truncated = 0;
  dropped = 0;
  /** Limited episodes started (a prefix going over its limit after being under it). */
  episodes = 0;
  readonly #log: Logger;
  readonly #logs = new LogThrottle(LOG_INTERVAL_MS);
  #nextSweep = 0;

  constructor(
    @inject(RATELIMIT_CONFIG) config: RatelimitConfig,
    @inject(CLOCK) clock: Clock,
    @inject(PLUGIN_LOGGER) log: Logger,
    @inject(PLUGIN_METRICS) metrics: PluginMetrics,
  ) {
    this.config = config;
    this.table = new BucketTable(config.perMs, config.capacity, config.maxTracked);
    this.keyer = new PrefixKeyer(config.ipv4Prefix, config.ipv6Prefix, config.allow);
    this.clock = new CoarseClock(clock);
    this.#log = log;
    this.#nextSweep = this.clock.now + SWEEP_MS;
    this.clock.onTick = (now) => {
      if (now < this.#nextSweep) return;
      this.#nextSweep = now + SWEEP_MS;
      this.table.sweep(now);
    };
    const self = this;
    metrics.counter({
      name: 'limited_total',
      help: "Queries over their prefix's limit, by what they got (truncated: TC=1, dropped: nothing)",
      labelNames: ['action'],
      collect() {
        this.reset();
        this.inc({ action: 'truncated' }, self.truncated);
        this.inc({ action: 'dropped' }, self.dropped);
      },
    });
    metrics.counterFields<RatelimitService>(this, [['episodes_total', 'episodes', 'Times a client prefix went over its limit']]);
    metrics.counterFields(this.table, [['evictions_total', 'evictions', 'Prefixes forgotten because the table was full (maxTracked)']]);
    metrics.gaugeOf('tracked_prefixes', 'Client prefixes in the table', () => this.table.size);
    metrics.gaugeOf('limited_prefixes', 'Client prefixes over their limit in the last second', () => {
      let n = 0;
      for (const _ of this.table.limited(this.clock.read())) n++;
      return n;
    });
  }

  /**
   * Accounts a query over the limit of `key`'s bucket `b` at `now` (`truncated`:
   * it gets TC=1, else nothing); logs a new episode (rate-limited).
   */
  over(key: number | string, b: Bucket, now: number, truncated: boolean): void {
    if (b.since < 0 || now - b.limitedAt >= LIMITED_HOLD_MS) {
      b.since = now;
      b.excess = 0;
      this.episodes++;
      const suppressed = this.#logs.take(now);
      if (suppressed >= 0) {
        const c = this.config;
        this.#log.warn(
          { prefix: this.keyer.text(key), rate: c.rate, burst: c.burst, action: truncated ? 'truncate' : 'drop', otherPrefixesNotLogged: suppressed },
          'client prefix over its query rate limit',
        );
      }
    }
    b.limitedAt = now;
    b.excess++;
    if (truncated) this.truncated++;
    else this.dropped++;
  }

  /** The `stats` admin action. */
  stats(): Record<string, number> {
    return {
      tracked: this.table.size,
      limited: this.limited(Number.MAX_SAFE_INTEGER).length,
      truncated: this.truncated,
      dropped: this.dropped,
      episodes: this.episodes,
      evictions: this.table.evictions,
    };
  }

  /** Prefixes over their limit in the last second, most excess first. */
  limited(max: number): LimitedPrefix[] {
    const out: LimitedPrefix[] = [];
    for (const [key, b] of this.table.limited(this.clock.read())) out.push({ prefix: this.keyer.text(key), since: b.since, excess: b.excess });
    out.sort((a, b) => b.excess - a.excess || (a.prefix < b.prefix ? -1 : 1));
    return out.slice(0, max);
  }

  stop(): void {
    this.clock.stop();
    this.table.clear();
  }
}

/** Builds the middleware once; {@link handle} is what the chain runs. */
@injectable()
export class RatelimitMiddleware {
  readonly handle: Middleware;

  constructor(@inject(RatelimitService) service: RatelimitService) {
    const { table, keyer, clock, config } = service;
    const on: Record<string, boolean> = { udp: false, tcp: false, tls: false, https: false, internal: false };
    for (const t of config.transports) on[t] = true;
    const v4Allow = config.allow.some((c) => c.family === 4);
    // TC=1 only means something on UDP: over TCP, DoT and DoH an excess query is dropped.
    const truncate = config.truncate;
    this.handle = (ctx, next) => {
      const client = ctx.client;
      if (on[client.transport] !== true) return next();
      const address = client.address;
      let key: number | string;
      const v = ipv4Value(address);
      if (v >= 0) {
        if (v4Allow && keyer.v4Exempt(v)) return next();
        key = keyer.v4Key(v);
      } else {
        const o = keyer.other(address);
        if (o.exempt) return next();
        // No address (a trusted proxy that named no client): every such query shares one bucket, never a free pass.
        key = o.key ?? UNKNOWN_CLIENT;
      }
      const now = clock.read();
      const b = table.take(key, now);
      if (b === null) return next();
      if (truncate && client.transport === 'udp') {
        service.over(key, b, now, true);
        ctx.truncated();
      } else {
        service.over(key, b, now, false);
        ctx.drop();
      }
    };
  }
}

/** Text of the `limited`, `stats` and `reset` admin actions (core's `limiterActions`). */
export const RATELIMIT_ACTIONS: LimiterActionsText = Object.freeze({
  what: 'prefixes',
  limited:
    "Client prefixes over their limit in the last second: prefix, since (epoch ms), excess queries (each worker its own list). Clients with no known address (a trusted DoH proxy that names none) share one bucket, listed as prefix 'unknown'.",
  stats: 'Tracked and limited prefixes, queries truncated and dropped, episodes, evictions.',
  reset: 'Forgets every bucket: every prefix starts again with a full burst.',
});
