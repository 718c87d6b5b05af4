/**
 * `createResolver`: assembles plugins, a DI container, the middleware chain
 * and transports into a running DNS server.
 */
import { Buffer } from 'node:buffer';
import { Container } from 'inversify';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { ConfigError, NotAvailableError, ResolverStateError } from './errors.js';
import { MessageReader, Rcode, RecordClass, RecordType } from './packet/index.js';
import { bareResponse } from './pipeline/bare.js';
import { type ComposedMiddleware, compose, errorOrigin, type NamedMiddleware } from './pipeline/compose.js';
import { type ContextEnv, DnsContext } from './pipeline/context.js';
import { CoreMetrics } from './pipeline/metrics.js';
import type { ClientInfo, Middleware } from './pipeline/types.js';
import { ResolverLifecycle } from './plugin/lifecycle.js';
import { type HeimdallPlugin, isHeimdallPlugin } from './plugin/types.js';
import { metricsPrefix, PluginMetrics } from './plugin/metrics.js';
import { options, parseOptions, Type } from './plugin/options.js';
import {
  CLOCK,
  type Clock,
  LIFECYCLE,
  LOGGER,
  METRICS,
  MULTI_TOKENS,
  PLUGIN,
  PLUGIN_LOGGER,
  PLUGIN_METRICS,
  PLUGIN_OPTIONS,
  type PluginInfo,
} from './tokens.js';
import { createTransport } from './transport/index.js';
import type { BoundAddress, ListenOptions, QueryHandler, TransportServer } from './transport/types.js';
import { systemClock } from './util/clock.js';
import { type Deadline, Deadlines } from './util/deadlines.js';
import { createLogger } from './util/logger.js';

/** DI token of the resolver's {@link CoreMetrics} (plain counters behind core's Prometheus metrics). */
export const CORE_METRICS: unique symbol = Symbol.for('heimdall.coreMetrics');
/** DI token of the {@link Resolver} itself (for plugins that need `handle` for internal queries). */
export const RESOLVER: unique symbol = Symbol.for('heimdall.resolver');

/** Options of {@link createResolver}. Every bound has a default and is checked. */
export interface ResolverOptions {
  /** The chain, in order. Names must be unique. */
  readonly plugins: readonly HeimdallPlugin[];
  /** Sockets to serve on. Empty (the default) for an embedded resolver used through `handle()`. */
  readonly listen?: readonly ListenOptions[];
  /** pino logger. Default: pino at `info` (`silent` under vitest, or `HEIMDALL_LOG_LEVEL`). */
  readonly logger?: Logger;
  /** Time source. Default: the system clock. */
  readonly clock?: Clock;
  /** prom-client registry for this resolver's metrics. Default: a new one. */
  readonly metrics?: Registry;
  /** Per-query deadline (from arrival; fixed when the chain first goes asynchronous). After it the client gets SERVFAIL. 1..120 000, default 5000 ms. */
  readonly queryTimeoutMs?: number;
  /** What to answer when the chain returned without a response. Default `'servfail'`. */
  readonly onUnanswered?: 'servfail' | 'refused';
  /** Bound on waiting for in-flight queries at `stop()`. 0..600 000, default 5000 ms. */
  readonly drainTimeoutMs?: number;
  /** UDP payload size advertised in our OPT records. 512..65535, default 1232. */
  readonly ednsPayloadSize?: number;
  /** RA bit of responses built by the answering helpers. Default true. */
  readonly recursionAvailable?: boolean;
  /** CHAOS-class identity answers (`version.bind`, `hostname.bind`, `id.server`); unset names get REFUSED. Never forwarded. */
  readonly chaos?: { readonly 'version.bind'?: string; readonly 'hostname.bind'?: string; readonly 'id.server'?: string };
  /** QTYPE=ANY handling. Default `'rfc8482'` (a minimal HINFO answer). */
  readonly anyQueries?: 'rfc8482' | 'refused' | 'forward';
  /** Bind extra services before plugins' modules load (embedders' own services, test doubles). */
  readonly configure?: (container: Container) => void;
}

