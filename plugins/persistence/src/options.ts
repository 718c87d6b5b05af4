/**
 * Options of the persistence plugin: one TypeBox schema (types, defaults,
 * bounds and the error messages all come from it).
 */
import { options, type Static, Type } from '@heimdall/core';

/** The persistence plugin's options schema. */
export const persistenceOptionsSchema = options({
  dir: Type.String({
    minLength: 1,
    description:
      'Directory of the LMDB environment (data.mdb, lock.mdb), created when missing. Every worker process of the host that names the same directory shares one cache and one state store; it survives restarts.',
  }),
  maxSizeMb: Type.Integer({
    minimum: 8,
    maximum: 1_048_576,
    default: 256,
    description:
      'Size cap of the environment in MiB (the LMDB map size). Above 80 % of it the oldest entries are evicted; above 95 % new cache entries are dropped until eviction catches up.',
  }),
  batchSize: Type.Integer({
    minimum: 1,
    maximum: 100_000,
    default: 1000,
    description: 'Most cache writes committed in one LMDB transaction. A batch is committed when it is full or after flushIntervalMs, whichever comes first.',
  }),
  flushIntervalMs: Type.Integer({
    minimum: 1,
    maximum: 60_000,
    default: 100,
    description: 'Longest time (ms) a cache write waits in memory before its batch is committed. A kill -9 loses at most these writes.',
  }),
  maxPendingWrites: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 10_000,
    description: 'Most cache writes waiting in memory (while a commit is slow). Beyond it new writes are dropped and counted.',
  }),
  sweepIntervalMs: Type.Integer({
    minimum: 100,
    maximum: 3_600_000,
    default: 10_000,
    description: 'Period (ms) of the maintenance tick: size check, eviction of the oldest entries above 80 % of the cap, removal of expired entries.',
  }),
  sweepBatch: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 2000,
    description: 'Most index entries examined (and so removed) per maintenance tick; the expired-entry sweep resumes where it stopped.',
  }),
  statePollMs: Type.Integer({
    minimum: 50,
    maximum: 60_000,
    default: 1000,
    description: 'How often (ms) the state store checks, with one small read, whether another process changed a subscribed key.',
  }),
});

/** Options of the persistence plugin, defaults filled in. */
export type PersistenceOptions = Static<typeof persistenceOptionsSchema>;

/** Above this share of the cap, the oldest entries are evicted. */
export const EVICT_ABOVE = 0.8;
/** Eviction stops once usage is back under this share of the cap. */
export const EVICT_DOWN_TO = 0.7;
/** Above this share of the cap, new cache entries are dropped (the LMDB map would otherwise grow past the cap). */
export const REFUSE_ABOVE = 0.95;
