/**
 * The blocking runtime: owns the current {@link Engine}, the list sources and
 * their refresh timer, the enable/disable switch, and exposes it all to the
 * admin API as {@link BlockingControl} under {@link BLOCKING_CONTROL}.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock, ClockTimer, Logger } from '@heimdall/core';
import { BuildError, type BuildInput, buildEngine, buildInWorker } from './build.js';
import { Engine, type SourceCounts } from './engine.js';
import { ClientGroups } from './groups.js';
import { randomSeed } from './hash.js';
import type { BlockingMetrics } from './metrics.js';
import type { ResolvedOptions } from './options.js';
import { initialState, loadFromDisk, type RefreshResult, refreshSource, type SourceState } from './sources.js';

/** DI token of the {@link BlockingControl} service (`Symbol.for('heimdall.blocking.control')`). */
export const BLOCKING_CONTROL: unique symbol = Symbol.for('heimdall.blocking.control');

/** Status of one list. */
export interface ListStatus {
  readonly name: string;
  readonly group: string;
  readonly kind: 'block' | 'allow';
  readonly source: 'file' | 'url' | 'inline';
  /** Path or URL (absent for inline lists). */
  readonly location?: string;
  /** Domain and regex entries taken from the list in the current build. */
  readonly entries: number;
  readonly regexes: number;
  readonly lines: number;
  readonly invalid: number;
  readonly unsupported: number;
  readonly ignored: number;
  readonly refusedPublicSuffix: number;
  /** Entries beyond `maxEntries`, not taken. */
  readonly dropped: number;
  readonly bytes: number;
  /** Epoch ms of the last successful fetch/read (a 304 counts), or null. */
  readonly lastRefresh: number | null;
  readonly lastError: string | null;
  /** A few rejected lines, for diagnosis. */
  readonly samples: readonly string[];
}

/** What {@link BlockingControl.status} returns. */
export interface BlockingStatus {
  readonly enabled: boolean;
  /** Epoch ms when a timed disable ends (null when enabled or disabled indefinitely). */
  readonly disabledUntil: number | null;
  /** Distinct names in the current table (all groups). */
  readonly domains: number;
  readonly regexes: number;
  /** Epoch ms of the last successful build, null before the first. */
  readonly lastBuild: number | null;
  readonly lastBuildMs: number | null;
  /** How the last build ran: in a worker, inline, or inline because the worker failed. */
  readonly lastBuildMode: 'worker' | 'inline' | 'inline-fallback' | null;
  readonly building: boolean;
  readonly lists: readonly ListStatus[];
}

/** Result of {@link BlockingControl.reload}. */
export interface ReloadResult {
  /** True when a new engine was built and swapped in. */
  readonly rebuilt: boolean;
  readonly changed: number;
  readonly failed: number;
}

/** Runtime control of the blocking plugin, for the admin API. */
export interface BlockingControl {
  /** Turns blocking on (cancels a timed disable). */
  enable(): void;
  /** Turns blocking off, for `durationMs` when given (then back on by itself). */
  disable(durationMs?: number): void;
  /** Re-fetches every list (conditional requests) and rebuilds; resolves when the new set is live. */
  reload(): Promise<ReloadResult>;
  status(): BlockingStatus;
}

/** Longest accepted timed disable: 30 days. */
export const MAX_DISABLE_MS = 30 * 86_400_000;

/** The service behind {@link BLOCKING_CONTROL}. */
export class BlockingService implements BlockingControl {
  /** The live engine. Replaced (never mutated) by a reload. */
  engine: Engine;
  /** Read per query: false while disabled. */
  active: boolean;
  readonly groups: ClientGroups;
  readonly options: ResolvedOptions;
  readonly states: SourceState[];
  readonly #clock: Clock;
  readonly #log: Logger | null;
  readonly #metrics: BlockingMetrics | null;
  /** Metric handles (null without a METRICS registry). */
  get metrics(): BlockingMetrics | null {
    return this.#metrics;
  }
  #disabledUntil: number | null = null;
  #disableTimer: ClockTimer | null = null;
  #refreshTimer: ClockTimer | null = null;
  #reloading: Promise<ReloadResult> | null = null;
  #lastBuild: number | null = null;
  #lastBuildMs: number | null = null;
  #lastBuildMode: BlockingStatus['lastBuildMode'] = null;
  #dir: string | null = null;
  #tempDir: string | null = null;
  #abort = new AbortController();
  #stopped = false;

