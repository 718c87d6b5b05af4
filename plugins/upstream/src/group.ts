import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import type { Clock, ClockTimer } from '@heimdall/core';
import { MessageReader } from '@heimdall/core/packet';
import { systemClock } from '@heimdall/core/pipeline';
import { forwardReply, type PreparedQuery } from './edns.js';
import { UpstreamError, UpstreamExhaustedError } from './errors.js';
import type { Health } from './health.js';
import type { Strategy } from './options.js';
import { randomBelow } from './random.js';
import type { UpstreamStats } from './stats.js';
import type { Transport } from './transport/types.js';
import { headerRcode } from './wire.js';

export type { Strategy };

/** Result of one attempt. `reply` on failure is an answer with a retry rcode (kept as a last resort). */
export type Outcome = { ok: true; reply: Buffer } | { ok: false; reply?: Buffer; error: UpstreamError };

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

// `. IN NS`, RD, ID 0 (the transports set their own): the health probe.
const PROBE = Buffer.from([0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1]);

/** One attempt of one query on one upstream. */
export class Attempt {
  /** Its per-attempt timeout passed (counted as a timeout); a reply may still come and is accepted. */
  slow = false;
  settled = false;
  /** `performance.now()` at the start: the round-trip time to sub-millisecond resolution ({@link elapsedMs}). */
  readonly hrStart = performance.now();
  constructor(
    readonly server: UpstreamServer,
    readonly start: number,
    /** The resolution it belongs to (told when the attempt turns slow). */
    readonly owner: { onSlow(att: Attempt): void } | null = null,
  ) {}
}

/**
 * Milliseconds since `start` (the clock's reading) / `hrStart`
 * (`performance.now()`): with the real clock, from the high-resolution timer
 * — `Date.now()` counts whole milliseconds, so a local upstream answering in
 * 0.2 ms measured 0 and its RTT average decayed to 0 — and from the clock
 * otherwise (a test's fake clock is the time that passed).
 */
export function elapsedMs(clock: Clock, start: number, hrStart: number): number {
  return clock === systemClock ? performance.now() - hrStart : clock.now() - start;
}

/**
 * Per-attempt timeouts without a timer per attempt: every attempt of a group
 * has the same timeout, so their slow moments come in launch order. Attempts
 * wait in a FIFO; one timer, armed for the oldest unsettled one, marks the
 * overdue ones slow. Settled attempts leave the front as they settle, so the
 * queue holds little more than the attempts actually in flight, and in steady
 * traffic the timer is re-armed at most once per `timeout`, not per query.
 */
class SlowWatch {
  #queue: Attempt[] = [];
  #head = 0;
  #timer: ClockTimer | undefined = undefined;
  #firing = false;

  constructor(
    readonly timeout: number,
    readonly clock: Clock,
  ) {}

