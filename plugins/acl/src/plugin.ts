/**
 * The `acl` plugin: allow, refuse or drop queries by client address,
 * transport and name (CoreDNS `acl` semantics: rules in order, the first
 * match decides, no match allows).
 *
 * Per query: the rules whose `from` contains the client are memoized per
 * address string (bounded), so a returning client costs one `Map.get`;
 * then the first of those rules whose transports and names match decides.
 * The qname is lowercased only when such a rule lists names.
 */
import { CLOCK, type Clock, type DnsContext, definePlugin, EdeCode, type Logger, type Middleware, PLUGIN_LOGGER, PLUGIN_METRICS } from '@heimdall/core';
import { ContainerModule, inject, injectable, type PluginMetrics } from '@heimdall/core/di';
import { LogThrottle } from '@heimdall/core/pipeline';
import { cidrContains, ipToBytes } from '@heimdall/core/wire';
import { ACTIONS, ALLOW, aclOptionsSchema, type CompiledRule, compileAcl, DROP } from './options.js';

/** DI token of the compiled rules in the plugin's scope. */
const ACL_RULES: unique symbol = Symbol('heimdall.acl.rules');
/** DI token: whether to log at start that the resolver is not open (the `localOnly` preset with `announce` on). */
const ACL_ANNOUNCE: unique symbol = Symbol('heimdall.acl.announce');

const MEMO_MAX = 16_384;
/** At most one line about refused or dropped queries per this interval. */
const LOG_INTERVAL_MS = 60_000;
const NONE: readonly number[] = Object.freeze([]);

/** Whether lowercase `qname` is `name` or below it (`name` '' is the root: every name). */
function under(qname: string, name: string): boolean {
  if (name === '' || qname === name) return true;
  const d = qname.length - name.length;
  return d > 0 && qname.charCodeAt(d - 1) === 0x2e && qname.endsWith(name);
}

/** Rules, counters and the middleware. */
@injectable()
export class AclService {
  readonly handle: Middleware;
  /** Queries by decision (allow, refuse, drop). */
  readonly counts = [0, 0, 0];
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #announce: boolean;
  readonly #logThrottle = new LogThrottle(LOG_INTERVAL_MS);

  constructor(
    @inject(ACL_RULES) rules: readonly CompiledRule[],
    @inject(ACL_ANNOUNCE) announce: boolean,
    @inject(PLUGIN_LOGGER) log: Logger,
    @inject(CLOCK) clock: Clock,
    @inject(PLUGIN_METRICS) metrics: PluginMetrics,
  ) {
    this.#log = log;
    this.#clock = clock;
    this.#announce = announce;
    const counts = this.counts;
    metrics.counter({
      name: 'queries_total',
      help: 'Queries by ACL decision (allow, refuse, drop)',
      labelNames: ['action'],
      collect() {
        this.reset();
        for (let i = 0; i < ACTIONS.length; i++) this.inc({ action: ACTIONS[i]! }, counts[i]!);
      },
    });

    const memo = new Map<string, readonly number[]>();
    /** Indexes of the rules whose `from` contains `address`. */
    const candidates = (address: string): readonly number[] => {
      const bytes = ipToBytes(address);
      const out: number[] = [];
      rules.forEach((r, i) => {
        if (r.from === null || (bytes !== null && r.from.some((c) => cidrContains(c, bytes)))) out.push(i);
      });
      return out.length === 0 ? NONE : out;
    };
    // The last client and its rules: queries come in runs from one client (a batch, a page load), and the
    // transports hand out the same address string for a known client, so this is an identity compare.
    // null until the first query: every string, '' included (a proxied client nobody named), is a real address.
    let lastAddress: string | null = null;
    let lastList: readonly number[] = NONE;
    const decide = (ctx: DnsContext): CompiledRule | undefined => {
      const address = ctx.client.address;
      let list: readonly number[] | undefined;
      if (address === lastAddress) list = lastList;
      else {
        list = memo.get(address);
        if (list === undefined) {
          list = candidates(address);
          if (memo.size >= MEMO_MAX) memo.clear();
          memo.set(address, list);
        }
        lastAddress = address;
        lastList = list;
      }
      let lower: string | undefined;
      for (let i = 0; i < list.length; i++) {
        const r = rules[list[i]!]!;
        if (r.transports !== null && !r.transports.has(ctx.client.transport)) continue;
        if (r.names !== null) {
          lower ??= ctx.query.qname.toLowerCase().replace(/\.$/, '');
          const q = lower;
          if (!r.names.some((n) => under(q, n))) continue;
        }
        return r;
      }
      return undefined;
    };
    this.handle = (ctx, next) => {
      const r = decide(ctx);
      if (r === undefined || r.action === ALLOW) {
        counts[ALLOW]++;
        return next();
      }
      counts[r.action]++;
      this.#note(ctx, r);
      if (r.action === DROP) ctx.drop();
      else ctx.refused({ code: EdeCode.PROHIBITED });
    };
  }

  /** One log line per interval about refused or dropped queries, with how many were not logged. */
  #note(ctx: DnsContext, r: CompiledRule): void {
    const notLogged = this.#logThrottle.take(this.#clock.now());
    if (notLogged < 0) return;
    this.#log.info(
      {
        client: ctx.client.address,
        transport: ctx.client.transport,
        question: ctx.query.qname,
        action: ACTIONS[r.action],
        rule: r.origin,
        othersNotLogged: notLogged,
      },
      r.origin === 'localOnly' ? 'refused a query from outside the local networks (not an open resolver)' : `ACL: ${ACTIONS[r.action]} a query`,
    );
  }

  /** Logs, once, that this resolver is not open (the `localOnly` preset). */
  start(): void {
    if (!this.#announce) return;
    this.#log.info(
      'not an open resolver: only clients on loopback and private networks (RFC 1918, 100.64/10, link-local, fc00::/7) are answered, others get REFUSED; set openResolver: true (--open-resolver) or configure the acl plugin to change this',
    );
  }
}

/**
 * Access control by client CIDR, transport and name: `rules` in order,
 * first match wins, `allow`, `refuse` (REFUSED + EDE 18) or `drop`; the
 * `localOnly` preset answers only loopback and private networks. Place it
 * first in the chain.
 */
export const acl = definePlugin({
  name: 'acl',
  // Decides for every query, core's own CHAOS/AXFR/ANY answers included (they come after it).
  role: 'admission',
  description: 'Allow, refuse (REFUSED + EDE 18) or drop queries by client CIDR, transport and name; first match wins (CoreDNS acl).',
  options: aclOptionsSchema,
  setup: (options, { path }) => {
    const rules = compileAcl(options, path);
    return {
      module: new ContainerModule(({ bind }) => {
        bind(ACL_RULES).toConstantValue(rules);
        bind(ACL_ANNOUNCE).toConstantValue(options.announce && options.preset === 'localOnly');
        bind(AclService).toSelf();
      }),
      middleware: (scope) => scope.get(AclService).handle,
      start: (scope) => scope.get(AclService).start(),
    };
  },
});

export default acl;
