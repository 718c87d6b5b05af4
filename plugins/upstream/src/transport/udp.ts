import type { Buffer } from 'node:buffer';
import dgram from 'node:dgram';
import type { Clock } from '@heimdall/core';
import { systemClock } from '@heimdall/core/pipeline';
import { UpstreamError } from '../errors.js';
import { randomId } from '../random.js';
import { copyWithId, getId, isResponse, questionEnd, sameQuestion, setId } from '../wire.js';
import { arm, disarm, type Exchanging, refusal } from './request.js';
import type { ExchangeOptions, Transport, TransportEvents } from './types.js';

/** Options of {@link UdpTransport}. */
export interface UdpTransportOptions {
  /** Server IP address (no brackets). */
  host: string;
  port: number;
  family: 4 | 6;
  /** Label for errors and metrics. Default `udp://host:port`. */
  url?: string;
  clock?: Clock;
  events?: TransportEvents;
  /** Sockets kept open at once, each bound to its own kernel-chosen random port. Default 4 (1–64). */
  sockets?: number;
  /** Queries sent through one socket before it is retired and a fresh random port is bound. Default 64 (1–16384; IDs stay unique per socket). */
  queriesPerSocket?: number;
}

interface Pending extends Exchanging {
  readonly slot: Slot;
  readonly id: number;
  readonly sent: Buffer;
}

class Slot {
  readonly pending = new Map<number, Pending>();
  /** IDs of queries that timed out on this socket: their late replies are ignored without counting a spoof. */
  expired: Set<number> | undefined;
  used = 0;
  retired = false;
  closed = false;
  connected = false;
  ready: Promise<void>;
  constructor(readonly socket: dgram.Socket) {
    this.ready = Promise.resolve();
  }
}

/**
 * DNS over UDP to one server (RFC 1035 §4.2.1), hardened against off-path
 * spoofing as RFC 5452 asks.
 *
 * Source ports: a small pool of sockets (default 4), each bound to a port the
 * kernel picks at random, retired after `queriesPerSocket` queries (default
 * 64) and replaced by a freshly bound one. A socket per query would give a
 * new port every time but costs a bind and a libuv handle per query; rotating
 * every 64 queries keeps ports short-lived while the hot path only does a
 * `send`. Sockets are `connect()`ed to the server (like Unbound's
 * `udp-connect`): the kernel then drops datagrams from any other address or
 * port before they reach us, and an ICMP port-unreachable fails the attempt
 * at once (`ECONNREFUSED`) instead of waiting for the timeout.
 *
 * Every query gets a fresh ID from a CSPRNG, unique among the socket's
 * pending queries. A datagram is accepted only if its source address and
 * port, ID and question (case-insensitive name, exact type and class) match a
 * pending query and QR is set; anything else is dropped, counted through
 * `events.onSpoof`, and the real reply is still awaited.
 */
export class UdpTransport implements Transport {
  readonly protocol = 'udp' as const;
  readonly url: string;
  readonly #host: string;
  readonly #port: number;
  readonly #family: 4 | 6;
  readonly #clock: Clock;
  readonly #events: TransportEvents;
  readonly #perSocket: number;
  readonly #slots: (Slot | undefined)[];
  readonly #retired = new Set<Slot>();
  #next = 0;
  #closed = false;

  constructor(options: UdpTransportOptions) {
    this.#host = options.host;
    this.#port = options.port;
    this.#family = options.family;
    this.url = options.url ?? (options.family === 6 ? `udp://[${options.host}]:${options.port}` : `udp://${options.host}:${options.port}`);
    this.#clock = options.clock ?? systemClock;
    this.#events = options.events ?? {};
    this.#perSocket = options.queriesPerSocket ?? 64;
    this.#slots = new Array(options.sockets ?? 4).fill(undefined);
  }

  exchange(query: Buffer, options: ExchangeOptions): Promise<Buffer> {
    const qEnd = questionEnd(query);
    const refused = refusal(this.#closed, query, qEnd, options, this.url);
    if (refused !== null) return Promise.reject(refused);
    const slot = this.#pick();
    let id = randomId();
    while (slot.pending.has(id) || slot.expired?.has(id)) id = randomId();
    const sent = copyWithId(query, id);
    return new Promise<Buffer>((resolve, reject) => {
      const p: Pending = { slot, id, origId: getId(query), sent, qEnd, resolve, reject, timer: undefined, signal: undefined, onAbort: undefined };
      slot.pending.set(id, p);
      arm(
        p,
        options,
        this.#clock,
        this.url,
        (err) => this.#fail(p, err),
        // Sockets rotate every `queriesPerSocket` queries, so this set stays small and dies with its socket.
        () => (slot.expired ??= new Set()).add(p.id),
      );
      if (slot.connected) this.#send(p);
      else
        slot.ready.then(
          () => this.#send(p),
          (err) => this.#fail(p, err),
        );
    });
  }

  #send(p: Pending): void {
    if (!p.slot.pending.has(p.id) || p.slot.closed) return;
    // No callback: Node then skips a request object and a nextTick per send;
    // a send error surfaces as the socket's 'error' event, which fails the
    // slot's pending queries (they all go to this server).
    try {
      p.slot.socket.send(p.sent);
    } catch (err) {
      this.#fail(p, new UpstreamError('NETWORK', `send failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, this.url, { cause: err }));
    }
  }