  add(att: Attempt): void {
    this.#queue.push(att);
    if (this.#timer === undefined && !this.#firing) this.#arm(this.timeout);
  }

  /** An attempt settled: drop the settled ones from the front. */
  settled(): void {
    const q = this.#queue;
    let h = this.#head;
    while (h < q.length && q[h]!.settled) h++;
    if (h === q.length) {
      q.length = 0;
      h = 0;
    } else if (h > 1024 && h * 2 > q.length) {
      q.splice(0, h);
      h = 0;
    }
    this.#head = h;
  }

  #arm(ms: number): void {
    const t = this.clock.setTimeout(() => this.#fire(), ms);
    (t as NodeJS.Timeout).unref?.();
    this.#timer = t;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#firing = true;
    const q = this.#queue;
    const now = this.clock.now();
    // Attempts started by onSlow land at the back with a later due time: the loop stops before them.
    while (this.#head < q.length) {
      const att = q[this.#head]!;
      if (!att.settled) {
        if (att.start + this.timeout > now) break;
        att.owner?.onSlow(att);
      }
      this.#head++;
    }
    this.#firing = false;
    if (this.#head === q.length) {
      q.length = 0;
      this.#head = 0;
    } else this.#arm(Math.max(0, q[this.#head]!.start + this.timeout - now));
  }
}

/**
 * One upstream server: its transport, health and statistics. Shared by every
 * group that lists the same URL.
 */
export class UpstreamServer {
  /** Attempts outstanding (slow ones included), bounded by `maxInFlightPerUpstream`. */
  inFlight = 0;

  constructor(
    readonly url: string,
    readonly transport: Transport,
    readonly health: Health,
    readonly stats: UpstreamStats,
    readonly clock: Clock,
    /** Called when the upstream is marked down / comes back. */
    readonly hooks: { onDown?(s: UpstreamServer): void; onUp?(s: UpstreamServer): void } = {},
  ) {}

  /**
   * Sends the query once (the attempt may outlive its per-attempt timeout, up
   * to `deadline`), makes the reply ours ({@link forwardReply}: a malformed
   * one is a failed attempt) and records the outcome. Never rejects.
   */
  async attempt(att: Attempt, prep: PreparedQuery, deadline: number, signal: AbortSignal | undefined, retry: ReadonlySet<number>): Promise<Outcome> {
    this.stats.requests++;
    this.inFlight++;
    try {
      let reply = await this.transport.exchange(prep.query, { deadline, signal });
      let rcode = headerRcode(reply);
      if ((rcode === 1 || rcode === 4) && !hasOpt(reply)) {
        // FORMERR/NOTIMP without OPT to a query with OPT: an upstream that does
        // not speak EDNS. Ask again without it (RFC 6891 §7).
        const plain = withoutOpt(prep.query);
        if (plain !== null) {
          this.stats.ednsFallbacks++;
          reply = await this.transport.exchange(plain, { deadline, signal });
          rcode = headerRcode(reply);
        }
      }
      reply = forwardReply(reply, prep);
      const rtt = elapsedMs(this.clock, att.start, att.hrStart);
      if (att.slow) this.stats.late++;
      // Any reply shows the upstream is alive: an rcode answer moves the query
      // on (below) but never marks the upstream down.
      if (this.health.success(rtt)) this.hooks.onUp?.(this);
      if (retry.has(rcode)) {
        this.stats.failures.rcode++;
        return { ok: false, reply, error: new UpstreamError('BAD_RESPONSE', `answered ${RCODE_NAMES[rcode] ?? `rcode ${rcode}`}`, this.url) };
      }
      this.stats.observeRtt(rtt);
      return { ok: true, reply };
    } catch (e) {
      const err = e instanceof UpstreamError ? e : new UpstreamError('NETWORK', (e as Error)?.message ?? String(e), this.url, { cause: e });
      const failure = err.code === 'TIMEOUT' ? 'timeout' : err.code === 'NETWORK' ? 'network' : err.code === 'BAD_RESPONSE' ? 'protocol' : undefined;
      // ABORTED, CLOSED, BAD_QUERY, QUEUE_FULL: not the upstream's fault. A
      // slow attempt was already counted (as a timeout) when its timer fired.
      if (failure !== undefined && !att.slow) {
        this.stats.failures[failure]++;
        this.#failed(elapsedMs(this.clock, att.start, att.hrStart));
      }
      return {
        ok: false,
        error: err.upstream === undefined ? new UpstreamError(err.code, err.message.replace('plugin/upstream: ', ''), this.url, { cause: err }) : err,
      };
    } finally {
      this.inFlight--;
    }
  }

  /** The attempt's own timeout passed: a timeout for health and stats; the attempt goes on. */
  slow(att: Attempt): void {
    att.slow = true;
    this.stats.failures.timeout++;
    this.#failed(elapsedMs(this.clock, att.start, att.hrStart));
  }

  /** Background health probe (`. IN NS`): any reply is a success. Resolves true when the upstream answered. */
  async probe(deadline: number): Promise<boolean> {
    const start = this.clock.now();
    const hrStart = performance.now();
    this.stats.requests++;
    try {
      await this.transport.exchange(PROBE, { deadline });
      if (this.health.success(elapsedMs(this.clock, start, hrStart))) this.hooks.onUp?.(this);
      return true;
    } catch (e) {
      const code = e instanceof UpstreamError ? e.code : 'NETWORK';
      if (code === 'TIMEOUT') this.stats.failures.timeout++;
      else if (code === 'NETWORK') this.stats.failures.network++;
      else if (code === 'BAD_RESPONSE') this.stats.failures.protocol++;
      else return false;
      this.#failed(elapsedMs(this.clock, start, hrStart));
      return false;
    }
  }

  #failed(penaltyMs: number): void {
    if (this.health.failure(this.clock.now(), penaltyMs)) this.hooks.onDown?.(this);
  }
}

/** True when `msg` has an OPT record (false for a malformed one: the caller validates later). */
function hasOpt(msg: Buffer): boolean {
  try {
    return new MessageReader(msg).optOffset >= 0;
  } catch {
    return false;
  }
}

/** `query` without its OPT record when that record is the last one (as in queries built by `prepareQuery`), else null. */
export function withoutOpt(query: Buffer): Buffer | null {
  let opt: number;
  let arcount: number;
  try {
    const r = new MessageReader(query);
    opt = r.optOffset;
    arcount = r.arcount;
  } catch {
    return null;
  }
  if (opt < 0 || opt + 11 > query.length || opt + 11 + query.readUInt16BE(opt + 9) !== query.length) return null;
  const out = Buffer.from(query.subarray(0, opt));
  out.writeUInt16BE(arcount - 1, 10);
  return out;
}

/** Options of {@link UpstreamGroup}. */
export interface UpstreamGroupOptions {
  strategy: Strategy;
  /** Per-attempt timeout in ms: after it the next attempt starts (the slow one may still answer). */
  timeout: number;
  /** Attempts per query, cycling through the ordered upstreams. */
  maxAttempts: number;
  /** Rcodes after which the next upstream is tried (the answer is kept as a last resort). */
  retry: ReadonlySet<number>;
  /** Attempts outstanding per upstream; a saturated upstream is skipped. */
  maxInFlightPerUpstream: number;
  clock: Clock;
}

/** Errors after which no further attempt makes sense. */
function fatal(err: UpstreamError): boolean {
  return err.code === 'ABORTED' || err.code === 'CLOSED' || err.code === 'BAD_QUERY';
}

/**
 * A set of upstreams answering the same questions, tried in the order the
 * strategy gives. An attempt that outlives `timeout` starts the next one but
 * stays in the race until the query's deadline: the first good reply of any
 * attempt wins. A failed attempt (network error, malformed reply, retry
 * rcode) starts the next one at once.
 */
export class UpstreamGroup {
  #rr = 0;
  /** @internal Marks attempts slow when their timeout passes. */
  readonly slowWatch: SlowWatch;