/** A resolver built by {@link createResolver}. */
export interface Resolver extends QueryHandler {
  /** The resolver's DI container (core services + every plugin's bindings). */
  readonly container: Container;
  /** Starts plugins in chain order, then lifecycle hooks, then binds every listener. */
  start(): Promise<void>;
  /**
   * Graceful stop: stop accepting, wait for in-flight queries (at most
   * `drainTimeoutMs`, then abort them), close sockets, run lifecycle stop
   * hooks and plugins' `stop` in reverse order. Idempotent.
   */
  stop(): Promise<void>;
  /** Runs one query through the chain (transport `internal` unless `client` says otherwise). Resolves to the response bytes, or null when the packet is dropped. */
  handle(request: Buffer, client?: Partial<ClientInfo>): Promise<Buffer | null>;
  /**
   * Like `handle`, but returns the response synchronously when the chain
   * completed synchronously (the path transports use). Never throws.
   */
  process(request: Buffer, client: ClientInfo): Buffer | null | Promise<Buffer | null>;
  /** Addresses actually bound (port 0 resolved). Empty before `start()`. */
  addresses(): BoundAddress[];
  /** Names of the plugins whose middleware is in the chain, in order. */
  readonly chain: readonly string[];
  /** A plugin's scope (its child container) by instance name. Throws `NotAvailableError` for an unknown name. */
  scope(name: string): Container;
  /** The middleware a plugin contributed (built once, at construction), or undefined when it has none. */
  middleware(name: string): Middleware | undefined;
  /**
   * Re-reads the certificate files of this resolver's DoT/DoH listeners (the
   * app does it on SIGHUP; they also reload when the files change). Open
   * connections keep theirs. Resolves to the number reloaded; rejects with
   * the first failure (a failed listener keeps its pair).
   */
  reloadCertificates(): Promise<number>;
}

const QTYPE_IXFR = 251;
const QTYPE_AXFR = 252;
const QTYPE_ANY = 255;

const DEFAULT_CLIENT: ClientInfo = Object.freeze({ address: '127.0.0.1', port: 0, family: 4, transport: 'internal' });

/**
 * Schema of the resolver's scalar settings (the rest of {@link ResolverOptions}
 * is objects and functions). The app's config schema includes it.
 */
export const resolverSettingsSchema = options({
  queryTimeoutMs: Type.Integer({
    minimum: 1,
    maximum: 120_000,
    default: 5000,
    description: 'Per-query deadline (ms from arrival); after it the client gets SERVFAIL.',
  }),
  drainTimeoutMs: Type.Integer({ minimum: 0, maximum: 600_000, default: 5000, description: 'Bound on waiting for in-flight queries at stop (ms).' }),
  ednsPayloadSize: Type.Integer({
    minimum: 512,
    maximum: 65_535,
    default: 1232,
    description: 'UDP payload size advertised in our OPT records (RFC 6891 §6.2.3).',
  }),
  recursionAvailable: Type.Boolean({ default: true, description: 'RA bit of the responses we build.' }),
  onUnanswered: Type.Union([Type.Literal('servfail'), Type.Literal('refused')], {
    default: 'servfail',
    description: 'What to answer when the chain returned without a response.',
  }),
  chaos: options(
    {
      'version.bind': Type.Optional(Type.String({ maxLength: 255, description: 'TXT answer to `version.bind CH TXT`.' })),
      'hostname.bind': Type.Optional(Type.String({ maxLength: 255, description: 'TXT answer to `hostname.bind CH TXT`.' })),
      'id.server': Type.Optional(Type.String({ maxLength: 255, description: 'TXT answer to `id.server CH TXT` (RFC 4892).' })),
    },
    {
      default: {},
      description:
        'Answers to CHAOS-class identity queries. They are always answered locally, never forwarded; a name not set here gets REFUSED (the default for all).',
    },
  ),
  anyQueries: Type.Union([Type.Literal('rfc8482'), Type.Literal('refused'), Type.Literal('forward')], {
    default: 'rfc8482',
    description: "QTYPE=ANY: 'rfc8482' answers a synthesized HINFO \"RFC8482\" (RFC 8482 §4.2), 'refused' answers REFUSED, 'forward' passes it to the chain.",
  }),
});

