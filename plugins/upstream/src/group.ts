import { type Clock, MessageReader } from '@heimdall/core';
import { UpstreamError, UpstreamExhaustedError } from './errors.js';
import type { Health } from './health.js';
import { randomBelow } from './random.js';
import type { UpstreamStats } from './stats.js';
import type { Transport } from './transport/types.js';
import { headerRcode } from './wire.js';

/**
 * How a group picks the order in which its upstreams are tried:
 *
 * - `sequential`: configuration order, strict failover.
 * - `round-robin`: each query starts at the next upstream.
 * - `random`: a uniformly random order per query.
 * - `fastest`: the first upstream is drawn with probability inversely
 *   proportional to its RTT moving average (dnsproxy's load balancing), the
 *   rest follow fastest first.
 * - `parallel`: two upstreams are asked at once, the first good answer wins
 *   (Blocky's `parallel_best`); if both fail the others are tried in turn.
 *
 * In every strategy, upstreams marked down go last (soonest-to-recover
 * first), so an all-down group still tries its best candidate.
 */
export type Strategy = 'sequential' | 'round-robin' | 'random' | 'fastest' | 'parallel';

/** The strategies, for validation. */
export const STRATEGIES: readonly Strategy[] = ['sequential', 'round-robin', 'random', 'fastest', 'parallel'];

/** Result of one attempt. `reply` on failure is an answer with a retry rcode (kept as a last resort). */
export type Outcome = { ok: true; reply: Buffer } | { ok: false; reply?: Buffer; error: UpstreamError };

/** Rcode policy shared by all attempts. */
export interface RcodePolicy {
  /** Rcodes after which the next upstream is tried (the answer is kept as a last resort). */
  retry: ReadonlySet<number>;
  /** Rcodes that also count as a health failure. */
  unhealthy: ReadonlySet<number>;
}

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/**
 * One upstream server: its transport, health and statistics. Shared by every
 * group that lists the same URL.
 */
export class UpstreamServer {
  constructor(
    readonly url: string,
    readonly transport: Transport,
    readonly health: Health,
    readonly stats: UpstreamStats,
    readonly clock: Clock,
    /** Called when the upstream is marked down / comes back. */
    readonly hooks: { onDown?(s: UpstreamServer): void; onUp?(s: UpstreamServer): void } = {},
  ) {}

