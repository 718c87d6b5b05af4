/**
 * The blocking runtime: owns the current {@link Engine}, the list sources and
 * their refresh timer, the enable/disable switch, and exposes it all as
 * core's `BlockingControl` (provided under `BLOCKING_CONTROL`).
 *
 * Loading: `start()` builds from what is on this machine — file lists,
 * inline lists, and the last-good copies of downloaded lists in the cache
 * directory — and returns; downloads run in the background and the new
 * lists are swapped in when they arrive. Only `required` lists without any
 * copy are awaited (and their absence fails the start).
 *
 * Suspect refreshes: new content is built as a *candidate*; a candidate that
 * keeps fewer than `refresh.minRetainedRatio` of the entries of the last good
 * copy is rejected (the last good copy stays, `lastError` says why, a
 * rate-limited warning is logged, `refresh_total{result="suspect"}` counts it).
 *
 * Shared switch: with a `STATE_STORE` (the persistence plugin's, on disk;
 * Redis later), `disable`/`enable` are also written under
 * `<instance>.disabledUntil` (`blocking.disabledUntil` for the default
 * instance): the absolute epoch ms at which blocking turns itself back on,
 * `0` for "until enabled again", `null` once enabled. `start()` applies the
 * stored value (a time already past is ignored), so a disable survives a
 * restart, and follows the changes other processes make (every worker of
 * the host, every instance on the same store).
 */
import { performance } from 'node:perf_hooks';
import { mkdir } from 'node:fs/promises';
import {
  type BlockingControl,
  CLOCK,
  type Clock,
  type ClockTimer,
  type BlockingStatus as CoreBlockingStatus,
  createError,
  type Logger,
  PLUGIN_LOGGER,
  STATE_STORE,
  type StateStore,
} from '@heimdall/core';
import { inject, injectable, optional } from '@heimdall/core/di';
import { BuildError, type BuildInput, buildEngine, buildInWorker } from './build.js';
import { Engine } from './engine.js';
import { ClientGroups } from './groups.js';
import { randomSeed } from './hash.js';
import { BlockingMetrics, entriesOf } from './metrics.js';
import type { BlockingConfig, ResolvedList } from './options.js';
import { discard, initialState, loadFromDisk, promote, type RefreshResult, refreshSource, type SourceState } from './sources.js';
import { sweepStaleTemp } from './temp-files.js';
import { BLOCKING_CONFIG } from './tokens.js';

/** A `required: true` list could not be loaded at start (no file, no download, no disk copy). */
export const RequiredListError = createError<[string, string, string]>('BLOCKING_REQUIRED_LIST', "%s: required list '%s' could not be loaded: %s", 500);

/** Status of one list. */
export interface BlockingListStatus {
  readonly name: string;
  readonly group: string;
  readonly kind: 'block' | 'allow';
  readonly source: 'file' | 'url' | 'inline';
  /** Path or URL (absent for inline lists). */
  readonly location?: string;
  /** Where the list is in the options (`blocking.groups.ads.block[0]`). */
  readonly path: string;
  readonly required: boolean;
  /** True while a good copy is in use (false: nothing loaded yet, or never). */
  readonly loaded: boolean;
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
  /** Why the last refresh failed or was rejected; null after a good one. */
  readonly lastError: string | null;
  /** A few rejected lines, for diagnosis. */
  readonly samples: readonly string[];
}

/** What `status()` returns. */
export interface BlockingPluginStatus extends CoreBlockingStatus {
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
  /** A refresh or build is running (e.g. the downloads after start). */
  readonly building: boolean;
  readonly lists: readonly BlockingListStatus[];
}

/** Result of `reload()`. */
export interface BlockingReloadResult {
  /** True when a new engine was built and swapped in. */
  readonly rebuilt: boolean;
  /** Lists whose new content was accepted. */
  readonly changed: number;
  /** Lists whose refresh failed (their last good copy stays). */
  readonly failed: number;
  /** Lists whose new content was rejected as suspect (their last good copy stays). */
  readonly rejected: number;
}

