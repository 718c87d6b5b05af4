import { type Clock, type ClockTimer, type Logger, MessageReader, type Registry, systemClock, type Upstream, type UpstreamResolveOptions } from '@heimdall/core';
import { type ClientSubnetPolicy, finishReply, type PreparedQuery, prepareQuery } from './edns.js';
import { UpstreamError } from './errors.js';
import { UpstreamGroup, UpstreamServer } from './group.js';
import { Health } from './health.js';
import { registerUpstreamMetrics } from './metrics.js';
import { normalizeDomain, type ResolvedOptions, resolveOptions, type UpstreamOptions } from './options.js';
import { UpstreamStats } from './stats.js';
import { DohTransport } from './transport/doh.js';
import { UdpWithTcpFallback } from './transport/fallback.js';
import { StreamTransport } from './transport/stream.js';
import type { Transport, TransportEvents } from './transport/types.js';
import { UdpTransport } from './transport/udp.js';
import type { UpstreamSpec } from './url.js';

/** Dependencies of {@link UpstreamClient} (the plugin takes them from the container). */
export interface UpstreamClientDeps {
  clock?: Clock;
  logger?: Logger;
  /** Where per-upstream metrics are registered. */
  registry?: Registry;
}

// `. IN NS`, RD, ID 0 (the transports set their own): the health probe.
const PROBE = Buffer.from([0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1]);

/**
 * The forwarding client: routes a query to its group (conditional
 * forwarding, longest suffix wins), rewrites EDNS for the upstream, runs the
 * group's strategy with health tracking, and fixes the reply up for the
 * client. Implements core's {@link Upstream} contract, so other plugins (the
 * cache's prefetch) can resolve through it via the `UPSTREAM` token.
 *
 * @example
 * const client = new UpstreamClient({ servers: ['9.9.9.9', 'tls://1.1.1.1#cloudflare-dns.com'], strategy: 'fastest' });
 * const reply = await client.resolve(queryBytes, { deadline: Date.now() + 3000 });
 * await client.close();
 */
export class UpstreamClient implements Upstream {
  /** Validated options in effect. */
  readonly options: ResolvedOptions;
  /** Every upstream by canonical URL (shared between groups). */
  readonly servers = new Map<string, UpstreamServer>();
  /** The group for names no domain group covers, or null. */
  readonly defaultGroup: UpstreamGroup | null;
  /** Domain groups by normalized domain. */
  readonly domainGroups = new Map<string, UpstreamGroup>();
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  readonly #policy: ClientSubnetPolicy;
  readonly #keepEcs: boolean;
  readonly #probes = new Map<UpstreamServer, ClockTimer>();
  #closed = false;

