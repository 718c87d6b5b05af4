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
 * This file is the example of docs/plugin-authoring.md; the test next to it
 * runs in the repository's suite.
 */
import {
  type Container,
  ContainerModule,
  type HeimdallPlugin,
  inject,
  injectable,
  LOGGER,
  type Logger,
  METRICS,
  type Middleware,
  OptionsReader,
  RecordType,
  type Registry,
  type ResourceRecordInit,
} from '@heimdall/core';
import { Counter } from 'prom-client';

/** Options of {@link whoami}. */
export interface WhoamiOptions {
  /** Answer only for names in this zone (and below); others go down the chain. Default: every name. */
  zone?: string;
  /** TTL of the records. 0..86400, default 0 (never cache "who am I"). */
  ttl?: number;
}

/** DI token of the plugin's {@link WhoamiStats}, for other plugins or an admin API. */
export const WHOAMI_STATS: unique symbol = Symbol.for('heimdall-plugin-whoami.stats');

/** A service the plugin binds in the resolver's container: counts answers, exports a Prometheus counter. */
@injectable()
export class WhoamiStats {
  /** Answers given, by transport. */
  readonly answered = new Map<string, number>();
  private readonly counter: Counter<'transport'>;

  constructor(
    @inject(METRICS) registry: Registry,
    @inject(LOGGER) private readonly logger: Logger,
  ) {
    this.counter = new Counter({ name: 'heimdall_whoami_answers_total', help: 'whoami answers, by transport', labelNames: ['transport'], registers: [registry] });
  }

  /** Records one answer. Cheap: a Map update and a prom-client increment. */
  count(transport: string): void {
    this.answered.set(transport, (this.answered.get(transport) ?? 0) + 1);
    this.counter.inc({ transport });
  }

  /** Logs a summary (called at stop). */
  report(): void {
    this.logger.info({ plugin: 'whoami', answered: Object.fromEntries(this.answered) }, 'whoami stats');
  }
}

function checkOptions(options: unknown): { zone: string | undefined; ttl: number } {
  // OptionsReader throws ConfigError with the field path, and done() rejects unknown keys.
  const o = new OptionsReader('whoami', options);
  const zone = o.string('zone', { default: undefined, maxLength: 253 });
  const ttl = o.integer('ttl', { default: 0, min: 0, max: 86400 });
  o.done();
  return { zone: zone === undefined ? undefined : zone.replace(/\.$/, '').toLowerCase(), ttl };
}

function inZone(name: string, zone: string | undefined): boolean {
  if (zone === undefined || zone === '') return true;
  const n = name.toLowerCase();
  return n === zone || n.endsWith(`.${zone}`);
}

/**
 * The plugin factory (the package's default export): validates options,
 * returns the plugin. Throws `ConfigError` naming the bad field.
 *
 * @example
 * createResolver({ plugins: [whoami({ zone: 'whoami.test' }), upstream(...)], listen: [...] });
 */
export default function whoami(options: WhoamiOptions = {}): HeimdallPlugin {
  const { zone, ttl } = checkOptions(options);
  return {
    name: 'whoami',
    module: new ContainerModule(({ bind }) => {
      bind(WHOAMI_STATS).to(WhoamiStats).inSingletonScope();
    }),
    middleware(container: Container): Middleware {
      // Resolve services once, at build time; the middleware itself is synchronous.
      const stats = container.get<WhoamiStats>(WHOAMI_STATS);
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
    stop(container: Container): void {
      container.get<WhoamiStats>(WHOAMI_STATS).report();
    },
  };
}

/** Named export for loaders that prefer it (`loadPlugin` accepts a default or a named `plugin` export). */
export { whoami as plugin };
