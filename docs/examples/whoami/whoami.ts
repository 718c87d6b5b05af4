/**
 * heimdall-plugin-whoami — answers every query it sees with the client's
 * address and port, like CoreDNS's `whoami`: an A (IPv4 client) or AAAA
 * (IPv6 client) record, and an SRV record `_<transport>.<qname>` whose port
 * is the client's source port.
 *
 * The address record goes in the answer section when the query asked for
 * that type, in the additional section otherwise (as CoreDNS does), so the
 * answer section never holds a type that was not asked for.
 *
 * This file is the full example of docs/plugin-authoring.md (options schema,
 * an injectable service with a metric, a provided token, start/stop); the
 * test next to it runs in the repository's suite.
 */
import {
  definePlugin,
  type Logger,
  options,
  PLUGIN_LOGGER,
  PLUGIN_METRICS,
  type PluginMetrics,
  RecordType,
  type ResourceRecordInit,
  type Static,
  Type,
} from '@heimdall/core';
import { ContainerModule, inject, injectable } from '@heimdall/core/di';

/** The options, declared once: type, validation, defaults, JSON Schema and docs. */
export const whoamiOptions = options({
  zone: Type.Optional(
    Type.String({ maxLength: 253, description: 'Answer only for names in this zone (and below); others go down the chain. Default: every name.' }),
  ),
  ttl: Type.Integer({ minimum: 0, maximum: 86_400, default: 0, description: 'TTL of the records (0: never cache "who am I").' }),
});
export type WhoamiOptions = Static<typeof whoamiOptions>;

/** Token under which the plugin provides its {@link WhoamiStats} to the resolver (for other plugins or an admin API). */
export const WHOAMI_STATS: unique symbol = Symbol.for('heimdall-plugin-whoami.stats');

/** The plugin's service, built by DI in the plugin's own scope: counts answers, exports a Prometheus counter. */
@injectable()
export class WhoamiStats {
  /** Answers given, by transport. */
  readonly answered = new Map<string, number>();
  private readonly counter;

  constructor(
    @inject(PLUGIN_METRICS) metrics: PluginMetrics,
    @inject(PLUGIN_LOGGER) private readonly logger: Logger,
  ) {
    this.counter = metrics.counter({ name: 'answers_total', help: 'whoami answers, by transport', labelNames: ['transport'] });
  }

  /** Records one answer. Cheap: a Map update and a prom-client increment. */
  count(transport: string): void {
    this.answered.set(transport, (this.answered.get(transport) ?? 0) + 1);
    this.counter.inc({ transport });
  }

  /** Logs a summary (called at stop). */
  report(): void {
    this.logger.info({ answered: Object.fromEntries(this.answered) }, 'whoami stats');
  }
}

function inZone(name: string, zone: string | undefined): boolean {
  if (zone === undefined || zone === '') return true;
  const n = name.toLowerCase();
  return n === zone || n.endsWith(`.${zone}`);
}

/**
 * The plugin factory (the package's default export): validates options
 * against {@link whoamiOptions} and throws `ConfigError` naming the bad field.
 *
 * @example
 * createResolver({ plugins: [whoami({ zone: 'whoami.test' }), upstream(...)], listen: [...] });
 */
export const whoami = definePlugin({
  name: 'whoami',
  description: "Answers with the client's address and port (like CoreDNS whoami).",
  options: whoamiOptions,
  setup: ({ ttl, zone: rawZone }) => {
    const zone = rawZone?.replace(/\.$/, '').toLowerCase();
    return {
      module: new ContainerModule(({ bind }) => {
        bind(WhoamiStats).toSelf();
      }),
      provides: [{ token: WHOAMI_STATS, use: WhoamiStats }],
      middleware(scope) {
        // Resolve services once, at build time; the middleware itself is synchronous.
        const stats = scope.get(WhoamiStats);
        return (ctx, next) => {
          const name = ctx.query.qname;
          if (!inZone(name, zone)) return next();
          const { address, port, family, transport } = ctx.client;
          const addressType = family === 6 ? RecordType.AAAA : RecordType.A;
          const addressRecord: ResourceRecordInit = { name, type: addressType, ttl, data: address };
          const srv: ResourceRecordInit = {
            name: `_${transport === 'tcp' ? 'tcp' : 'udp'}.${name}`,
            type: RecordType.SRV,
            ttl,
            data: { priority: 0, weight: 0, port, target: '' },
          };
          if (ctx.query.qtype === addressType) ctx.answer([addressRecord], { additionals: [srv] });
          else ctx.answer([], { additionals: [addressRecord, srv] });
          stats.count(transport);
        };
      },
      stop(scope) {
        scope.get(WhoamiStats).report();
      },
    };
  },
});

export default whoami;