  #pick(): Slot {
    const i = this.#next;
    this.#next = i + 1 === this.#slots.length ? 0 : i + 1;
    let slot = this.#slots[i];
    if (slot === undefined || slot.retired) {
      slot = this.#open();
      this.#slots[i] = slot;
    }
    if (++slot.used >= this.#perSocket) {
      // Retire now (closed once its last pending query settles, which includes
      // the one about to be sent): the next query through this index binds a
      // new random port.
      slot.retired = true;
      this.#retired.add(slot);
      this.#slots[i] = undefined;
    }
    return slot;
  }

  #open(): Slot {
    const socket = dgram.createSocket({ type: this.#family === 6 ? 'udp6' : 'udp4' });
    const slot = new Slot(socket);
    socket.unref();
    slot.ready = new Promise<void>((resolve, reject) => {
      const onError = (err: Error) =>
        reject(new UpstreamError('NETWORK', `connect failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`, this.url, { cause: err }));
      socket.once('error', onError);
      socket.connect(this.#port, this.#host, () => {
        socket.off('error', onError);
        slot.connected = true;
        resolve();
      });
    });
    slot.ready.catch(() => this.#drop(slot));
    socket.on('message', (msg, rinfo) => this.#onMessage(slot, msg, rinfo));
    socket.on('error', (err) => {
      if (!slot.connected) return;
      // Connected UDP: errors (ICMP unreachable → ECONNREFUSED) concern this server.
      const e = new UpstreamError('NETWORK', `${(err as NodeJS.ErrnoException).code ?? err.message}`, this.url, { cause: err });
      for (const p of [...slot.pending.values()]) this.#fail(p, e);
      this.#drop(slot);
    });
    return slot;
  }

  #onMessage(slot: Slot, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (rinfo.port !== this.#port || rinfo.address !== this.#host) {
      this.#events.onSpoof?.('source');
      return;
    }
    if (msg.length < 12) {
      this.#events.onSpoof?.('malformed');
      return;
    }
    const id = getId(msg);
    const p = slot.pending.get(id);
    if (p === undefined) {
      if (slot.expired?.delete(id)) return; // a late reply, not a spoof
      this.#events.onSpoof?.('id');
      return;
    }
    if (!isResponse(msg) || !sameQuestion(p.sent, p.qEnd, msg)) {
      this.#events.onSpoof?.('question');
      return;
    }
    this.#finish(p);
    setId(msg, p.origId);
    p.resolve(msg);
  }

  #fail(p: Pending, err: Error): void {
    if (p.slot.pending.get(p.id) !== p) return;
    this.#finish(p);
    p.reject(err);
  }

  #finish(p: Pending): void {
    const slot = p.slot;
    slot.pending.delete(p.id);
    disarm(p, this.#clock);
    if (slot.retired && slot.pending.size === 0) this.#closeSlot(slot);
  }

  #retire(slot: Slot): void {
    slot.retired = true;
    if (slot.pending.size === 0) this.#closeSlot(slot);
    else this.#retired.add(slot);
  }

  #drop(slot: Slot): void {
    const i = this.#slots.indexOf(slot);
    if (i >= 0) this.#slots[i] = undefined;
    this.#retire(slot);
  }

  #closeSlot(slot: Slot): void {
    this.#retired.delete(slot);
    if (slot.closed) return;
    slot.closed = true;
    try {
      slot.socket.close();
    } catch {
      // already closed
    }
  }

  /** Number of sockets currently open (pool + retired ones still draining). For tests and stats. */
  get openSockets(): number {
    let n = this.#retired.size;
    for (const s of this.#slots) if (s && !s.closed) n++;
    return n;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const err = new UpstreamError('CLOSED', 'transport closed', this.url);
    const slots = [...this.#slots, ...this.#retired];
    for (const slot of slots) {
      if (!slot) continue;
      for (const p of [...slot.pending.values()]) this.#fail(p, err);
      this.#closeSlot(slot);
    }
    this.#slots.fill(undefined);
  }
}
