/**
 * Coalescing of identical in-flight questions: the first query for a key
 * (same key as the cache: lowercased question, type, class, EDNS/DO/CD
 * bits) runs the rest of the chain; queries for the same key arriving while
 * it is in flight wait for its response and get a copy patched with their own
 * ID, RD/AD bits and question letter case (`copyForQuery` of `@heimdall/core/wire`).
 */
import { Buffer } from 'node:buffer';
import { CLOCK, type Clock, type ClockTimer, type DnsContext, type Next, PLUGIN_OPTIONS } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { copyForQuery, KEY_DO, keyFlags, plainNameEnd } from '@heimdall/core/wire';

import type { DedupOptions } from './options.js';

type Ctx = DnsContext;

/** Counters of the dedup middleware (exported as metrics by the plugin). */
export class DedupStats {
  /** Queries that ran the chain for a key (the first of each flight). */
  leaders = 0;
  /** Queries answered from another query's flight. */
  coalesced = 0;
  /** Waiters answered SERVFAIL because the flight failed or timed out. */
  failures = 0;
  /** Queries that could not wait (maxWaiters or maxInFlight reached) and ran the chain themselves. */
  overflows = 0;
}

interface Waiter {
  readonly ctx: Ctx;
  readonly resolve: () => void;
}

class Flight {
  readonly waiters: Waiter[] = [];
  timer: ClockTimer | null = null;
  done = false;
  /** The leader's deadline (epoch ms). */
  readonly deadline: number;
  constructor(deadline: number) {
    this.deadline = deadline;
  }
}

/** The in-flight table and the middleware over it (one per plugin instance, in its scope). */
@injectable()
export class Deduplicator {
  readonly stats = new DedupStats();
  private readonly flights = new Map<string, Flight>();
  private readonly options: DedupOptions;
  private readonly clock: Clock;

  constructor(@inject(PLUGIN_OPTIONS) options: DedupOptions, @inject(CLOCK) clock: Clock) {
    this.options = options;
    this.clock = clock;
  }

  /** Distinct questions in flight now. */
  get inFlight(): number {
    return this.flights.size;
  }

  /** The middleware: `(ctx, next)`. */
  readonly middleware = (ctx: Ctx, next: Next): void | Promise<void> => {
    const key = ctx.questionKey(); // computed once per query, shared with the cache
    if (key === null) return next();
    const flight = this.flights.get(key);
    if (flight !== undefined) {
      if (flight.waiters.length >= this.options.maxWaiters) {
        this.stats.overflows++;
        return next();
      }
      return this.join(ctx, key, flight);
    }
    if (this.flights.size >= this.options.maxInFlight && this.prune() === 0) {
      this.stats.overflows++;
      return next();
    }
    return this.lead(ctx, next, key);
  };

  private lead(ctx: Ctx, next: Next, key: string): void | Promise<void> {
    const flight = new Flight(ctx.deadline);
    this.flights.set(key, flight);
    this.stats.leaders++;
    let r: void | Promise<void>;
    try {
      r = next();
    } catch (e) {
      this.complete(key, flight, null, true);
      throw e;
    }
    if (r === undefined) {
      this.complete(key, flight, ctx.response, false);
      return;
    }
    return r.then(
      () => this.complete(key, flight, ctx.response, false),
      (e: unknown) => {
        this.complete(key, flight, null, true);
        throw e;
      },
    );
  }

  /**
   * Drops flights whose leader's deadline has passed (a chain that never
   * settled): their waiters, if any, get SERVFAIL. Runs only when the table
   * is full. Returns how many were dropped.
   */
  private prune(): number {
    const now = this.clock.now();
    let dropped = 0;
    for (const [key, flight] of this.flights) {
      if (flight.deadline <= now) {
        this.complete(key, flight, null, true);
        dropped++;
      }
    }
    return dropped;
  }

  private join(ctx: Ctx, key: string, flight: Flight): Promise<void> {
    if (flight.timer === null) {
      // A flight is bounded by its leader's deadline (armed only once someone waits):
      // a chain that never settles must not hold waiters, or the table, forever.
      const ms = Math.max(0, flight.deadline - this.clock.now());
      flight.timer = this.clock.setTimeout(() => {
        flight.timer = null;
        this.complete(key, flight, null, true);
      }, ms);
    }
    return new Promise<void>((resolve) => {
      flight.waiters.push({ ctx, resolve });
    });
  }

  private complete(key: string, flight: Flight, response: Buffer | null, failed: boolean): void {
    if (flight.done) return;
    flight.done = true;
    if (this.flights.get(key) === flight) this.flights.delete(key);
    if (flight.timer !== null) {
      this.clock.clearTimeout(flight.timer);
      flight.timer = null;
    }
    const waiters = flight.waiters;
    if (waiters.length === 0) return;
    const doBit = (keyFlags(key) & KEY_DO) !== 0;
    if (response !== null && !Buffer.isBuffer(response)) failed = true;
    const respNameEnd = response !== null && !failed ? questionNameEnd(response) : -2;
    for (let i = 0; i < waiters.length; i++) {
      const { ctx, resolve } = waiters[i];
      try {
        if (failed) {
          this.stats.failures++;
          ctx.servfail();
        } else if (response === null) {
          this.stats.coalesced++; // nobody answered the leader either: the resolver's unanswered rule applies
        } else if (respNameEnd === 12) {
          // A header-only reply (no question to restore): ID and flags only.
          ctx.response = copyForQuery(response, ctx.request, 12, doBit, false);
          this.stats.coalesced++;
        } else if (respNameEnd > 12 && respNameEnd === plainNameEnd(ctx.request, 12)) {
          ctx.response = copyForQuery(response, ctx.request, respNameEnd, doBit, false);
          this.stats.coalesced++;
        } else {
          this.stats.failures++;
          ctx.servfail();
        }
      } catch {
        this.stats.failures++;
        ctx.response = null; // the resolver's unanswered rule answers it
      }
      resolve();
    }
  }
}

/** End of the question name of a response with one question (12 when it has none), -1 when unusable. */
function questionNameEnd(response: Buffer): number {
  if (response.length < 12) return -1;
  const qd = (response[4] << 8) | response[5];
  if (qd === 0) return 12;
  if (qd !== 1) return -1;
  return plainNameEnd(response, 12);
}
