import type { Buffer } from 'node:buffer';
import {
  CLOCK,
  type ClientInfo,
  type Clock,
  type ClockTimer,
  type Logger,
  parseOptions,
  PLUGIN,
  PLUGIN_LOGGER,
  PLUGIN_METRICS,
  PLUGIN_OPTIONS,
  type PluginInfo,
  type Upstream,
  type UpstreamResolveOptions,
} from '@heimdall/core';
import { inject, injectable, PluginMetrics } from '@heimdall/core/di';
import { MessageReader } from '@heimdall/core/packet';
import { silentLogger, systemClock } from '@heimdall/core/pipeline';
import { Registry } from 'prom-client';
import { type PreparedQuery, prepareQuery } from './edns.js';
import { UpstreamError } from './errors.js';
import { UpstreamGroup, UpstreamServer } from './group.js';
import { Health, HealthLog } from './health.js';
import { registerUpstreamMetrics } from './metrics.js';
import { deriveSettings, type UpstreamOptions, type UpstreamSettings, type UpstreamOptionsInput, upstreamOptionsSchema } from './options.js';
import { UpstreamStats } from './stats.js';
import { DohTransport } from './transport/doh.js';
import { UdpWithTcpFallback } from './transport/fallback.js';
import { StreamTransport } from './transport/stream.js';
import type { Transport, TransportEvents } from './transport/types.js';
import { UdpTransport } from './transport/udp.js';
import type { UpstreamSpec } from './url.js';

/**
 * The forwarding client of one plugin instance: routes a query to its group
 * (zones, conditional forwarding, longest suffix wins), rewrites EDNS for
 * the upstream, runs the group's strategy with health tracking, and makes
 * the reply ours. Implements core's {@link Upstream} contract.
 */
@injectable()
export class UpstreamClient implements Upstream {
  /** Options and what is derived from them. */
  readonly settings: UpstreamSettings;
  /** Every upstream by canonical URL (shared between groups). */
  readonly servers = new Map<string, UpstreamServer>();
  /** The group for names no domain group covers, or null. */
  readonly defaultGroup: UpstreamGroup | null;
  /** Domain groups by normalized domain. */
  readonly domainGroups = new Map<string, UpstreamGroup>();
  /** Queries being resolved now (bounded by `maxInFlight`). */
  inFlight = 0;
  /** Queries shed because `maxInFlight` (global) or every upstream's `maxInFlightPerUpstream` was reached. */
  readonly shed = { global: 0, upstream: 0 };
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #probes = new Map<UpstreamServer, ClockTimer>();
  readonly #healthLogs: HealthLog[] = [];
  readonly #zones: ReadonlySet<string>;
  readonly #maxInFlight: number;
  readonly #budget: number;
  #closed = false;

