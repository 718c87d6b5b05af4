/**
 * The `rrl` plugin: response rate limiting with BIND's semantics. It looks
 * at each response after `next()`: accounts it under (client prefix,
 * response class, name, type), and when the account is over its rate the
 * response is dropped, or every `slip`th one sent as an empty TC=1 answer.
 *
 * A plain answer (NOERROR with records) is keyed by hashing the question's
 * wire bytes, without decoding the response; other responses read their
 * authority section (SOA / NS owner) to find the zone they are accounted under.
 */
import {
  ADMIN_ACTIONS,
  CLOCK,
  type Clock,
  type DnsContext,
  definePlugin,
  type Logger,
  type Middleware,
  PLUGIN,
  PLUGIN_LOGGER,
  PLUGIN_METRICS,
  type PluginInfo,
} from '@heimdall/core';
import { ContainerModule, inject, injectable, type PluginMetrics } from '@heimdall/core/di';
import { Account, AccountTable, type Classified, classifyOther, KeyHasher } from './accounts.js';
import { CoarseClock, type LimiterActionsText, LogThrottle, limiterActions } from '@heimdall/core/pipeline';
import { ALL, ANSWER, CLASS_NAMES, compileRrl, type RrlConfig, rrlOptionsSchema } from './options.js';
import { ipv4Value, PrefixKeyer } from '@heimdall/core/wire';

const RRL_CONFIG: unique symbol = Symbol('heimdall.rrl.config');
const RRL_ADMIN: unique symbol = Symbol('heimdall.rrl.admin');
const SWEEP_MS = 10_000;
const LOG_INTERVAL_MS = 10_000;
const ACTIONS = ['dropped', 'slipped', 'logged'] as const;
const DROPPED = 0;
const SLIPPED = 1;
const LOGGED = 2;

/** An account over its limit, as the `limited` admin action lists it. */
export interface RrlLimited {
  readonly prefix: string;
  readonly class: (typeof CLASS_NAMES)[number];
  /** The name (zone for NXDOMAIN, delegation for referrals) it is accounted under; '' for errors and `all`. */
  readonly name: string;
  /** Query type for answers and NODATA without SOA, else 0. */
  readonly type: number;
  /** Epoch ms at which it went over its limit. */
  readonly since: number;
  /** Responses limited since then. */
  readonly limited: number;
}

/** Accounts, counters, logs, and the middleware built once. */
@injectable()
export class RrlService {
  readonly handle: Middleware;
  readonly table: AccountTable;
  readonly keyer: PrefixKeyer;
  readonly clock: CoarseClock;
  /** Limited responses by class × action (dropped, slipped, logged). */
  readonly counts: number[] = new Array(CLASS_NAMES.length * ACTIONS.length).fill(0);
  readonly #config: RrlConfig;
  readonly #log: Logger;
  readonly #logs = new LogThrottle(LOG_INTERVAL_MS);

  constructor(
    @inject(RRL_CONFIG) config: RrlConfig,
    @inject(CLOCK) clock: Clock,
    @inject(PLUGIN_LOGGER) log: Logger,
    @inject(PLUGIN_METRICS) metrics: PluginMetrics,
  ) {
    this.#config = config;
    this.#log = log;
    const rates = config.rates;
    const table = (this.table = new AccountTable(config.maxTableSize, config.window, rates));
    const keyer = (this.keyer = new PrefixKeyer(config.ipv4Prefix, config.ipv6Prefix, config.exempt));
    const coarse = (this.clock = new CoarseClock(clock));
    let nextSweep = coarse.now + SWEEP_MS;
    coarse.onTick = (now) => {
      if (now < nextSweep) return;
      nextSweep = now + SWEEP_MS;
      table.sweep(now);
    };
    const counts = this.counts;
    metrics.counter({
      name: 'limited_total',
      help: 'Responses over their rate, by response class and what was done (dropped, slipped: sent truncated, logged: log-only mode)',
      labelNames: ['class', 'action'],
      collect() {
        this.reset();
        for (let c = 0; c < CLASS_NAMES.length; c++) {
          for (let a = 0; a < ACTIONS.length; a++) {
            const n = counts[c * ACTIONS.length + a]!;
            if (n > 0) this.inc({ class: CLASS_NAMES[c]!, action: ACTIONS[a]! }, n);
          }
        }
      },
    });
    metrics.gaugeOf('accounts', 'Accounts (client prefix × response class) tracked', () => table.size);
    metrics.counterFields(table, [['evictions_total', 'evictions', 'Accounts forgotten because the table was full (maxTableSize)']]);

    const on: Record<string, boolean> = { udp: false, tcp: false, tls: false, https: false, internal: false };
    for (const t of config.transports) on[t] = true;
    const v4Exempt = config.exempt.some((c) => c.family === 4);
    const hasher = new KeyHasher();
    const other: Classified = { cls: 0, name: '', qtype: 0 };

    /** Debits `cls`'s account; creates it when new (`name` undefined: the question's). Returns the account when over its rate. */
    const debit = (
      ctx: DnsContext,
      key: number,
      rate: number,
      now: number,
      prefix: number | string,
      cls: number,
      name: string | undefined,
      qtype: number,
    ): Account | null => {
      const a = table.debit(key, rate, now);
      if (a !== undefined) return a;
      const created = new Account(prefix, cls, name ?? ctx.query.qname.toLowerCase(), qtype, rate * 1000 - 1000, now);
      table.add(key, created, now);
      return created.balance < 0 ? created : null;
    };

    const after = (ctx: DnsContext): void => {
      const res = ctx.response;
      if (res === null || res.length < 12) return;
      const client = ctx.client;
      if (on[client.transport] !== true) return;
      const address = client.address;
      let prefix: number | string;
      const v = ipv4Value(address);
      if (v >= 0) {
        if (v4Exempt && keyer.v4Exempt(v)) return;
        prefix = keyer.v4Key(v);
      } else {
        const o = keyer.other(address);
        if (o.key === null || o.exempt) return;
        prefix = o.key;
      }
      const now = coarse.read();
      const rcode = res[3]! & 0x0f;
      const q = ctx.query;
      let over: Account | null = null;
      if (rcode === 0 && ((res[6]! << 8) | res[7]!) > 0) {
        const rate = rates[ANSWER]!;
        if (rate > 0) {
          hasher.start(prefix, ANSWER).wireName(ctx.request, 12, q.questionEnd - 4);
          over = debit(ctx, hasher.key(q.qtype), rate, now, prefix, ANSWER, undefined, q.qtype);
        }
      } else {
        const c = classifyOther(res, rcode, q.qname.toLowerCase(), q.qtype, other);
        const rate = rates[c.cls]!;
        if (rate > 0) {
          hasher.start(prefix, c.cls).text(c.name);
          over = debit(ctx, hasher.key(c.qtype), rate, now, prefix, c.cls, c.name, c.qtype);
        }
      }
      const allRate = rates[ALL]!;
      if (allRate > 0) {
        const all = debit(ctx, hasher.start(prefix, ALL).key(0), allRate, now, prefix, ALL, '', 0);
        over ??= all;
      }
      if (over !== null) this.#over(ctx, over, now, rcode);
    };

    this.handle = (ctx, next) => {
      const r = next();
      if (r === undefined) return after(ctx);
      return r.then(() => after(ctx));
    };
  }

