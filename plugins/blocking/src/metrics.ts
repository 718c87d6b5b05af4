/**
 * Prometheus metrics of the blocking plugin, registered in the resolver's
 * METRICS registry:
 *
 * - `heimdall_blocking_blocked_total{group,reason}` — blocked queries;
 *   `reason` is `list`, `regex` or `cname`. Counter children are created once
 *   per (group, reason), so counting costs an array lookup and an add.
 * - `heimdall_blocking_list_entries{list,group,kind}` — entries taken from each list.
 * - `heimdall_blocking_list_invalid_lines{list}` — lines skipped as invalid.
 * - `heimdall_blocking_list_refused_public_suffix{list}` — entries refused as public suffixes.
 * - `heimdall_blocking_refresh_total{list,result}` — `success`, `not_modified`, `failure`.
 * - `heimdall_blocking_domains` — distinct names in the live table.
 * - `heimdall_blocking_build_seconds` — duration of the last build.
 * - `heimdall_blocking_enabled` — 1 when blocking is on.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Engine } from './engine.js';
import type { BlockingService } from './service.js';
import type { RefreshResult } from './sources.js';

/** Block reasons used as the `reason` label. */
export type BlockReason = 'list' | 'regex' | 'cname';
const REASONS: readonly BlockReason[] = ['list', 'regex', 'cname'];

/** The plugin's metric handles. */
export class BlockingMetrics {
  readonly #blocked: Counter<'group' | 'reason'>;
  readonly #children: { inc(): void }[];
  readonly #entries: Gauge<'list' | 'group' | 'kind'>;
  readonly #invalid: Gauge<'list'>;
  readonly #refused: Gauge<'list'>;
  readonly #refresh: Counter<'list' | 'result'>;
  readonly #domains: Gauge;
  readonly #buildSeconds: Gauge;
  readonly #enabled: Gauge;
  readonly #groups: readonly string[];

  constructor(registry: Registry, groups: readonly string[]) {
    const registers = [registry];
    const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
    this.#groups = groups;
    this.#blocked = get(
      'heimdall_blocking_blocked_total',
      () => new Counter({ name: 'heimdall_blocking_blocked_total', help: 'Queries answered with a block response', labelNames: ['group', 'reason'], registers }),
    );
    this.#children = [];
    for (const g of groups) for (const r of REASONS) this.#children.push(this.#blocked.labels(g, r));
    this.#entries = get(
      'heimdall_blocking_list_entries',
      () => new Gauge({ name: 'heimdall_blocking_list_entries', help: 'Entries taken from each list in the live build', labelNames: ['list', 'group', 'kind'], registers }),
    );
    this.#invalid = get(
      'heimdall_blocking_list_invalid_lines',
      () => new Gauge({ name: 'heimdall_blocking_list_invalid_lines', help: 'Lines of each list skipped as invalid', labelNames: ['list'], registers }),
    );
    this.#refused = get(
      'heimdall_blocking_list_refused_public_suffix',
      () =>
        new Gauge({ name: 'heimdall_blocking_list_refused_public_suffix', help: 'Entries refused because they are public suffixes', labelNames: ['list'], registers }),
    );
    this.#refresh = get(
      'heimdall_blocking_refresh_total',
      () => new Counter({ name: 'heimdall_blocking_refresh_total', help: 'List refresh attempts by result', labelNames: ['list', 'result'], registers }),
    );
    this.#domains = get('heimdall_blocking_domains', () => new Gauge({ name: 'heimdall_blocking_domains', help: 'Distinct names in the live table', registers }));
    this.#buildSeconds = get(
      'heimdall_blocking_build_seconds',
      () => new Gauge({ name: 'heimdall_blocking_build_seconds', help: 'Duration of the last list build', registers }),
    );
    this.#enabled = get('heimdall_blocking_enabled', () => new Gauge({ name: 'heimdall_blocking_enabled', help: '1 when blocking is enabled', registers }));
  }

  /** Counts one blocked query. */
  blocked(groupIndex: number, reason: BlockReason): void {
    const child = this.#children[groupIndex * 3 + (reason === 'list' ? 0 : reason === 'regex' ? 1 : 2)];
    child?.inc();
  }

  refreshed(list: string, result: RefreshResult): void {
    this.#refresh.labels(list, result === 'failed' ? 'failure' : result === 'unchanged' ? 'not_modified' : 'success').inc();
  }

  built(service: BlockingService, engine: Engine, ms: number): void {
    for (const s of service.states) {
      const c = engine.counts[s.list.id];
      const entries = c ? c.domains + c.regexes - c.refusedPublicSuffix - c.dropped : 0;
      this.#entries.labels(s.list.name, s.list.group, s.list.allow ? 'allow' : 'block').set(entries);
      this.#invalid.labels(s.list.name).set(c?.invalid ?? 0);
      this.#refused.labels(s.list.name).set(c?.refusedPublicSuffix ?? 0);
    }
    this.#domains.set(engine.table.size);
    this.#buildSeconds.set(ms / 1000);
  }

  setEnabled(on: boolean): void {
    this.#enabled.set(on ? 1 : 0);
  }

  /** Group names, by index. */
  get groups(): readonly string[] {
    return this.#groups;
  }
}