  constructor(
    @inject(PLUGIN_OPTIONS) options: UpstreamOptions,
    @inject(PLUGIN) plugin: PluginInfo,
    @inject(CLOCK) clock: Clock,
    @inject(PLUGIN_LOGGER) logger: Logger,
    @inject(PLUGIN_METRICS) metrics: PluginMetrics,
  ) {
    this.settings = deriveSettings(options, plugin.name);
    this.#clock = clock;
    this.#logger = logger;
    this.#zones = this.settings.zones;
    this.#maxInFlight = options.maxInFlight;
    this.#budget = options.budget;
    let def: UpstreamGroup | null = null;
    for (const g of this.settings.groups) {
      const servers = g.servers.map((spec) => this.#server(spec));
      const group = new UpstreamGroup(g.name || 'default', servers, {
        strategy: g.strategy,
        timeout: options.timeout,
        maxAttempts: options.maxAttempts,
        retry: this.settings.retryRcodes,
        maxInFlightPerUpstream: options.maxInFlightPerUpstream,
        clock,
      });
      if (g.name === '') def = group;
      else this.domainGroups.set(g.name, group);
    }
    this.defaultGroup = def;
    registerUpstreamMetrics(metrics, this);
  }

  /**
   * A client outside a resolver (tests, benchmarks, embedding): options are
   * validated as the plugin does; metrics go to `deps.registry` (default: a
   * registry of its own). Close it when done.
   */
  static create(input: UpstreamOptionsInput = {}, deps: { clock?: Clock; logger?: Logger; registry?: Registry; name?: string } = {}): UpstreamClient {
    const name = deps.name ?? 'upstream';
    const options = parseOptions(upstreamOptionsSchema, input, name);
    const info: PluginInfo = { name, kind: 'upstream', metricsPrefix: `heimdall_${name.replace(/[^A-Za-z0-9]+/g, '_')}_` };
    return new UpstreamClient(
      options,
      info,
      deps.clock ?? systemClock,
      deps.logger ?? silentLogger(),
      new PluginMetrics(deps.registry ?? new Registry(), info.metricsPrefix),
    );
  }

  #server(spec: UpstreamSpec): UpstreamServer {
    const existing = this.servers.get(spec.url);
    if (existing) return existing;
    const o = this.settings.options;
    const ca = this.settings.ca;
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
        ca,
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
          ca,
          rejectUnauthorized: o.tls.rejectUnauthorized,
        });
        break;
    }
    const health = new Health({ maxFailures: o.health.maxFailures, backoff: o.health.backoff, maxBackoff: this.settings.maxBackoff, probe: o.health.probe });
    const log = new HealthLog(spec.url, o.health.logInterval, clock, this.#logger, () => ({
      down: health.down,
      consecutiveFailures: health.consecutiveFailures,
      retryInMs: Math.max(0, health.downUntil - clock.now()),
    }));
    this.#healthLogs.push(log);
    const server = new UpstreamServer(spec.url, transport, health, stats, clock, {
      onDown: (s) => {
        log.change(true);
        if (o.health.probe) this.#scheduleProbe(s);
      },
      onUp: () => log.change(false),
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
      void s.probe(this.#clock.now() + this.settings.options.timeout).then((ok) => {
        s.health.probing = false;
        // A failure re-marks the server down with a doubled period (onDown schedules the next probe).
        if (!ok && s.health.down && !this.#probes.has(s)) this.#scheduleProbe(s);
      });
    }, wait);
    (timer as NodeJS.Timeout).unref?.();
    this.#probes.set(s, timer);
  }

  /**
   * The group responsible for a query's name: null when the name is outside
   * `zones`, else the longest matching `domains` suffix, else the default
   * group (null when there is none).
   */
  route(reader: MessageReader): UpstreamGroup | null {
    if (this.domainGroups.size === 0 && this.#zones.size === 0) return this.defaultGroup;
    let name: string;
    try {
      name = reader.qname.toLowerCase();
    } catch {
      return this.#zones.size === 0 ? this.defaultGroup : null;
    }
    return this.routeName(name);
  }

  /** {@link route} for a presentation-format name (lowercase, no trailing dot). */
  routeName(name: string): UpstreamGroup | null {
    if (this.#zones.size > 0 && !inZones(this.#zones, name)) return null;
    const groups = this.domainGroups;
    if (groups.size === 0) return this.defaultGroup;
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
   * question's letter case as given, and our own header bits and OPT.
   *
   * @throws {UpstreamError} `BAD_QUERY` (not exactly one question, malformed
   * OPT, a name this instance does not cover), `EXHAUSTED`
   * ({@link UpstreamExhaustedError}, with the EDE code to answer),
   * `OVERLOADED`, `ABORTED`, `CLOSED`
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
    let prep: PreparedQuery;
    try {
      prep = this.prepare(query, reader, this.settings.options.ednsPayloadSize, options.client);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.forward(group, prep, options.deadline, options.signal);
  }

  /** Builds the upstream query for a client query (throws `BAD_QUERY`). `replyPayload`: our payload size for the reply's OPT. */
  prepare(query: Buffer, reader: MessageReader, replyPayload: number, client?: ClientInfo): PreparedQuery {
    return prepareQuery(query, reader, this.settings.clientSubnet, this.settings.options.ednsPayloadSize, replyPayload, client);
  }

  /**
   * Resolves a prepared query through `group`, within `budget` and
   * `deadline`. Past `maxInFlight` it rejects with `OVERLOADED` at once.
   */
  async forward(group: UpstreamGroup, prep: PreparedQuery, deadline?: number, signal?: AbortSignal): Promise<Buffer> {
    if (this.#closed) throw new UpstreamError('CLOSED', 'client closed');
    if (this.inFlight >= this.#maxInFlight) {
      this.shed.global++;
      throw new UpstreamError('OVERLOADED', `${this.#maxInFlight} queries already in flight`);
    }
    const budget = this.#clock.now() + this.#budget;
    const until = deadline !== undefined && deadline < budget ? deadline : budget;
    this.inFlight++;
    try {
      return await group.resolve(prep, until, signal);
    } catch (e) {
      if (e instanceof UpstreamError && e.code === 'OVERLOADED') this.shed.upstream++;
      throw e;
    } finally {
      this.inFlight--;
    }
  }

  /** Health and traffic of every upstream (the admin action `health`). */
  health(): UpstreamHealth[] {
    const now = this.#clock.now();
    return [...this.servers.values()].map((s) => ({
      upstream: s.url,
      state: s.health.down ? 'down' : 'up',
      consecutiveFailures: s.health.consecutiveFailures,
      retryInMs: s.health.down ? Math.max(0, s.health.downUntil - now) : 0,
      rttMs: Math.round(s.health.rtt * 100) / 100,
      inFlight: s.inFlight,
      requests: s.stats.requests,
      failures: { ...s.stats.failures },
      lateReplies: s.stats.late,
    }));
  }

  /** Closes every transport and cancels probes; pending resolutions reject with `CLOSED`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#probes.values()) this.#clock.clearTimeout(t);
    this.#probes.clear();
    for (const l of this.#healthLogs) l.close();
    await Promise.all([...this.servers.values()].map((s) => s.transport.close()));
  }
}

/** One upstream in the `health` admin action's answer. */
export interface UpstreamHealth {
  upstream: string;
  state: 'up' | 'down';
  consecutiveFailures: number;
  /** While down: ms until it is probed (or let through) again. */
  retryInMs: number;
  /** RTT moving average (ms); 0 before the first sample. */
  rttMs: number;
  /** Attempts outstanding now. */
  inFlight: number;
  requests: number;
  failures: { timeout: number; network: number; protocol: number; rcode: number };
  lateReplies: number;
}

/** True when `name` is at or below one of `zones` (`''` is the root and covers everything). */
function inZones(zones: ReadonlySet<string>, name: string): boolean {
  if (zones.has(name) || zones.has('')) return true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x2e && zones.has(name.slice(i + 1))) return true;
  }
  return false;
}
