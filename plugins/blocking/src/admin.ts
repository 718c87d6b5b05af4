/**
 * Admin actions of the blocking plugin (provided under core's
 * `ADMIN_ACTIONS`, mounted by the app at `/<instance>/<action>`).
 */
import { type AdminAction, type AdminActions, PLUGIN, type PluginInfo, Type } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { BadRequestError } from '@heimdall/core/errors';
import { BlockingService, MAX_DISABLE_MS } from './service.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d{1,10})(ms|s|m|h|d)$/;

/** `30s`, `5m`, `1h`, `2d`, `500ms` → milliseconds. Throws `BadRequestError` for anything else or beyond 30 days. */
export function parseDuration(text: string): number {
  const m = DURATION.exec(text.trim());
  if (m === null) throw new BadRequestError(`duration '${text}' must be a number with a unit: ms, s, m, h or d (e.g. 30s, 5m, 1h)`);
  const ms = Number(m[1]) * UNIT_MS[m[2]!]!;
  if (ms <= 0 || ms > MAX_DISABLE_MS) throw new BadRequestError(`duration '${text}' must be between 1 ms and 30 days`);
  return ms;
}

const disableArgs = Type.Object(
  {
    duration: Type.Optional(
      Type.String({
        pattern: DURATION.source,
        errorMessage: 'must be a number with a unit: ms, s, m, h or d (e.g. 30s, 5m, 1h)',
        description: 'How long: 30s, 5m, 1h, 2d.',
      }),
    ),
    durationMs: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_DISABLE_MS, description: 'How long, in milliseconds.' })),
  },
  { additionalProperties: false },
);

const reloadArgs = Type.Object(
  {
    acceptSmaller: Type.Optional(
      Type.Boolean({ description: 'Accept new list content even when it lost most of the entries (after a legitimate cleanup of a list).' }),
    ),
  },
  { additionalProperties: false },
);

/** Per-list summary returned by the `lists` action. */
export interface BlockingListSummary {
  readonly name: string;
  readonly group: string;
  readonly kind: 'block' | 'allow';
  readonly type: 'file' | 'url' | 'inline';
  /** Path or URL; `inline` for inline lists. */
  readonly source: string;
  readonly required: boolean;
  readonly entries: number;
  readonly lastRefresh: number | null;
  readonly lastError: string | null;
}

/** The `blocking` admin actions: status, enable, disable, reload, lists. */
@injectable()
export class BlockingAdmin implements AdminActions {
  readonly plugin: string;
  readonly actions: readonly AdminAction[];

  constructor(@inject(PLUGIN) info: PluginInfo, @inject(BlockingService) service: BlockingService) {
    this.plugin = info.name;
    this.actions = [
      {
        name: 'status',
        method: 'GET',
        description: 'Blocking state, table size, last build and per-list counters',
        combine: 'first',
        run: () => service.status(),
      },
      {
        name: 'enable',
        method: 'POST',
        description: 'Turn blocking on (cancels a timed disable)',
        combine: 'first',
        run: () => {
          service.enable();
          return service.status();
        },
      },
      {
        name: 'disable',
        method: 'POST',
        description: 'Turn blocking off, until enabled again or for `duration` (30s, 5m, 1h) / `durationMs`',
        args: disableArgs,
        combine: 'first',
        run: (args: { duration?: string; durationMs?: number }) => {
          if (args.duration !== undefined && args.durationMs !== undefined) throw new BadRequestError('give duration or durationMs, not both');
          // durationMs was checked against the args schema; parseDuration checks its own range.
          service.disable(args.duration !== undefined ? parseDuration(args.duration) : args.durationMs);
          return service.status();
        },
      },
      {
        name: 'reload',
        method: 'POST',
        description: 'Re-fetch every list and rebuild; resolves when the new lists are live',
        args: reloadArgs,
        combine: 'all',
        run: (args: { acceptSmaller?: boolean }) => service.reload({ acceptSmaller: args.acceptSmaller === true }),
      },
      {
        name: 'lists',
        method: 'GET',
        description: 'Per-list status: source, entries, last refresh, last error',
        combine: 'first',
        run: (): BlockingListSummary[] =>
          service.status().lists.map((l) => ({
            name: l.name,
            group: l.group,
            kind: l.kind,
            type: l.source,
            source: l.location ?? 'inline',
            required: l.required,
            entries: l.entries,
            lastRefresh: l.lastRefresh,
            lastError: l.lastError,
          })),
      },
    ];
  }
}