/** Options of `reload()`. */
export interface BlockingReloadOptions {
  /** Accept new content even when it lost most of the list (after a legitimate cleanup). */
  readonly acceptSmaller?: boolean;
}

/** Longest accepted timed disable: 30 days. */
export const MAX_DISABLE_MS = 30 * 86_400_000;
/** Longest delay one timer can take (Node fires longer ones after 1 ms): longer disables re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** At most one warning per list and kind of problem in this window. */
const WARN_INTERVAL_MS = 3_600_000;

/** The service behind `BLOCKING_CONTROL`. */
@injectable()
export class BlockingService implements BlockingControl {
  /** The live engine. Replaced (never mutated) by a reload. */
  engine: Engine;
  /** Read per query: false while disabled. */
  active: boolean;
  readonly groups: ClientGroups;
  readonly states: SourceState[];
  readonly #config: BlockingConfig;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #metrics: BlockingMetrics;
  #disabledUntil: number | null = null;
  #disableTimer: ClockTimer | null = null;
  /** The shared switch (`STATE_STORE`), its key, and the value last read or written there. */
  readonly #state: StateStore | null;
  readonly #stateKey: string;
  #stateValue: unknown;
  #unsubscribe: (() => void) | null = null;
  #refreshTimer: ClockTimer | null = null;
  #reloading: Promise<BlockingReloadResult> | null = null;
  /** A full reload (every list, forced build) queued or running: `reload()` joins it. */
  #full: Promise<BlockingReloadResult> | null = null;
  #lastBuild: number | null = null;
  #lastBuildMs: number | null = null;
  #lastBuildMode: BlockingPluginStatus['lastBuildMode'] = null;
  #abort = new AbortController();
  #stopped = false;
  /** Last warning time per `<list id>:<kind>`, and how many were suppressed since. */
  readonly #warned = new Map<string, { at: number; suppressed: number }>();

  constructor(
    @inject(BLOCKING_CONFIG) config: BlockingConfig,
    @inject(CLOCK) clock: Clock,
    @inject(PLUGIN_LOGGER) log: Logger,
    @inject(BlockingMetrics) metrics: BlockingMetrics,
    @inject(STATE_STORE) @optional() state?: StateStore,
  ) {
    this.#state = state ?? null;
    this.#stateKey = `${config.instance}.disabledUntil`;
    this.#config = config;
    this.#clock = clock;
    this.#log = log;
    this.#metrics = metrics;
    this.engine = Engine.empty(randomSeed());
    this.active = config.enabled;
    this.groups = new ClientGroups(config.clients.rules, config.clients.defaultMask);
    this.states = config.lists.map(initialState);
    metrics.setEnabled(this.active);
    metrics.memoFrom(() => this.engine.memoEntries);
  }

