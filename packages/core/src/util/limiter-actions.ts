/**
 * The admin actions every rate limiter offers (the ratelimit and rrl
 * plugins): `GET limited` (what is over its limit now, most first, each
 * worker its own list), `GET stats` (counters summed over workers) and
 * `POST reset` (forget every bucket or account).
 */
import { Type } from '@sinclair/typebox';
import type { AdminAction, AdminActions } from '../tokens.js';

/** What a limiter gives {@link limiterActions}: its lists, counters and table. */
export interface LimiterActionsSource<L> {
  limited(max: number): L[];
  stats(): object;
  /** The table `reset` clears. */
  readonly table: { readonly size: number; clear(): void };
}

/** One line each for the endpoint listing, and what `limited` lists (`prefixes`, `accounts`). */
export interface LimiterActionsText {
  readonly what: string;
  readonly limited: string;
  readonly stats: string;
  readonly reset: string;
}

/**
 * `limited` (`?max=`, default 1000), `stats` and `reset` of a limiter, as
 * the plugin instance `plugin` contributes them under `ADMIN_ACTIONS`.
 */
export function limiterActions<L>(plugin: string, source: LimiterActionsSource<L>, text: LimiterActionsText): AdminActions {
  const args = Type.Object(
    { max: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 1000, description: `Most ${text.what} listed (most limited first).` })) },
    { additionalProperties: false },
  );
  const actions: readonly AdminAction[] = Object.freeze([
    {
      name: 'limited',
      method: 'GET',
      description: text.limited,
      args,
      combine: 'all',
      run: (a: { max?: number }) => source.limited(a.max ?? 1000),
    } satisfies AdminAction<{ max?: number }, L[]>,
    { name: 'stats', method: 'GET', description: text.stats, combine: 'sum', run: () => source.stats() },
    {
      name: 'reset',
      method: 'POST',
      description: text.reset,
      combine: 'sum',
      run: () => {
        const forgotten = source.table.size;
        source.table.clear();
        return { forgotten };
      },
    },
  ]);
  return Object.freeze({ plugin, actions });
}