  constructor(
    /** Group name (`default` or the forwarded domain). */
    readonly name: string,
    readonly servers: readonly UpstreamServer[],
    readonly options: UpstreamGroupOptions,
  ) {
    this.slowWatch = new SlowWatch(options.timeout, options.clock);
  }

  /** The order in which upstreams are tried for one query. */
  order(now: number): UpstreamServer[] {
    const up: UpstreamServer[] = [];
    let down: UpstreamServer[] | undefined;
    for (const s of this.servers) {
      if (s.health.available(now)) up.push(s);
      else (down ??= []).push(s);
    }
    switch (this.options.strategy) {
      case 'sequential':
        break;
      case 'round-robin':
        if (up.length > 1) {
          const k = this.#rr++ % up.length;
          if (this.#rr >= 0x3fffffff) this.#rr = 0;
          if (k > 0) up.push(...up.splice(0, k));
        }
        break;
      case 'random':
      case 'parallel':
        for (let i = up.length - 1; i > 0; i--) {
          const j = randomBelow(i + 1);
          const t = up[i]!;
          up[i] = up[j]!;
          up[j] = t;
        }
        break;
      case 'fastest':
        if (up.length > 1) fastestOrder(up);
        break;
    }
    if (down !== undefined) {
      down.sort((a, b) => a.health.downUntil - b.health.downUntil);
      for (const s of down) up.push(s);
    }
    return up;
  }

  /**
   * Resolves `prep` through this group by `deadline`. Resolves with the first
   * good reply (made ours; `prep.upstream` names who sent it); if only
   * retry-rcode answers came back, the last of them; otherwise rejects with
   * {@link UpstreamExhaustedError}, `OVERLOADED` (every upstream saturated),
   * or the fatal error (aborted, closed, bad query).
   */
  resolve(prep: PreparedQuery, deadline: number, signal?: AbortSignal): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      new Resolution(this, prep, deadline, signal, resolve, reject).begin();
    });
  }
}

/** The state of one query's resolution through a group. */
class Resolution {
  readonly order: UpstreamServer[];
  next = 0;
  launched = 0;
  /** Attempts not settled yet. */
  pending = 0;
  /** Attempts not settled and not slow: while one runs, no new attempt starts (except on failure). */
  active = 0;
  done = false;
  saturated = false;
  errors: UpstreamError[] | undefined = undefined;
  fallback: Buffer | undefined = undefined;
  fallbackFrom = '';
  /** Upstreams that answered with a retry rcode: not asked again for this query. */
  answered: Set<UpstreamServer> | undefined = undefined;
  /** Made when a later attempt starts, so that the losers can be cancelled. */
  controller: AbortController | undefined = undefined;
  /**
   * The first attempts (one, two for `parallel`) are not cancelled when
   * another wins: they run on in the background and update health and RTT.
   */
  initial = 1;
  /** Forwards the caller's abort to {@link controller}; removed when the resolution ends. */
  onCallerAbort: (() => void) | undefined = undefined;

  constructor(
    readonly group: UpstreamGroup,
    readonly prep: PreparedQuery,
    readonly deadline: number,
    readonly signal: AbortSignal | undefined,
    readonly resolve: (b: Buffer) => void,
    readonly reject: (e: Error) => void,
  ) {
    this.order = group.order(group.options.clock.now());
  }

