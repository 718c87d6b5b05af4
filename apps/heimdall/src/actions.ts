/**
 * Admin actions: whatever the chain's plugins contribute under core's
 * `ADMIN_ACTIONS` contract, mounted by the admin server at
 * `/<plugin>/<action>`. Nothing here knows any particular plugin.
 *
 * An {@link ActionTable} holds one resolver's actions; it validates the
 * arguments with core's `parseOptions(action.args, args, '<plugin>/<action>')`
 * before running one. In cluster mode each worker has its table and the
 * primary only the JSON catalogue ({@link ActionInfo}), learnt over IPC; it
 * asks every worker and merges the answers with {@link combineResults}.
 */
import { ADMIN_ACTIONS, type AdminAction, type AdminActions, type AdminCombine, options, parseOptions, type Resolver } from '@heimdall/core';
import { NotAvailableError } from '@heimdall/core/errors';
import { toJsonSchema } from '@heimdall/core/pipeline';
import type { Logger } from 'pino';

/** One mounted action, as the admin server and the cluster primary know it (JSON-able: it crosses IPC). */
export interface ActionInfo {
  /** Instance name of the contributing plugin (first path segment). */
  readonly plugin: string;
  /** Action name (last path segment). */
  readonly name: string;
  /** `/<plugin>/<name>`. */
  readonly path: string;
  readonly method: 'GET' | 'POST';
  readonly description: string;
  readonly combine: AdminCombine;
  /** JSON Schema of the arguments; absent when the action takes none. */
  readonly args?: Record<string, unknown>;
}

const NO_ARGS = options({});
const ACTION_NAME = /^[A-Za-z0-9][\w.-]*$/;
const COMBINES: ReadonlySet<string> = new Set(['sum', 'first', 'all']);

/** The actions of one resolver, by path. */
export class ActionTable {
  private readonly byPath = new Map<string, { info: ActionInfo; action: AdminAction }>();
  /** Every mounted action, in chain order. */
  readonly list: readonly ActionInfo[];

  /** Mounts `groups`; a malformed action or a second one at the same path is left out with a warning. */
  constructor(groups: readonly AdminActions[], logger?: Logger) {
    const list: ActionInfo[] = [];
    for (const group of groups) {
      if (typeof group?.plugin !== 'string' || group.plugin === '' || !Array.isArray(group.actions)) {
        logger?.warn({ group: String(group?.plugin) }, 'admin actions group without a plugin name or actions; not mounted');
        continue;
      }
      for (const action of group.actions) {
        const path = `/${group.plugin}/${action?.name}`;
        const bad =
          typeof action?.name !== 'string' || !ACTION_NAME.test(action.name)
            ? 'name must be letters, digits, ".", "_" or "-"'
            : action.method !== 'GET' && action.method !== 'POST'
              ? 'method must be GET or POST'
              : !COMBINES.has(action.combine)
                ? 'combine must be sum, first or all'
                : typeof action.run !== 'function'
                  ? 'run must be a function'
                  : this.byPath.has(path)
                    ? 'another action has this path'
                    : undefined;
        if (bad !== undefined) {
          logger?.warn({ path }, `admin action not mounted: ${bad}`);
          continue;
        }
        const info: ActionInfo = {
          plugin: group.plugin,
          name: action.name,
          path,
          method: action.method,
          description: typeof action.description === 'string' ? action.description : '',
          combine: action.combine,
          ...(action.args === undefined ? {} : { args: toJsonSchema(action.args) }),
        };
        this.byPath.set(path, { info, action });
        list.push(info);
      }
    }
    this.list = list;
  }

  /** The table of `resolver`: every group in `resolver.container.getAll(ADMIN_ACTIONS)`. */
  static of(resolver: Resolver, logger?: Logger): ActionTable {
    return new ActionTable(resolver.container.getAll<AdminActions>(ADMIN_ACTIONS), logger);
  }

  /**
   * Validates `args` against the action's schema (core's `parseOptions`;
   * an action without a schema takes no arguments) and runs it. Throws
   * `NotAvailableError` for an unknown action, `ConfigError` (HTTP 400) for
   * bad arguments, and whatever the action throws.
   */
  async run(plugin: string, name: string, args: Record<string, unknown> = {}): Promise<unknown> {
    const entry = this.byPath.get(`/${plugin}/${name}`);
    if (entry === undefined) throw new NotAvailableError(`admin action ${plugin}/${name} is not in this resolver's chain`);
    const parsed = parseOptions(entry.action.args ?? NO_ARGS, args, `${plugin}/${name}`);
    return await entry.action.run(parsed);
  }

  /** Runs every action named `reload` (SIGHUP), each with no arguments; one failing does not stop the others. */
  async reloadAll(logger: Logger): Promise<void> {
    const reloads = this.list.filter((a) => a.name === 'reload');
    if (reloads.length === 0) {
      logger.info('reload: no plugin in the chain offers a reload action');
      return;
    }
    await Promise.all(
      reloads.map(async (a) => {
        try {
          const result = await this.run(a.plugin, a.name);
          logger.info({ action: a.path, result }, 'reloaded');
        } catch (err) {
          logger.error({ action: a.path, err }, 'reload failed');
        }
      }),
    );
  }
}

/** One worker's answer to an action, for {@link combineResults}. */
export interface WorkerResult {
  readonly worker: number;
  readonly result: unknown;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function sum(values: readonly unknown[]): unknown {
  const first = values[0];
  if (typeof first === 'number') return values.reduce<number>((s, v) => s + (typeof v === 'number' ? v : 0), 0);
  if (!isPlainObject(first)) return first;
  const out: Record<string, unknown> = {};
  const keys = new Set<string>();
  for (const v of values) if (isPlainObject(v)) for (const k of Object.keys(v)) keys.add(k);
  for (const k of keys) {
    const at = values.map((v) => (isPlainObject(v) ? v[k] : undefined)).filter((v) => v !== undefined);
    out[k] = at.every((v) => typeof v === 'number') || isPlainObject(at[0]) ? sum(at) : at[0];
  }
  return out;
}

/**
 * Merges the workers' answers to one action by its `combine`:
 * `sum` adds numeric fields (recursively through plain objects; any other
 * field comes from the first worker) and adds `workers: n` to an object
 * result that has no such field; `first` is the first worker's answer;
 * `all` is `[{ worker, result }, …]`.
 */
export function combineResults(combine: AdminCombine, results: readonly WorkerResult[]): unknown {
  if (combine === 'all') return results.map((r) => ({ worker: r.worker, result: r.result ?? null }));
  if (combine === 'first' || results.length === 0) return results[0]?.result;
  const total = sum(results.map((r) => r.result));
  return isPlainObject(total) && !('workers' in total) ? { ...total, workers: results.length } : total;
}