/**
 * Assembles a resolver: one inversify container with core's services
 * (`LOGGER`, `CLOCK`, `METRICS`, `LIFECYCLE`, `CORE_METRICS`, `RESOLVER`),
 * every plugin's module, and the chain of their middleware in list order.
 * Throws `ConfigError` on bad options, synchronously, before anything runs.
 *
 * @example
 * const resolver = createResolver({
 *   plugins: [whoami()],
 *   listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }],
 * });
 * await resolver.start();
 * console.log(resolver.addresses());
 */
export function createResolver(options: ResolverOptions): Resolver {
  return new HeimdallResolver(options);
}

type State = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

class HeimdallResolver implements Resolver {
  readonly container: Container;
  readonly chain: readonly string[];
  private readonly plugins: readonly HeimdallPlugin[];
  private readonly listenOptions: readonly ListenOptions[];
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly env: ContextEnv;
  private readonly metrics: CoreMetrics;
  private readonly lifecycle = new ResolverLifecycle();
  private readonly run: ComposedMiddleware;
  private readonly unanswered: number;
  private readonly drainTimeoutMs: number;
  private readonly inFlight = new Map<DnsContext, (reason?: unknown) => void>();
  /** The deadlines of the asynchronous queries in flight, on one timer (created with the clock). */
  private deadlines!: Deadlines;
  private drained: (() => void) | null = null;
  private readonly transports: TransportServer[];
  private listening: TransportServer[] = [];
  private started: HeimdallPlugin[] = [];
  private state: State = 'created';
  private stopping: Promise<void> | null = null;
  private starting: Promise<void> | null = null;
  private tornDown = false;
  private readonly scopes = new Map<string, Container>();
  private readonly chaos: ReadonlyMap<string, string>;
  /** Whether core's local answers run as a step of the chain (after observers and admission plugins) rather than before it. */
  private localInChain = false;
  private readonly anyQueries: 'rfc8482' | 'refused' | 'forward';
  private readonly built = new Map<string, Middleware>();

