/**
 * Helpers of this package's tests (not built: see tsconfig.build.json).
 */
import { BLOCKED, type BlockedInfo, type HeimdallPlugin } from '@heimdall/core';
import { record, response } from '@heimdall/testing';
import type { SourceSpec } from './engine.js';

/** A block-list source spec of `group` (not allow, not exact, room for a million entries), `extra` laid over it. */
export const spec = (id: number, group: number, extra: Partial<SourceSpec> = {}): SourceSpec => ({
  id,
  group,
  allow: false,
  exact: false,
  registrable: false,
  maxEntries: 1_000_000,
  ...extra,
});

/** A plugin to put before blocking: `seen()` is what the last query left in `ctx` under `BLOCKED`. */
export function blockedProbe(): { plugin: HeimdallPlugin; seen: () => BlockedInfo | undefined } {
  let seen: BlockedInfo | undefined;
  return {
    plugin: {
      name: 'log',
      middleware: () => async (ctx, next) => {
        await next();
        seen = ctx.get(BLOCKED);
      },
    },
    seen: () => seen,
  };
}

/** A stand-in for the rest of the chain: answers every query, with a CNAME chain for some names. */
export function upstreamStub(chains: Record<string, string[]> = {}): HeimdallPlugin {
  return {
    name: 'stub',
    middleware: () => (ctx) => {
      const qname = ctx.query.qname;
      const chain = chains[qname];
      const answers = [];
      let owner = qname;
      for (const target of chain ?? []) {
        answers.push(record(owner, 'CNAME', target, 300));
        owner = target;
      }
      answers.push(record(owner, 'A', '192.0.2.80', 300));
      ctx.response = response(ctx.request, { answers });
    },
  };
}