  begin(): void {
    const o = this.group.options;
    const order = this.order;
    // parallel asks two *available* upstreams (down ones sort last).
    if (o.strategy === 'parallel' && order.length >= 2 && o.maxAttempts >= 2 && order[1]!.health.available(o.clock.now())) {
      this.initial = 2;
      this.launch();
    }
    if (!this.launch() && this.pending === 0) this.exhausted();
  }

  #pick(): UpstreamServer | undefined {
    const order = this.order;
    const limit = this.group.options.maxInFlightPerUpstream;
    for (let tries = 0; tries < order.length; tries++) {
      const s = order[this.next++ % order.length]!;
      if (this.answered?.has(s)) continue;
      if (s.inFlight >= limit) {
        this.saturated = true;
        continue;
      }
      return s;
    }
    return undefined;
  }

  /** Starts the next attempt; false when none may start (attempts used up, deadline passed, nobody left). */
  launch(): boolean {
    const o = this.group.options;
    if (this.done || this.launched >= o.maxAttempts) return false;
    const now = o.clock.now();
    if (now >= this.deadline) return false;
    const server = this.#pick();
    if (server === undefined) return false;
    let signal = this.signal;
    if (this.launched >= this.initial) {
      if (this.controller === undefined) {
        const c = new AbortController();
        this.controller = c;
        if (this.signal !== undefined) {
          this.onCallerAbort = () => c.abort();
          this.signal.addEventListener('abort', this.onCallerAbort, { once: true });
        }
      }
      signal = this.controller.signal;
    }
    this.launched++;
    this.pending++;
    this.active++;
    const att = new Attempt(server, now, this);
    if (now + o.timeout < this.deadline) this.group.slowWatch.add(att);
    server.attempt(att, this.prep, this.deadline, signal, o.retry).then((out) => this.onOutcome(att, out));
    return true;
  }

  onSlow(att: Attempt): void {
    if (att.settled) return;
    // Counted even after another attempt won: a parallel loser still tells us its upstream is slow.
    att.server.slow(att);
    if (this.done) return;
    this.active--;
    if (this.active === 0) this.launch();
  }

  onOutcome(att: Attempt, out: Outcome): void {
    att.settled = true;
    this.pending--;
    this.group.slowWatch.settled();
    if (this.done) return;
    if (!att.slow) this.active--;
    if (out.ok) {
      this.finish();
      this.prep.upstream = att.server.url;
      this.resolve(out.reply);
      return;
    }
    if (out.reply !== undefined) {
      this.fallback = out.reply;
      this.fallbackFrom = att.server.url;
      (this.answered ??= new Set()).add(att.server);
    }
    if (fatal(out.error)) {
      this.finish();
      this.reject(out.error);
      return;
    }
    (this.errors ??= []).push(out.error);
    if (this.active > 0) return;
    if (!this.launch() && this.pending === 0) this.exhausted();
  }

  finish(): void {
    this.done = true;
    if (this.controller !== undefined) {
      this.controller.abort();
      if (this.onCallerAbort !== undefined) this.signal!.removeEventListener('abort', this.onCallerAbort);
    }
  }

  exhausted(): void {
    this.finish();
    if (this.fallback !== undefined) {
      this.prep.upstream = this.fallbackFrom;
      this.resolve(this.fallback);
    } else if (this.errors === undefined && this.saturated) {
      this.reject(
        new UpstreamError('OVERLOADED', `every upstream of group ${this.group.name} has ${this.group.options.maxInFlightPerUpstream} attempts in flight`),
      );
    } else this.reject(new UpstreamExhaustedError(this.errors ?? [], 'deadline passed before any attempt'));
  }
}

/** In place: first a weighted random draw by 1/RTT, then the rest fastest first. */
function fastestOrder(list: UpstreamServer[]): void {
  let known = Number.POSITIVE_INFINITY;
  for (const s of list) if (s.health.rtt > 0 && s.health.rtt < known) known = s.health.rtt;
  // An unmeasured upstream is assumed as fast as the fastest known one, so it gets measured.
  const rttOf = (s: UpstreamServer) => (s.health.rtt > 0 ? s.health.rtt : Number.isFinite(known) ? known : 1);
  let total = 0;
  for (const s of list) total += 1 / rttOf(s);
  let r = Math.random() * total;
  let pick = list.length - 1;
  for (let i = 0; i < list.length; i++) {
    r -= 1 / rttOf(list[i]!);
    if (r <= 0) {
      pick = i;
      break;
    }
  }
  const first = list[pick]!;
  list.splice(pick, 1);
  list.sort((a, b) => rttOf(a) - rttOf(b));
  list.unshift(first);
}