  constructor(options: ResolverOptions) {
    if (typeof options !== 'object' || options === null) throw new ConfigError('', 'resolver options must be an object');
    if (!Array.isArray(options.plugins)) throw new ConfigError('plugins', 'must be an array of plugins', options.plugins);
    const names = new Set<string>();
    options.plugins.forEach((p, i) => {
      if (!isHeimdallPlugin(p)) throw new ConfigError(`plugins[${i}]`, 'is not a plugin (needs a name and optional module/middleware/start/stop)', p);
      if (names.has(p.name)) throw new ConfigError(`plugins[${i}].name`, `duplicate plugin name '${p.name}'`, p.name);
      names.add(p.name);
    });
    const settings = parseOptions(
      resolverSettingsSchema,
      {
        queryTimeoutMs: options.queryTimeoutMs,
        drainTimeoutMs: options.drainTimeoutMs,
        ednsPayloadSize: options.ednsPayloadSize,
        recursionAvailable: options.recursionAvailable,
        onUnanswered: options.onUnanswered,
        chaos: options.chaos,
        anyQueries: options.anyQueries,
      },
      '',
    );
    const { queryTimeoutMs, ednsPayloadSize } = settings;
    this.drainTimeoutMs = settings.drainTimeoutMs;
    this.unanswered = settings.onUnanswered === 'refused' ? Rcode.REFUSED : Rcode.SERVFAIL;
    this.chaos = new Map(Object.entries(settings.chaos).filter((e): e is [string, string] => typeof e[1] === 'string'));
    this.anyQueries = settings.anyQueries;
    const listen = options.listen ?? [];
    if (!Array.isArray(listen)) throw new ConfigError('listen', 'must be an array', listen);
    this.listenOptions = listen;

    this.plugins = options.plugins;
    this.logger = options.logger ?? createLogger();
    this.clock = options.clock ?? systemClock;
    this.deadlines = new Deadlines(this.clock, Number.POSITIVE_INFINITY);
    this.metrics = new CoreMetrics();
    const registry = options.metrics ?? new Registry();
    this.metrics.register(registry);
    this.env = {
      logger: this.logger,
      clock: this.clock,
      ednsPayloadSize,
      recursionAvailable: settings.recursionAvailable,
      queryTimeoutMs,
    };

    const container = new Container({ defaultScope: 'Singleton' });
    container.bind(LOGGER).toConstantValue(this.logger);
    container.bind(CLOCK).toConstantValue(this.clock);
    container.bind(METRICS).toConstantValue(registry);
    container.bind(LIFECYCLE).toConstantValue(this.lifecycle);
    container.bind(CORE_METRICS).toConstantValue(this.metrics);
    container.bind(RESOLVER).toConstantValue(this);
    options.configure?.(container);
    this.container = container;

    // Each plugin gets its own scope (a child container) with its name,
    // options, logger and metrics; what it provides is bound in the
    // resolver's container for everyone else.
    // A single token offered by several plugins: the highest priority wins, then the first in chain order.
    const provided = new Map<symbol, { plugin: string; priority: number; bind: () => void }>();
    this.plugins.forEach((p, i) => {
      const scope = new Container({ parent: container, defaultScope: 'Singleton' });
      const info: PluginInfo = Object.freeze({ name: p.name, kind: p.kind ?? p.name, metricsPrefix: p.metricsPrefix ?? metricsPrefix(p.name) });
      scope.bind(PLUGIN).toConstantValue(info);
      scope.bind(PLUGIN_OPTIONS).toConstantValue(p.options ?? {});
      scope.bind(PLUGIN_LOGGER).toConstantValue(this.logger.child({ plugin: p.name }));
      scope.bind(PLUGIN_METRICS).toConstantValue(new PluginMetrics(registry, info.metricsPrefix));
      if (p.module !== undefined) {
        try {
          scope.loadSync(p.module);
        } catch (e) {
          throw new ConfigError(`plugins[${i}] (${p.name})`, `module failed to load: ${(e as Error)?.message ?? e}`, e);
        }
      }
      for (const [j, prov] of (p.provides ?? []).entries()) {
        if (typeof prov?.token !== 'symbol') throw new ConfigError(`plugins[${i}] (${p.name}).provides[${j}]`, 'token must be a symbol', prov?.token);
        const multi = prov.multi === true || MULTI_TOKENS.has(prov.token);
        const bind = () =>
          void container
            .bind(prov.token)
            .toDynamicValue(() => scope.get(prov.use))
            .inSingletonScope();
        if (multi) {
          bind();
          continue;
        }
        const priority = prov.priority ?? 0;
        const current = provided.get(prov.token);
        if (current === undefined || priority > current.priority) {
          if (current !== undefined)
            this.logger.info({ token: prov.token.description, plugin: p.name, over: current.plugin }, 'service provided by a plugin of higher priority');
          provided.set(prov.token, { plugin: p.name, priority, bind });
        } else {
          this.logger.info(
            { token: prov.token.description, plugin: p.name, provider: current.plugin },
            'service provided by another plugin; this one is not used for it',
          );
        }
      }
      this.scopes.set(p.name, scope);
    });
    for (const { bind } of provided.values()) bind();

    // Build all middleware after all plugins are loaded, exactly once: a
    // plugin may use a service provided by a plugin listed after it.
    const steps: NamedMiddleware[] = [];
    const chainNames: string[] = [];
    // Core's local answers (CHAOS, AXFR/IXFR, ANY) come after the chain's leading observer and
    // admission plugins (metrics, logs, access control, rate limits), so that those count and decide
    // for every query; when the first plugin is neither, they are answered before the chain, inline.
    let leading = true;
    const local: NamedMiddleware = { name: 'core', middleware: (ctx, next) => (this.answerLocally(ctx) ? undefined : next()) };
    for (const p of this.plugins) {
      const mw = p.middleware?.(this.scopes.get(p.name)!);
      if (mw === null || mw === undefined) continue;
      if (typeof mw !== 'function') throw new ConfigError(`${p.name}`, 'middleware() must return a function or null', mw);
      if (leading && p.role !== 'observer' && p.role !== 'admission') {
        leading = false;
        if (steps.length > 0) steps.push(local);
      }
      steps.push({ name: p.name, middleware: mw });
      chainNames.push(p.name);
      this.built.set(p.name, mw);
    }
    if (leading && steps.length > 0) steps.push(local);
    this.localInChain = steps.includes(local);
    this.chain = chainNames;
    this.run = compose(steps);

    const deps = { handler: this, logger: this.logger, metrics: this.metrics };
    this.transports = this.listenOptions.map((l, i) => createTransport(l, deps, `listen[${i}]`));
  }