  /** A response over its account's rate: dropped, slipped (TC=1) or, in log-only mode, only counted. */
  #over(ctx: DnsContext, a: Account, now: number, rcode: number): void {
    const c = this.#config;
    if (a.since < 0) {
      a.since = now;
      const notLogged = this.#logs.take(now);
      if (notLogged >= 0) {
        this.#log.warn(
          {
            prefix: this.keyer.text(a.prefix),
            class: CLASS_NAMES[a.cls],
            name: a.name,
            type: a.qtype,
            rate: c.rates[a.cls],
            logOnly: c.logOnly,
            otherAccountsNotLogged: notLogged,
          },
          c.logOnly ? 'would limit responses (log-only)' : 'limiting responses',
        );
      }
    }
    a.limited++;
    let action: number;
    if (c.logOnly) action = LOGGED;
    else if (c.slip > 0 && a.limited % c.slip === 0) {
      action = SLIPPED;
      ctx.truncated(rcode);
    } else {
      action = DROPPED;
      ctx.drop();
    }
    this.counts[a.cls * ACTIONS.length + action]++;
  }

  /** Accounts over their rate now, most limited first. */
  limited(max: number): RrlLimited[] {
    const out: RrlLimited[] = [];
    for (const a of this.table.limited(this.clock.read())) {
      out.push({ prefix: this.keyer.text(a.prefix), class: CLASS_NAMES[a.cls]!, name: a.name, type: a.qtype, since: a.since, limited: a.limited });
    }
    out.sort((x, y) => y.limited - x.limited || (x.prefix < y.prefix ? -1 : x.prefix > y.prefix ? 1 : 0));
    return out.slice(0, max);
  }

  /** Counters by class and action, and the table size. */
  stats(): Record<string, number> {
    const out: Record<string, number> = { accounts: this.table.size, evictions: this.table.evictions };
    for (let cl = 0; cl < CLASS_NAMES.length; cl++)
      for (let a = 0; a < ACTIONS.length; a++) out[`${CLASS_NAMES[cl]}_${ACTIONS[a]}`] = this.counts[cl * ACTIONS.length + a]!;
    return out;
  }

  stop(): void {
    this.clock.stop();
    this.table.clear();
  }
}

/** Text of the `limited`, `stats` and `reset` admin actions (core's `limiterActions`). */
const RRL_ACTIONS: LimiterActionsText = Object.freeze({
  what: 'accounts',
  limited: 'Accounts over their rate now: client prefix, response class, name, type, since (epoch ms), responses limited (each worker its own list).',
  stats: 'Accounts tracked, evictions, limited responses by class and action.',
  reset: 'Forgets every account.',
});

/**
 * Response rate limiting (BIND's RRL): responses per second per client
 * prefix and response class, `window`, `slip`, separate NXDOMAIN, NODATA,
 * referral and error rates, `allPerSecond`, `exemptClients`, `logOnly`.
 * For authoritative-style answers and amplification defence; place it
 * before the plugins that answer (it limits what comes back through it).
 */
export const rrl = definePlugin({
  name: 'rrl',
  // Decides for every query, core's own CHAOS/AXFR/ANY answers included (they come after it).
  role: 'admission',
  description: 'Response rate limiting (BIND RRL): responses per second per client prefix and response class, window, slip, log-only.',
  options: rrlOptionsSchema,
  setup: (options, { path }) => {
    const config = compileRrl(options, path);
    return {
      module: new ContainerModule(({ bind }) => {
        bind(RRL_CONFIG).toConstantValue(config);
        bind(RrlService).toSelf();
        bind(RRL_ADMIN).toDynamicValue(({ get }) => limiterActions(get<PluginInfo>(PLUGIN).name, get(RrlService), RRL_ACTIONS));
      }),
      provides: [{ token: ADMIN_ACTIONS, use: RRL_ADMIN }],
      middleware: (scope) => scope.get(RrlService).handle,
      stop: (scope) => scope.get(RrlService).stop(),
    };
  },
});

export default rrl;
