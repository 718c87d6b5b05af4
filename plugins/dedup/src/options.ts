/**
 * Options of the dedup plugin: one TypeBox schema (types, defaults, bounds
 * and the error messages all come from it).
 */
import { options, type Static, Type } from '@heimdall/core';

/** The dedup plugin's options schema. */
export const dedupOptionsSchema = options({
  maxWaiters: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    default: 1024,
    description: 'Most queries waiting on one in-flight question. Beyond it, a query runs the chain itself (counted as an overflow).',
  }),
  maxInFlight: Type.Integer({
    minimum: 1,
    maximum: 10_000_000,
    default: 65_536,
    description:
      "Most distinct questions tracked at once. When the table is full, flights whose leader's deadline has passed are dropped first; if none can be, new questions are not coalesced.",
  }),
});

/** Options of the dedup plugin, defaults filled in. */
export type DedupOptions = Static<typeof dedupOptionsSchema>;