  start(): Promise<void> {
    if (this.state !== 'created') return Promise.reject(new ResolverStateError(`cannot start a resolver that is ${this.state}`));
    this.state = 'starting';
    this.starting = this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    try {
      for (const p of this.plugins) {
        if (p.start) await p.start(this.scopes.get(p.name)!);
        this.started.push(p);
      }
      await this.lifecycle.runStart();
      for (const t of this.transports) {
        await t.listen();
        this.listening.push(t);
      }
    } catch (e) {
      // Undo what was done, then report the original failure.
      await this.teardown();
      this.state = 'stopped';
      throw e;
    }
    if (this.state !== 'starting') return; // stop() was called meanwhile: it tears down after us
    this.state = 'running';
    this.logger.info({ addresses: this.addresses(), chain: this.chain }, 'resolver started');
  }

  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    if (this.state === 'created') {
      this.state = 'stopped';
      return (this.stopping = Promise.resolve());
    }
    this.state = 'stopping';
    const started = this.starting ?? Promise.resolve();
    this.stopping = started
      .then(
        () => this.teardown(),
        () => this.teardown(),
      )
      .then(() => {
        this.state = 'stopped';
        this.logger.info('resolver stopped');
      });
    return this.stopping;
  }

  private async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    for (const t of this.listening) t.stopAccepting();
    if (this.inFlight.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.drainTimeoutMs);
        timer.unref();
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.drained = null;
      // Still running after the bound: answer SERVFAIL and abort them.
      for (const expire of [...this.inFlight.values()]) expire(new Error('resolver stopping'));
    }
    this.deadlines.clear();
    // Let transports write the last answers (their callbacks run after ours).
    await new Promise<void>((resolve) => setImmediate(resolve));
    await Promise.all(this.listening.map((t) => t.close().catch((e) => this.logger.warn({ err: e }, 'closing a listener failed'))));
    this.listening = [];
    const onError = (e: unknown) => this.logger.error({ err: e }, 'stop hook failed');
    await this.lifecycle.runStop(onError);
    for (let i = this.started.length - 1; i >= 0; i--) {
      const p = this.started[i];
      try {
        await p.stop?.(this.scopes.get(p.name)!);
      } catch (e) {
        this.logger.error({ err: e, plugin: p.name }, 'plugin stop failed');
      }
    }
    this.started = [];
  }

  scope(name: string): Container {
    const scope = this.scopes.get(name);
    if (scope === undefined) throw new NotAvailableError(`no plugin named '${name}' in this resolver`);
    return scope;
  }

  middleware(name: string): Middleware | undefined {
    return this.built.get(name);
  }

  async reloadCertificates(): Promise<number> {
    const encrypted = this.listening.filter((t) => t.reloadCertificates !== undefined);
    const results = await Promise.allSettled(encrypted.map((t) => t.reloadCertificates!()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return results.length;
  }

  addresses(): BoundAddress[] {
    return this.listening.map((t) => t.address());
  }

  handle(request: Buffer, client?: Partial<ClientInfo>): Promise<Buffer | null> {
    if (this.state === 'stopped') return Promise.reject(new ResolverStateError('resolver is stopped'));
    let info: ClientInfo = DEFAULT_CLIENT;
    if (client !== undefined) {
      const family = client.family ?? (client.address?.includes(':') ? 6 : 4);
      info = { ...DEFAULT_CLIENT, ...client, family };
    }
    const r = this.process(request, info);
    return r instanceof Promise ? r : Promise.resolve(r);
  }

  process(request: Buffer, client: ClientInfo): Buffer | null | Promise<Buffer | null> {
    const m = this.metrics;
    m.queries++;
    if (request.length < 12) {
      m.dropped.malformed++;
      return null;
    }
    const flags = request[2];
    if (flags & 0x80) {
      // QR=1: a response sent to us. Answering could start a loop between two servers.
      m.dropped.response++;
      return null;
    }
    if ((flags & 0x78) !== 0) return this.bare(request, Rcode.NOTIMP);
    if (request[4] !== 0 || request[5] !== 1) return this.bare(request, Rcode.FORMERR);
    let ctx: DnsContext;
    try {
      const query = new MessageReader(request);
      query.questionEnd; // parses the question: a malformed one is FORMERR, not a crash later
      ctx = new DnsContext(request, client, this.env, query);
      // The OPT's version byte, read in place (the EDNS facts object is made only when a step asks).
      const opt = query.arcount === 0 ? -1 : query.optOffset;
      if (opt >= 0 && request[opt + 6] !== 0) {
        // RFC 6891 §6.1.3: answer BADVERS with the highest version we support (0).
        const out = ctx.buildBare(Rcode.BADVERS, true);
        m.responses[Rcode.BADVERS]++;
        return out;
      }
      if (!this.localInChain && this.answerLocally(ctx)) return this.finish(ctx);
    } catch {
      return this.bare(request, Rcode.FORMERR);
    }

    let result: void | Promise<void>;
    try {
      result = this.run(ctx);
    } catch (e) {
      return this.fail(ctx, e);
    }
    if (result === undefined) return this.finish(ctx);
    return this.wait(ctx, result);
  }

  /**
   * Queries core answers itself — before the chain, or right after its
   * leading observer and admission plugins (`HeimdallPlugin.role`): CHAOS identity
   * queries (never forwarded: they would leak the upstream's identity), zone
   * transfers (a forwarder serves none: REFUSED) and ANY (RFC 8482). Returns
   * whether it answered (the response is set on `ctx`).
   */
  private answerLocally(ctx: DnsContext): boolean {
    const q = ctx.query;
    const qtype = q.qtype;
    if (q.qclass === RecordClass.IN && qtype < QTYPE_IXFR) return false;
    if (q.qclass === RecordClass.CH) {
      const text = this.chaos.get(q.qname.toLowerCase());
      if (text !== undefined && (qtype === RecordType.TXT || qtype === QTYPE_ANY)) {
        ctx.answer([{ name: q.qname, type: RecordType.TXT, class: RecordClass.CH, ttl: 0, data: [text] }], { aa: true });
      } else ctx.refused();
    } else if (qtype === QTYPE_AXFR || qtype === QTYPE_IXFR) {
      ctx.refused();
    } else if (qtype === QTYPE_ANY && this.anyQueries !== 'forward') {
      // RFC 8482 §4.2: one synthesized HINFO RRset, CPU "RFC8482", OS empty.
      if (this.anyQueries === 'refused') ctx.refused();
      else ctx.answer([{ name: q.qname, type: RecordType.HINFO, class: q.qclass, ttl: 3600, data: { cpu: 'RFC8482', os: '' } }]);
    } else return false;
    return true;
  }

  /**
   * A reply without running the chain (NOTIMP for other opcodes, FORMERR for
   * QDCOUNT ≠ 1 or an unparseable question): the question echoed when it
   * parses, our OPT when the query had one (RFC 6891 §7).
   */
  private bare(request: Buffer, rcode: number): Buffer {
    this.metrics.responses[rcode]++;
    return bareResponse(request, rcode, this.env);
  }

  private finish(ctx: DnsContext): Buffer | null {
    if (ctx.original !== null) ctx._finalize();
    let response = ctx.response;
    if (response === null && ctx._dropped) {
      this.metrics.dropped.policy++;
      return null;
    }
    if (response === null || !(response instanceof Uint8Array) || response.length < 12) {
      if (response !== null)
        ctx.log.warn({ type: typeof response }, 'a middleware set an invalid response (not wire bytes of at least 12 octets); answering as unanswered');
      if (this.unanswered === Rcode.REFUSED) ctx.refused();
      else ctx.servfail();
      response = ctx.response!;
    }
    // RFC 6840 §5.8: AD only for a client that asked with AD or DO. Upstreams,
    // the cache and dedup keep AD in what they hand on (one answer serves
    // clients of both kinds); each client's view is settled here. A copy: the
    // buffer may be shared (rare: AD set for a client that did not ask).
    if ((response[3]! & 0x20) !== 0 && (ctx.request[3]! & 0x20) === 0 && ctx.queryEdns()?.do !== true) {
      response = Buffer.from(response);
      response[3] = response[3]! & 0xdf;
      ctx.response = response;
    }
    this.metrics.countResponse(response);
    return response;
  }

  private fail(ctx: DnsContext, error: unknown): Buffer {
    const plugin = errorOrigin(error) ?? 'unknown';
    this.metrics.countError(plugin);
    ctx.log.error({ err: error, plugin }, `plugin/${plugin}: middleware failed, answering SERVFAIL`);
    ctx._ede = undefined;
    ctx.servfail();
    if (ctx.original !== null) ctx._finalize();
    this.metrics.countResponse(ctx.response!);
    return ctx.response!;
  }

  private wait(ctx: DnsContext, pending: Promise<void>): Promise<Buffer | null> {
    const m = this.metrics;
    m.inFlight++;
    return new Promise<Buffer | null>((resolve) => {
      let settled = false;
      let deadline: Deadline | null = null;
      const settle = (out: Buffer | null) => {
        settled = true;
        deadline?.finish();
        m.inFlight--;
        this.inFlight.delete(ctx);
        if (this.inFlight.size === 0 && this.drained !== null) this.drained();
        resolve(out);
      };
      // Deadline passed (or stop() gave up draining): SERVFAIL now, abort the
      // middleware's work through ctx.signal, ignore whatever it does later.
      const expire = (reason?: unknown) => {
        if (settled) return;
        m.timedOut++;
        ctx._expire(reason);
        ctx._ede = undefined;
        ctx.servfail();
        if (ctx.original !== null) ctx._finalize();
        m.countResponse(ctx.response!);
        settle(ctx.response!);
      };
      this.inFlight.set(ctx, expire);
      // One timer for every query in flight (no setTimeout/clearTimeout per query).
      deadline = this.deadlines.add(ctx.deadline, expire);
      pending.then(
        () => {
          if (!settled) settle(this.finish(ctx));
        },
        (e: unknown) => {
          if (!settled) settle(this.fail(ctx, e));
        },
      );
    });
  }
}