  /** Sends `query` once, within `deadline`, and records the outcome in health and stats. Never rejects. */
  async attempt(query: Buffer, deadline: number, signal: AbortSignal | undefined, rcodes: RcodePolicy): Promise<Outcome> {
    const start = this.clock.now();
    this.stats.requests++;
    try {
      let reply = await this.transport.exchange(query, { deadline, signal });
      let rcode = headerRcode(reply);
      if ((rcode === 1 || rcode === 4) && !hasOpt(reply)) {
        // FORMERR/NOTIMP without OPT to a query with OPT: an upstream that does
        // not speak EDNS. Ask again without it (RFC 6891 §7).
        const plain = withoutOpt(query);
        if (plain !== null) {
          this.stats.ednsFallbacks++;
          reply = await this.transport.exchange(plain, { deadline, signal });
          rcode = headerRcode(reply);
        }
      }
      const rtt = this.clock.now() - start;
      if (rcodes.retry.has(rcode)) {
        this.stats.failures.rcode++;
        if (rcodes.unhealthy.has(rcode)) this.#failed(rtt);
        else this.health.sample(rtt);
        return { ok: false, reply, error: new UpstreamError('BAD_RESPONSE', `answered ${RCODE_NAMES[rcode] ?? `rcode ${rcode}`}`, this.url) };
      }
      this.stats.observeRtt(rtt);
      if (this.health.success(rtt)) this.hooks.onUp?.(this);
      return { ok: true, reply };
    } catch (e) {
      const err = e instanceof UpstreamError ? e : new UpstreamError('NETWORK', (e as Error)?.message ?? String(e), this.url, { cause: e });
      const elapsed = this.clock.now() - start;
      switch (err.code) {
        case 'TIMEOUT':
          this.stats.failures.timeout++;
          this.#failed(elapsed);
          break;
        case 'NETWORK':
          this.stats.failures.network++;
          this.#failed(elapsed);
          break;
        case 'BAD_RESPONSE':
          this.stats.failures.protocol++;
          this.#failed(elapsed);
          break;
        default:
        // ABORTED, CLOSED, BAD_QUERY, QUEUE_FULL: not the upstream's fault.
      }
      return { ok: false, error: err };
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
export interface GroupOptions {
  strategy: Strategy;
  /** Per-attempt timeout in ms (each attempt also ends at the query deadline). */
  timeout: number;
  /** Attempts per query, cycling through the ordered upstreams. */
  maxAttempts: number;
  rcodes: RcodePolicy;
  clock: Clock;
}

/** Errors after which no further attempt makes sense. */
function fatal(err: UpstreamError): boolean {
  return err.code === 'ABORTED' || err.code === 'CLOSED' || err.code === 'BAD_QUERY';
}

/**
 * A set of upstreams answering the same questions, tried in the order the
 * {@link Strategy} gives, one attempt at a time (two at first for
 * `parallel`), each bounded by `timeout` and all by the query deadline.
 */
export class UpstreamGroup {
  #rr = 0;

  constructor(
    /** Group name (`default` or the forwarded domain). */
    readonly name: string,
    readonly servers: readonly UpstreamServer[],
    readonly options: GroupOptions,
  ) {}

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
   * Resolves `query` through this group. Returns the first good reply; if
   * only retry-rcode answers came back, the last of them; otherwise rejects
   * with {@link UpstreamExhaustedError} (or the fatal error: aborted, closed,
   * bad query).
   */
  async resolve(query: Buffer, deadline: number, signal?: AbortSignal): Promise<Buffer> {
    const { clock, timeout, maxAttempts, rcodes } = this.options;
    const now0 = clock.now();
    const order = this.order(now0);
    // Allocated only when an attempt fails (the usual query allocates none of these).
    let errors: UpstreamError[] | undefined;
    let fallback: Buffer | undefined;
    // Upstreams that answered with a retry rcode are not asked again for this
    // query (such an answer is deterministic); after a timeout or a network
    // error the same upstream may be tried again when the cycle comes round.
    let answered: Set<UpstreamServer> | undefined;
    let attempts = 0;
    let next = 0;
    // parallel asks two *available* upstreams (down ones sort last); with
    // fewer, it degrades to one at a time.
    if (this.options.strategy === 'parallel' && order.length >= 2 && maxAttempts >= 2 && order[1]!.health.available(now0)) {
      attempts = next = 2;
      const until = Math.min(deadline, clock.now() + timeout);
      const [a, b] = [order[0]!, order[1]!];
      const outs = await race([a, a.attempt(query, until, signal, rcodes)], [b, b.attempt(query, until, signal, rcodes)]);
      for (const [server, out] of outs) {
        if (out.ok) return out.reply;
        if (out.reply) {
          fallback = out.reply;
          (answered ??= new Set()).add(server);
        }
        if (fatal(out.error)) throw out.error;
        (errors ??= []).push(out.error);
      }
    }
    let skipped = 0;
    while (attempts < maxAttempts && skipped < order.length) {
      if (signal?.aborted) throw new UpstreamError('ABORTED', 'aborted');
      const now = clock.now();
      if (now >= deadline) break;
      const server = order[next++ % order.length]!;
      if (answered?.has(server)) {
        skipped++;
        continue;
      }
      skipped = 0;
      attempts++;
      const out = await server.attempt(query, Math.min(deadline, now + timeout), signal, rcodes);
      if (out.ok) return out.reply;
      if (out.reply) {
        fallback = out.reply;
        (answered ??= new Set()).add(server);
      }
      if (fatal(out.error)) throw out.error;
      (errors ??= []).push(out.error);
    }
    if (fallback !== undefined) return fallback;
    throw new UpstreamExhaustedError(errors ?? [], 'deadline passed before any attempt');
  }
}

type Tagged = [UpstreamServer, Outcome];

/** Resolves with the first `ok` outcome alone, or with both outcomes when neither is ok. */
function race(a: [UpstreamServer, Promise<Outcome>], b: [UpstreamServer, Promise<Outcome>]): Promise<Tagged[]> {
  return new Promise((resolve) => {
    const done: Tagged[] = [];
    let won = false;
    const settle = (server: UpstreamServer, o: Outcome) => {
      if (won) return;
      if (o.ok) {
        won = true;
        resolve([[server, o]]);
        return;
      }
      done.push([server, o]);
      if (done.length === 2) resolve(done);
    };
    a[1].then((o) => settle(a[0], o));
    b[1].then((o) => settle(b[0], o));
  });
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