  constructor(options: ResolvedOptions, clock: Clock, log: Logger | null, metrics: BlockingMetrics | null) {
    this.options = options;
    this.#clock = clock;
    this.#log = log;
    this.#metrics = metrics;
    this.engine = Engine.empty(randomSeed());
    this.active = options.enabled;
    this.groups = new ClientGroups(options.clients.rules, options.clients.defaultMask);
    this.states = options.lists.map(initialState);
    metrics?.setEnabled(this.active);
  }

  /** Loads disk copies, fetches every list, builds, and schedules refreshes. */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#abort = new AbortController();
    if (this.options.cacheDir !== null) this.#dir = this.options.cacheDir;
    else if (this.states.some((s) => s.list.kind === 'url')) {
      this.#tempDir = await mkdtemp(join(tmpdir(), 'heimdall-blocking-'));
      this.#dir = this.#tempDir;
    }
    if (this.#dir !== null) {
      await Promise.all(this.states.map((s) => loadFromDisk(s, this.#dir!)));
    }
    await this.reload(false);
  }

  /** Stops timers and downloads; waits for a build in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    if (this.#refreshTimer !== null) this.#clock.clearTimeout(this.#refreshTimer);
    if (this.#disableTimer !== null) this.#clock.clearTimeout(this.#disableTimer);
    this.#refreshTimer = null;
    this.#disableTimer = null;
    await this.#reloading?.catch(() => {});
    if (this.#tempDir !== null) await rm(this.#tempDir, { recursive: true, force: true }).catch(() => {});
    this.#tempDir = null;
  }

  enable(): void {
    if (this.#disableTimer !== null) this.#clock.clearTimeout(this.#disableTimer);
    this.#disableTimer = null;
    this.#disabledUntil = null;
    this.active = true;
    this.#metrics?.setEnabled(true);
    this.#log?.info('blocking enabled');
  }

  disable(durationMs?: number): void {
    if (durationMs !== undefined && (!Number.isFinite(durationMs) || durationMs <= 0 || durationMs > MAX_DISABLE_MS)) {
      throw new RangeError(`blocking.disable: duration must be between 1 and ${MAX_DISABLE_MS} ms`);
    }
    if (this.#disableTimer !== null) this.#clock.clearTimeout(this.#disableTimer);
    this.#disableTimer = null;
    this.active = false;
    this.#metrics?.setEnabled(false);
    if (durationMs === undefined) {
      this.#disabledUntil = null;
    } else {
      this.#disabledUntil = this.#clock.now() + durationMs;
      this.#disableTimer = this.#clock.setTimeout(() => {
        this.#disableTimer = null;
        this.enable();
      }, durationMs);
      unref(this.#disableTimer);
    }
    this.#log?.info({ durationMs }, 'blocking disabled');
  }

  reload(force = true): Promise<ReloadResult> {
    if (this.#reloading !== null) return this.#reloading;
    const p = this.#doReload(force).finally(() => {
      this.#reloading = null;
    });
    this.#reloading = p;
    return p;
  }

  async #doReload(force: boolean): Promise<ReloadResult> {
    if (this.#refreshTimer !== null) this.#clock.clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    const results = await this.#refreshAll();
    const changed = results.filter((r) => r === 'changed').length;
    const failed = results.filter((r) => r === 'failed').length;
    let rebuilt = false;
    if (!this.#stopped && (force || changed > 0 || this.#lastBuild === null)) {
      try {
        await this.#build();
        rebuilt = true;
      } catch (err) {
        this.#log?.error({ err }, 'blocking: list build failed, keeping the current lists');
      }
    }
    this.#schedule(failed > 0);
    return { rebuilt, changed, failed };
  }

  async #refreshAll(): Promise<RefreshResult[]> {
    const results: RefreshResult[] = new Array(this.states.length);
    let next = 0;
    const settings = {
      dir: this.#dir ?? tmpdir(),
      timeoutMs: this.options.refresh.timeoutMs,
      maxBytes: this.options.refresh.maxBytes,
      now: () => this.#clock.now(),
      signal: this.#abort.signal,
    };
    const worker = async () => {
      while (next < this.states.length) {
        const i = next++;
        const state = this.states[i]!;
        const r = await refreshSource(state, settings);
        results[i] = r;
        this.#metrics?.refreshed(state.list.name, r);
        if (r === 'failed') {
          this.#log?.warn(
            { list: state.list.name, error: state.lastError, keeping: state.content !== null },
            state.content !== null ? 'blocking: list refresh failed, keeping the last good copy' : 'blocking: list unavailable',
          );
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.refresh.concurrency, this.states.length) }, worker));
    return results;
  }

  async #build(): Promise<void> {
    const usable = this.states.filter((s) => s.content !== null);
    const input: BuildInput = {
      seed: randomSeed(),
      regex: this.options.regex,
      // ~30 bytes per hosts line: pre-size the table so the build rarely rehashes.
      expected: Math.min(
        usable.reduce((n, s) => n + Math.ceil(s.bytes / 30), 0),
        usable.reduce((n, s) => n + s.list.maxEntries, 0),
      ),
      sources: usable.map((s) => ({
        content: s.content!,
        spec: {
          id: s.list.id,
          group: s.list.groupIndex,
          allow: s.list.allow,
          exact: s.list.exact,
          registrable: s.list.registrable,
          maxEntries: s.list.maxEntries,
        },
      })),
    };
    const t0 = performance.now();
    let out: Awaited<ReturnType<typeof buildEngine>>;
    let mode: BlockingStatus['lastBuildMode'] = this.options.build;
    if (this.options.build === 'worker') {
      try {
        out = await buildInWorker(input);
      } catch (err) {
        // A worker that cannot run (restricted runtime, missing file) must not leave the resolver
        // unprotected; a build that failed or timed out in the worker is not retried inline.
        if (!(err instanceof BuildError) || err.code !== 'WORKER_FAILED') throw err;
        this.#log?.warn({ err }, 'blocking: worker build failed, building on the main thread in chunks');
        out = await buildEngine(input, true);
        mode = 'inline-fallback';
      }
    } else {
      out = await buildEngine(input, true);
    }
    if (this.#stopped) return;
    const engine = new Engine(out);
    // Atomic swap: queries in flight finish on the old engine, new ones use the new.
    this.engine = engine;
    this.#lastBuild = this.#clock.now();
    this.#lastBuildMs = performance.now() - t0;
    this.#lastBuildMode = mode;
    for (const s of this.states) {
      const c = engine.counts[s.list.id];
      if (c !== undefined && c.samples.length > 0 && (c.invalid > 0 || c.refusedPublicSuffix > 0)) {
        this.#log?.warn(
          { list: s.list.name, invalid: c.invalid, refusedPublicSuffix: c.refusedPublicSuffix, examples: c.samples },
          c.refusedPublicSuffix > 0 ? 'blocking: list has public-suffix entries (refused) or invalid lines' : 'blocking: list has invalid lines',
        );
      }
    }
    this.#metrics?.built(this, engine, this.#lastBuildMs);
    this.#log?.info({ domains: engine.table.size, regexes: engine.regexCount, ms: Math.round(this.#lastBuildMs) }, 'blocking: lists loaded');
  }

  #schedule(anyFailed: boolean): void {
    if (this.#stopped) return;
    const { interval, retry } = this.options.refresh;
    const delay = anyFailed ? (interval === 0 ? retry : Math.min(retry, interval)) : interval;
    if (delay === 0) return;
    this.#refreshTimer = this.#clock.setTimeout(() => {
      this.#refreshTimer = null;
      void this.reload(false).catch((err) => this.#log?.error({ err }, 'blocking: scheduled reload failed'));
    }, delay);
    unref(this.#refreshTimer);
  }

  /** Counters of a list in the current build (zeros before the first build). */
  countsOf(id: number): SourceCounts | undefined {
    return this.engine.counts[id];
  }

  status(): BlockingStatus {
    const engine = this.engine;
    return {
      enabled: this.active,
      disabledUntil: this.active ? null : this.#disabledUntil,
      domains: engine.table.size,
      regexes: engine.regexCount,
      lastBuild: this.#lastBuild,
      lastBuildMs: this.#lastBuildMs === null ? null : Math.round(this.#lastBuildMs),
      lastBuildMode: this.#lastBuildMode,
      building: this.#reloading !== null,
      lists: this.states.map((s) => {
        const c = engine.counts[s.list.id];
        return {
          name: s.list.name,
          group: s.list.group,
          kind: s.list.allow ? 'allow' : 'block',
          source: s.list.kind,
          ...(s.list.kind === 'inline' ? {} : { location: s.list.location }),
          entries: c ? c.domains + c.regexes - c.refusedPublicSuffix - c.dropped : 0,
          regexes: c?.regexes ?? 0,
          lines: c?.lines ?? 0,
          invalid: c?.invalid ?? 0,
          unsupported: c?.unsupported ?? 0,
          ignored: c?.ignored ?? 0,
          refusedPublicSuffix: c?.refusedPublicSuffix ?? 0,
          dropped: c?.dropped ?? 0,
          bytes: s.bytes,
          lastRefresh: s.lastRefresh,
          lastError: s.lastError,
          samples: c?.samples ?? [],
        };
      }),
    };
  }
}

function unref(t: ClockTimer): void {
  if (typeof t === 'object' && t !== null && 'unref' in t && typeof t.unref === 'function') t.unref();
}