  /**
   * Builds from the lists on this machine (files, inline, last-good copies),
   * awaits `required` lists that have no copy, and starts the downloads in
   * the background. Throws `RequiredListError` when a required list is
   * missing.
   */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#abort = new AbortController();
    this.#followState();
    const dir = this.#config.cacheDir;
    if (this.states.some((s) => s.list.kind !== 'inline')) {
      try {
        await mkdir(dir, { recursive: true });
        const swept = await sweepStaleTemp(dir);
        if (swept > 0) this.#log.info({ dir, files: swept }, 'blocking: removed temp files left by a process that was killed');
      } catch (err) {
        this.#log.warn({ err, dir }, 'blocking: cannot use the cache directory; downloads and list copies will fail until it is writable');
      }
      await Promise.all(this.states.map((s) => loadFromDisk(s, dir)));
    }
    const first = this.states.filter((s) => s.list.kind !== 'url' || (s.list.required && s.content === null));
    await this.#run(() => this.#doReload(false, first, {}));
    const missing = this.states.find((s) => s.list.required && s.content === null);
    if (missing !== undefined) {
      await this.stop();
      throw new RequiredListError(missing.list.path, missing.list.name, missing.lastError ?? 'nothing was loaded');
    }
    const pending = this.states.filter((s) => s.list.kind === 'url' && s.content === null);
    for (const s of pending) {
      this.#log.warn({ list: s.list.name, url: s.list.location }, 'blocking: list not on disk yet, serving without it until the download arrives');
    }
    // The downloads: in the background (status().building; idle() resolves when done).
    const remote = this.states.filter((s) => s.list.kind === 'url' && !first.includes(s));
    if (remote.length > 0) void this.#run(() => this.#doReload(false, remote, {})).catch(() => {});
  }

  /** Stops timers and downloads; waits for a build in progress; deletes candidates. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#refreshTimer !== null) this.#clock.clearTimeout(this.#refreshTimer);
    if (this.#disableTimer !== null) this.#clock.clearTimeout(this.#disableTimer);
    this.#refreshTimer = null;
    this.#disableTimer = null;
    await this.#reloading?.catch(() => {});
    await Promise.all(this.states.map((s) => (s.list.kind === 'inline' ? undefined : discard(s, false))));
  }

  /** Resolves when no refresh or build is running (the background downloads after start, a scheduled reload). */
  async idle(): Promise<void> {
    while (this.#reloading !== null) await this.#reloading.catch(() => {});
  }

  enable(): void {
    this.#enable('blocking enabled');
    this.#publish(null);
  }

  /** Turns blocking off, for `durationMs` (1 ms … 30 days) when given, then back on by itself. */
  disable(durationMs?: number): void {
    if (durationMs !== undefined && (!Number.isFinite(durationMs) || durationMs <= 0 || durationMs > MAX_DISABLE_MS)) {
      throw new RangeError(`blocking.disable: duration must be between 1 and ${MAX_DISABLE_MS} ms`);
    }
    const until = durationMs === undefined ? 0 : this.#clock.now() + durationMs;
    this.#disable(until);
    this.#log.info({ durationMs }, 'blocking disabled');
    this.#publish(until, durationMs);
  }

  /** This process only: on. */
  #enable(msg: string): void {
    if (this.#disableTimer !== null) this.#clock.clearTimeout(this.#disableTimer);
    this.#disableTimer = null;
    this.#disabledUntil = null;
    this.active = true;
    this.#metrics.setEnabled(true);
    this.#log.info(msg);
  }

  /** This process only: off until `until` (epoch ms), or until enabled again (`0`). */
  #disable(until: number): void {
    if (this.#disableTimer !== null) this.#clock.clearTimeout(this.#disableTimer);
    this.#disableTimer = null;
    this.active = false;
    this.#metrics.setEnabled(false);
    this.#disabledUntil = until === 0 ? null : until;
    if (until !== 0) this.#armEnable(until);
  }

  /** The timer that turns blocking back on at `until` (re-armed in steps beyond what one timer can wait). */
  #armEnable(until: number): void {
    const wait = until - this.#clock.now();
    this.#disableTimer = this.#clock.setTimeout(
      () => {
        this.#disableTimer = null;
        if (this.#clock.now() < until) this.#armEnable(until);
        else this.#enable('blocking enabled');
      },
      Math.max(0, Math.min(wait, MAX_TIMER_MS)),
    );
    unref(this.#disableTimer);
  }

  /** Writes the switch to the shared state (others follow; a timed disable is forgotten by the store when it ends). */
  #publish(value: number | null, ttlMs?: number): void {
    const state = this.#state;
    if (state === null) return;
    this.#stateValue = value;
    try {
      state.set(this.#stateKey, value, ttlMs !== undefined ? { ttlMs } : undefined);
    } catch (err) {
      this.#log.warn({ err, key: this.#stateKey }, 'blocking: could not store the enable/disable state');
    }
  }

  /** Start: applies the stored switch (a disable survives restarts), then follows other processes' changes. */
  #followState(): void {
    const state = this.#state;
    if (state === null || this.#unsubscribe !== null) return;
    let value: unknown;
    try {
      value = state.get(this.#stateKey);
    } catch (err) {
      this.#log.warn({ err, key: this.#stateKey }, 'blocking: could not read the enable/disable state');
    }
    this.#stateValue = value;
    // At start only a disable is taken: no value (or `null`, or a time already past) leaves `enabled` from the options.
    if (this.#isDisable(value)) {
      this.#disable(value);
      this.#log.info({ disabledUntil: value === 0 ? null : value }, 'blocking disabled (stored state)');
    }
    try {
      this.#unsubscribe = state.subscribe(this.#stateKey, (v) => {
        // The store also reports the value it holds at subscription: already applied above.
        if (v === this.#stateValue) return;
        this.#stateValue = v;
        this.#applyState(v);
      });
    } catch (err) {
      this.#log.warn({ err, key: this.#stateKey }, 'blocking: cannot follow the enable/disable state of other processes');
    }
  }

  /** True for a stored disable still in force: `0`, or a time to come. */
  #isDisable(v: unknown): v is number {
    return typeof v === 'number' && Number.isFinite(v) && (v === 0 || v > this.#clock.now());
  }

  /** Applies a stored value (another process's change, or the value found at start). */
  #applyState(v: unknown): void {
    if (this.#isDisable(v)) {
      if (!this.active && (this.#disabledUntil ?? 0) === v) return;
      this.#disable(v);
      this.#log.info({ disabledUntil: v === 0 ? null : v }, 'blocking disabled (shared state)');
    } else if (v === null || v === undefined || typeof v === 'number') {
      // Enabled elsewhere, or a disable that is already over.
      if (!this.active) this.#enable('blocking enabled (shared state)');
    } else {
      this.#log.warn({ key: this.#stateKey, value: v }, 'blocking: ignoring an enable/disable state that is not a time, 0 or null');
    }
  }

  /**
   * Re-fetches every list (conditional requests) and rebuilds; resolves when
   * the new set is live. Runs after a refresh already in progress; joins a
   * full reload already queued unless `acceptSmaller` asks for one that
   * accepts shrunken lists.
   */
  reload(options: BlockingReloadOptions = {}): Promise<BlockingReloadResult> {
    if (this.#full !== null && options.acceptSmaller !== true) return this.#full;
    const p = this.#run(() => this.#doReload(true, this.states, options));
    this.#full = p;
    const clear = () => {
      if (this.#full === p) this.#full = null;
    };
    p.then(clear, clear);
    return p;
  }

  /** Runs reloads one after another; `#reloading` is the latest. */
  #run(job: () => Promise<BlockingReloadResult>): Promise<BlockingReloadResult> {
    const previous = this.#reloading;
    const p: Promise<BlockingReloadResult> = (previous === null ? job() : previous.catch(() => {}).then(job)).finally(() => {
      if (this.#reloading === p) this.#reloading = null;
    });
    this.#reloading = p;
    return p;
  }

  async #doReload(force: boolean, subset: readonly SourceState[], options: BlockingReloadOptions): Promise<BlockingReloadResult> {
    if (this.#refreshTimer !== null) this.#clock.clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    if (options.acceptSmaller === true) for (const s of subset) s.rejected = null;
    const results = await this.#refreshAll(subset);
    const failed = results.filter((r) => r === 'failed').length;
    let rejected = 0;
    let changed = 0;
    let rebuilt = false;
    if (!this.#stopped) {
      // An empty candidate is judged without a build.
      for (const s of this.states) if (s.candidate !== null && s.candidate.bytes === 0 && this.#isSuspect(s, 0, options)) rejected += await this.#reject(s, 0);
      const candidates = this.states.filter((s) => s.candidate !== null);
      if (force || candidates.length > 0 || this.#lastBuild === null) {
        try {
          let engine = await this.#build();
          const suspects = engine === null ? [] : candidates.filter((s) => this.#isSuspect(s, entriesOf(countsOf(engine!, s.list)), options));
          for (const s of suspects) rejected += await this.#reject(s, entriesOf(countsOf(engine!, s.list)));
          if (suspects.length > 0) {
            // That engine holds a rejected candidate: build again from the good copies, unless nothing else changed.
            const others = this.states.some((s) => s.candidate !== null);
            engine = others || force || this.#lastBuild === null ? await this.#build() : null;
          }
          if (engine !== null && !this.#stopped) {
            for (const s of this.states) {
              const entries = entriesOf(countsOf(engine, s.list));
              if (s.candidate !== null) {
                await promote(s, this.#config.cacheDir, entries, this.#clock.now()).catch((err) => {
                  s.lastError = `cannot save the list copy: ${(err as Error).message}`;
                });
                if (s.list.kind !== 'inline') this.#metrics.refreshed(s.list.name, 'success');
                changed++;
              } else if (s.content !== null) {
                s.goodEntries = entries;
              }
            }
            this.#swap(engine);
            rebuilt = true;
          }
        } catch (err) {
          this.#log.error({ err }, 'blocking: list build failed, keeping the current lists');
          for (const s of this.states) if (s.list.kind !== 'inline') await discard(s, false);
        }
      }
    }
    // Retry soon while any list has a problem (this reload's or an earlier one's).
    this.#schedule(this.states.some((s) => s.lastError !== null));
    return { rebuilt, changed, failed, rejected };
  }

  #isSuspect(s: SourceState, entries: number, options: BlockingReloadOptions): boolean {
    const ratio = this.#config.refresh.minRetainedRatio;
    if (options.acceptSmaller === true || ratio === 0 || s.goodEntries === null || s.goodEntries === 0 || s.list.kind === 'inline') return false;
    return entries < s.goodEntries * ratio;
  }

  async #reject(s: SourceState, entries: number): Promise<number> {
    const good = s.goodEntries ?? 0;
    const bytes = s.candidate?.bytes ?? 0;
    s.lastError =
      `refresh rejected as suspect: ${entries} entries (${bytes} bytes), the last good copy has ${good}; ` +
      `below refresh.minRetainedRatio ${this.#config.refresh.minRetainedRatio}, keeping the last good copy`;
    await discard(s, true);
    this.#metrics.refreshed(s.list.name, 'suspect');
    this.#warn(s.list, 'suspect', { entries, bytes, goodEntries: good }, 'blocking: refresh lost most of the list, keeping the last good copy');
    return 1;
  }

  /** Logs a warning about a list at most once per {@link WARN_INTERVAL_MS} per kind, counting the suppressed ones. */
  #warn(list: ResolvedList, kind: string, fields: Record<string, unknown>, msg: string): void {
    const key = `${list.id}:${kind}`;
    const now = this.#clock.now();
    const w = this.#warned.get(key);
    if (w !== undefined && now - w.at < WARN_INTERVAL_MS) {
      w.suppressed++;
      return;
    }
    this.#warned.set(key, { at: now, suppressed: 0 });
    this.#log.warn({ list: list.name, ...fields, ...(w !== undefined && w.suppressed > 0 ? { suppressed: w.suppressed } : {}) }, msg);
  }

  async #refreshAll(subset: readonly SourceState[]): Promise<RefreshResult[]> {
    const results: RefreshResult[] = new Array(subset.length);
    let next = 0;
    const settings = {
      dir: this.#config.cacheDir,
      timeoutMs: this.#config.refresh.timeoutMs,
      maxBytes: this.#config.refresh.maxBytes,
      now: () => this.#clock.now(),
      signal: this.#abort.signal,
    };
    const worker = async () => {
      while (next < subset.length) {
        const i = next++;
        const state = subset[i]!;
        const r = await refreshSource(state, settings);
        results[i] = r;
        if (state.list.kind === 'inline') continue;
        if (r === 'unchanged') this.#metrics.refreshed(state.list.name, 'not_modified');
        if (r === 'failed') {
          this.#metrics.refreshed(state.list.name, 'failure');
          this.#warn(
            state.list,
            'failure',
            { error: state.lastError, keeping: state.content !== null },
            state.content !== null ? 'blocking: list refresh failed, keeping the last good copy' : 'blocking: list unavailable',
          );
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#config.refresh.concurrency, subset.length) }, worker));
    return results;
  }

  /** Builds an engine from every list's candidate or good copy. Null when stopped meanwhile. */
  async #build(): Promise<Engine | null> {
    const usable = this.states.filter((s) => s.candidate !== null || s.content !== null);
    const input: BuildInput = {
      seed: randomSeed(),
      regex: this.#config.regex,
      // ~30 bytes per hosts line: pre-size the table so the build rarely rehashes.
      expected: Math.min(
        usable.reduce((n, s) => n + Math.ceil((s.candidate?.bytes ?? s.bytes) / 30), 0),
        usable.reduce((n, s) => n + s.list.maxEntries, 0),
      ),
      sources: usable.map((s) => ({
        content: (s.candidate?.content ?? s.content)!,
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
    let mode: BlockingPluginStatus['lastBuildMode'] = this.#config.build;
    if (this.#config.build === 'worker') {
      try {
        out = await buildInWorker(input);
      } catch (err) {
        // A worker that cannot run (restricted runtime, missing file) must not leave the resolver
        // unprotected; a build that failed or timed out in the worker is not retried inline.
        if (!(err instanceof BuildError) || err.code !== 'WORKER_FAILED') throw err;
        this.#log.warn({ err }, 'blocking: worker build failed, building on the main thread in chunks');
        out = await buildEngine(input, true);
        mode = 'inline-fallback';
      }
    } else {
      out = await buildEngine(input, true);
    }
    if (this.#stopped) return null;
    this.#lastBuildMs = performance.now() - t0;
    this.#lastBuildMode = mode;
    return new Engine(out);
  }

  /** Atomic swap: queries in flight finish on the old engine, new ones use the new. */
  #swap(engine: Engine): void {
    this.engine = engine;
    this.#lastBuild = this.#clock.now();
    for (const s of this.states) {
      const c = engine.counts[s.list.id];
      if (c !== undefined && c.samples.length > 0 && (c.invalid > 0 || c.refusedPublicSuffix > 0)) {
        this.#log.warn(
          { list: s.list.name, invalid: c.invalid, refusedPublicSuffix: c.refusedPublicSuffix, examples: c.samples },
          c.refusedPublicSuffix > 0 ? 'blocking: list has public-suffix entries (refused) or invalid lines' : 'blocking: list has invalid lines',
        );
      }
    }
    this.#metrics.built(engine, this.#lastBuildMs ?? 0);
    this.#log.info({ domains: engine.table.size, regexes: engine.regexCount, ms: Math.round(this.#lastBuildMs ?? 0) }, 'blocking: lists loaded');
  }

  #schedule(anyFailed: boolean): void {
    if (this.#stopped) return;
    if (this.#refreshTimer !== null) this.#clock.clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    const { interval, retry } = this.#config.refresh;
    const delay = anyFailed ? (interval === 0 ? retry : Math.min(retry, interval)) : interval;
    if (delay === 0) return;
    this.#refreshTimer = this.#clock.setTimeout(() => {
      this.#refreshTimer = null;
      void this.#run(() => this.#doReload(false, this.states, {})).catch((err) => this.#log.error({ err }, 'blocking: scheduled reload failed'));
    }, delay);
    unref(this.#refreshTimer);
  }

  status(): BlockingPluginStatus {
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
          path: s.list.path,
          required: s.list.required,
          loaded: s.content !== null,
          entries: c ? entriesOf(c) : 0,
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

function countsOf(engine: Engine, list: ResolvedList) {
  return engine.counts[list.id] ?? { domains: 0, regexes: 0, refusedPublicSuffix: 0, dropped: 0 };
}

function unref(t: ClockTimer): void {
  if (typeof t === 'object' && t !== null && 'unref' in t && typeof t.unref === 'function') t.unref();
}
