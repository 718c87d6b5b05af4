/**
 * Prometheus metrics of the blocking plugin, registered through the plugin's
 * PLUGIN_METRICS (prefix `heimdall_<instance>_`, so `heimdall_blocking_` for
 * the default instance):
 *
 * - `…blocked_total{group,reason}` — blocked queries; `reason` is `list`,
 *   `regex` or `cname`. Counter children are created once per (group,
 *   reason), so counting costs an array lookup and an add.
 * - `…list_entries{list,group,kind}` — entries taken from each list.
 * - `…list_invalid_lines{list}` — lines skipped as invalid.
 * - `…list_refused_public_suffix{list}` — entries refused as public suffixes.
 * - `…refresh_total{list,result}` — `success`, `not_modified`, `failure`,
 *   `suspect` (a refresh that lost most of the list, rejected).
 * - `…domains` — distinct names in the live table.
 * - `…build_seconds` — duration of the last build.
 * - `…enabled` — 1 when blocking is on.
 */
import { PLUGIN_METRICS } from '@heimdall/core';
import { inject, injectable, type PluginMetrics } from '@heimdall/core/di';
import type { Counter, Gauge } from 'prom-client';
import type { Engine } from './engine.js';
import type { BlockingConfig } from './options.js';
import { BLOCKING_CONFIG } from './tokens.js';

/** Block reasons used as the `reason` label. */
export type BlockReason = 'list' | 'regex' | 'cname';
const REASONS: readonly BlockReason[] = ['list', 'regex', 'cname'];

/** Results of one refresh attempt of one list, as the `result` label. */
export type RefreshOutcome = 'success' | 'not_modified' | 'failure' | 'suspect';

/** The plugin's metric handles. */
@injectable()
export class BlockingMetrics {
  readonly #children: { inc(): void }[] = [];
  readonly #entries: Gauge<'list' | 'group' | 'kind'>;
  readonly #invalid: Gauge<'list'>;
  readonly #refused: Gauge<'list'>;
  readonly #refresh: Counter<'list' | 'result'>;
  readonly #domains: Gauge;
  readonly #buildSeconds: Gauge;
  readonly #enabled: Gauge;
  readonly #config: BlockingConfig;
  #memoEntries: () => number = () => 0;

  constructor(@inject(PLUGIN_METRICS) metrics: PluginMetrics, @inject(BLOCKING_CONFIG) config: BlockingConfig) {
    this.#config = config;
    const blocked = metrics.counter({ name: 'blocked_total', help: 'Queries answered with a block response', labelNames: ['group', 'reason'] });
    for (const g of config.groups) for (const r of REASONS) this.#children.push(blocked.labels(g, r));
    // Every worker builds the same lists: the gauges below are one build seen N times (max, min), not N builds (sum).
    this.#entries = metrics.gauge({
      name: 'list_entries',
      help: 'Entries taken from each list in the live build',
      labelNames: ['list', 'group', 'kind'],
      aggregator: 'max',
    });
    this.#invalid = metrics.gauge({ name: 'list_invalid_lines', help: 'Lines of each list skipped as invalid', labelNames: ['list'], aggregator: 'max' });
    this.#refused = metrics.gauge({
      name: 'list_refused_public_suffix',
      help: 'Entries refused because they are public suffixes',
      labelNames: ['list'],
      aggregator: 'max',
    });
    this.#refresh = metrics.counter({
      name: 'refresh_total',
      help: 'List refresh attempts by result (success, not_modified, failure, suspect: lost most of the list, rejected)',
      labelNames: ['list', 'result'],
    });
    this.#domains = metrics.gauge({ name: 'domains', help: 'Distinct names in the live table', aggregator: 'max' });
    this.#buildSeconds = metrics.gauge({ name: 'build_seconds', help: 'Duration of the last list build (the slowest worker)', aggregator: 'max' });
    this.#enabled = metrics.gauge({ name: 'enabled', help: '1 when blocking is enabled (in every worker)', aggregator: 'min' });
    metrics.gaugeOf(
      'decision_memo_entries',
      'Question keys whose decision the live list remembers, all client group combinations (at most 8 x 16384 per worker; emptied by each reload)',
      () => this.#memoEntries(),
    );
  }

  /** Where `heimdall_blocking_decision_memo_entries` reads from (the service’s live engine). */
  memoFrom(read: () => number): void {
    this.#memoEntries = read;
  }

  /** Counts one blocked query. */
  blocked(groupIndex: number, reason: BlockReason): void {
    this.#children[groupIndex * 3 + (reason === 'list' ? 0 : reason === 'regex' ? 1 : 2)]?.inc();
  }

  refreshed(list: string, result: RefreshOutcome): void {
    this.#refresh.labels(list, result).inc();
  }

  built(engine: Engine, ms: number): void {
    for (const l of this.#config.lists) {
      const c = engine.counts[l.id];
      this.#entries.labels(l.name, l.group, l.allow ? 'allow' : 'block').set(c ? entriesOf(c) : 0);
      this.#invalid.labels(l.name).set(c?.invalid ?? 0);
      this.#refused.labels(l.name).set(c?.refusedPublicSuffix ?? 0);
    }
    this.#domains.set(engine.table.size);
    this.#buildSeconds.set(ms / 1000);
  }

  setEnabled(on: boolean): void {
    this.#enabled.set(on ? 1 : 0);
  }
}

/** Entries a list contributed to a build (taken: not refused, not dropped). */
export function entriesOf(c: { domains: number; regexes: number; refusedPublicSuffix: number; dropped: number }): number {
  return c.domains + c.regexes - c.refusedPublicSuffix - c.dropped;
}