  constructor(options: UpstreamOptions | ResolvedOptions, deps: UpstreamClientDeps = {}) {
    this.options = 'groups' in options ? options : resolveOptions(options);
    this.#clock = deps.clock ?? systemClock;
    this.#logger = deps.logger;
    this.#policy = this.options.clientSubnet;
    this.#keepEcs = this.#policy.mode === 'forward';
    let def: UpstreamGroup | null = null;
    const o = this.options;
    const rcodes = { retry: o.retryRcodes, unhealthy: new Set([...o.health.failureRcodes].filter((r) => o.retryRcodes.has(r))) };
    for (const g of o.groups) {
      const servers = g.servers.map((spec) => this.#server(spec));
      const group = new UpstreamGroup(g.name || 'default', servers, { strategy: g.strategy, timeout: o.timeout, maxAttempts: o.maxAttempts, rcodes, clock: this.#clock });
      if (g.name === '') def = group;
      else this.domainGroups.set(g.name, group);
    }
    this.defaultGroup = def;
    if (deps.registry) registerUpstreamMetrics(deps.registry, () => this.servers.values());
  }

  #server(spec: UpstreamSpec): UpstreamServer {
    const existing = this.servers.get(spec.url);
    if (existing) return existing;
    const o = this.options;
    const stats = new UpstreamStats(spec.url);
    const events: TransportEvents = {
      onSpoof: () => {
        stats.spoofs++;
      },
      onTruncated: () => {
        stats.truncated++;
      },
    };
    const clock = this.#clock;
    const stream = (protocol: 'tcp' | 'tls', url: string) =>
      new StreamTransport({
        protocol,
        host: spec.host,
        port: spec.port,
        url,
        clock,
        events,
        servername: spec.protocol === 'tls' ? spec.servername : undefined,
        ca: o.tls.ca,
        rejectUnauthorized: o.tls.rejectUnauthorized,
        ...o.tcp,
      });
    let transport: Transport;
    switch (spec.protocol) {
      case 'udp': {
        const udp = new UdpTransport({ host: spec.host, port: spec.port, family: spec.family, url: spec.url, clock, events, ...o.udp });
        transport = spec.tcpFallback ? new UdpWithTcpFallback(spec.url, udp, stream('tcp', spec.url), events) : udp;
        break;
      }
      case 'tcp':
      case 'tls':
        transport = stream(spec.protocol, spec.url);
        break;
      case 'https':
        transport = new DohTransport({
          host: spec.host,
          port: spec.port,
          path: spec.path,
          servername: spec.servername,
          url: spec.url,
          clock,
          events,
          method: o.https.method,
          idleTimeout: o.https.idleTimeout,
          maxStreams: o.https.maxStreams,
          maxQueue: o.tcp.maxQueue,
          connectTimeout: o.tcp.connectTimeout,
          ca: o.tls.ca,
          rejectUnauthorized: o.tls.rejectUnauthorized,
        });
        break;
    }
    const server = new UpstreamServer(spec.url, transport, new Health(o.health), stats, clock, {
      onDown: (s) => {
        this.#logger?.warn({ upstream: s.url, failures: s.health.consecutiveFailures, retryInMs: s.health.backoff }, 'upstream marked down');
        if (o.health.probe) this.#scheduleProbe(s);
      },
      onUp: (s) => this.#logger?.info({ upstream: s.url }, 'upstream back up'),
    });
    this.servers.set(spec.url, server);
    return server;
  }

  #scheduleProbe(s: UpstreamServer): void {
    if (this.#closed || this.#probes.has(s)) return;
    const wait = Math.max(0, s.health.downUntil - this.#clock.now());
    const timer = this.#clock.setTimeout(() => {
      this.#probes.delete(s);
      if (this.#closed || !s.health.down) return;
      s.health.probing = true;
      const deadline = this.#clock.now() + this.options.timeout;
      // Any reply counts (even REFUSED would not here: rcodes are not retried for probes).
      void s.attempt(PROBE, deadline, undefined, { retry: new Set(), unhealthy: new Set() }).then((out) => {
        s.health.probing = false;
        // A failure re-marks the server down with a doubled period (onDown schedules the next probe).
        if (!out.ok && s.health.down && !this.#probes.has(s)) this.#scheduleProbe(s);
      });
    }, wait);
    (timer as NodeJS.Timeout).unref?.();
    this.#probes.set(s, timer);
  }

  /**
   * The group responsible for a query's name (longest matching domain
   * suffix, else the default group), or null when none is.
   */
  route(reader: MessageReader): UpstreamGroup | null {
    if (this.domainGroups.size === 0) return this.defaultGroup;
    let name: string;
    try {
      name = reader.qname.toLowerCase();
    } catch {
      return this.defaultGroup;
    }
    return this.routeName(name);
  }

  /** {@link route} for a presentation-format name (lowercase, no trailing dot). */
  routeName(name: string): UpstreamGroup | null {
    const groups = this.domainGroups;
    let g = groups.get(name);
    if (g !== undefined) return g;
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c === 0x5c /* \ escapes the next char (or starts \DDD) */) i++;
      else if (c === 0x2e /* . */) {
        g = groups.get(name.slice(i + 1));
        if (g !== undefined) return g;
      }
    }
    return groups.get('') ?? this.defaultGroup;
  }

  /**
   * Forwards `query` (any ID) and returns the reply with that ID, the
   * question's letter case as given, and EDNS adjusted for the asker.
   *
   * @throws {UpstreamError} `BAD_QUERY` (not exactly one question, malformed
   * OPT), `EXHAUSTED` ({@link UpstreamExhaustedError}, with the EDE code to
   * answer), `ABORTED`, `CLOSED`, `BAD_RESPONSE` (malformed reply records)
   */
  resolve(query: Buffer, options: UpstreamResolveOptions = {}): Promise<Buffer> {
    let reader: MessageReader;
    try {
      reader = new MessageReader(query);
    } catch (e) {
      return Promise.reject(new UpstreamError('BAD_QUERY', (e as Error).message, undefined, { cause: e }));
    }
    const group = this.route(reader);
    if (group === null) return Promise.reject(new UpstreamError('BAD_QUERY', `no upstream group covers "${reader.qname}"`));
    return this.resolveWith(group, query, reader, options);
  }

  /** {@link resolve} through a given group, with an already-built reader of `query`. */
  async resolveWith(group: UpstreamGroup, query: Buffer, reader: MessageReader, options: UpstreamResolveOptions = {}): Promise<Buffer> {
    if (this.#closed) throw new UpstreamError('CLOSED', 'client closed');
    const prep: PreparedQuery = prepareQuery(query, reader, this.#policy, this.options.ednsPayloadSize, options.client);
    const budget = this.#clock.now() + this.options.budget;
    const deadline = options.deadline !== undefined && options.deadline < budget ? options.deadline : budget;
    const reply = await group.resolve(prep.query, deadline, options.signal);
    return finishReply(reply, query, prep, this.#keepEcs && prep.clientEcs);
  }

  /** Closes every transport and cancels probes; pending resolutions reject with `CLOSED`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#probes.values()) this.#clock.clearTimeout(t);
    this.#probes.clear();
    await Promise.all([...this.servers.values()].map((s) => s.transport.close()));
  }
}

export { normalizeDomain };
