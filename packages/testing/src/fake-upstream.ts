/**
 * A scriptable DNS server on loopback (UDP + TCP on the same port) for
 * testing forwarding, caching and failure handling against real sockets.
 */
import { Buffer } from 'node:buffer';
import dgram from 'node:dgram';
import net from 'node:net';
import { decode, encode, OptionCode, truncateForUdp } from '@heimdall/core/packet';
import type { Message, MessageInit, ResourceRecordInit } from '@heimdall/core';
import { type CodeLike, type RecordLike, toRcode, toType } from './builders.js';

/** A query the fake upstream received. */
export interface ReceivedQuery {
  readonly transport: 'udp' | 'tcp';
  /** Question name as sent (letter case kept). */
  readonly name: string;
  readonly type: number;
  readonly id: number;
  /** The decoded query. */
  readonly message: Message;
  /** The raw bytes. */
  readonly bytes: Buffer;
  /** Sender's address and port. */
  readonly from: { readonly address: string; readonly port: number };
}

/** What to do with one query. Everything is optional: `{}` answers NOERROR with no records. */
export interface UpstreamBehaviour {
  answers?: Array<RecordLike | ResourceRecordInit>;
  authorities?: Array<RecordLike | ResourceRecordInit>;
  additionals?: Array<RecordLike | ResourceRecordInit>;
  /** Default NOERROR. */
  rcode?: CodeLike;
  aa?: boolean;
  ad?: boolean;
  /** An extended DNS error in the response (adds EDNS). */
  ede?: { code: number; text?: string };
  /** Wait this long before replying. */
  delayMs?: number;
  /** Never reply. */
  drop?: boolean;
  /** Over UDP reply with TC=1 and no records (the full answer comes over TCP). */
  truncate?: boolean;
  /** Reply with another message ID. */
  wrongId?: boolean;
  /** Reply with another question name. */
  wrongQuestion?: boolean;
  /** Over UDP, reply from a different source port (a spoofing attempt). */
  fromOtherPort?: boolean;
  /** Send these bytes instead of a built response (garbage, a response to something else…). */
  raw?: Buffer | ((query: Buffer) => Buffer);
}

/** How to answer a name/type: fixed records, a behaviour, or a function of the query. */
export type UpstreamAnswer =
  | Array<RecordLike | ResourceRecordInit>
  | UpstreamBehaviour
  | ((
      query: ReceivedQuery,
    ) => UpstreamBehaviour | Array<RecordLike | ResourceRecordInit> | Promise<UpstreamBehaviour | Array<RecordLike | ResourceRecordInit>>);

/** Options of {@link FakeUpstream.start}. */
export interface FakeUpstreamOptions {
  /** Loopback address to bind. Default `127.0.0.1` (use `::1` for IPv6). */
  address?: string;
  /** Serve TCP too (same port). Default true. */
  tcp?: boolean;
  /** Answer for names with no rule. Default `{ rcode: 'NXDOMAIN' }`. */
  fallback?: UpstreamAnswer;
}

function key(name: string, type: CodeLike | '*'): string {
  return `${name.replace(/\.$/, '').toLowerCase()}|${type === '*' ? '*' : toType(type)}`;
}

function toRecord(r: RecordLike | ResourceRecordInit): ResourceRecordInit {
  return { name: r.name.replace(/\.$/, ''), type: toType(r.type), class: 1, ttl: r.ttl ?? 300, data: r.data };
}

/**
 * A fake DNS upstream. Rules are looked up by (name, type), then (name, `*`);
 * one-shot rules added with {@link FakeUpstream.once} take precedence, in
 * order, and are consumed.
 *
 * @example
 * const up = await FakeUpstream.start();
 * up.on('example.com', 'A', [record('example.com', 'A', '192.0.2.1')]);
 * up.once('slow.example', 'A', { delayMs: 500 });
 * up.once('example.com', 'A', { truncate: true });   // next UDP query gets TC=1
 * // … point the plugin under test at `${up.address}:${up.port}` …
 * expect(up.count('example.com', 'A', 'tcp')).toBe(1);
 * await up.close();
 */
export class FakeUpstream {
  /** Every query received, in arrival order. */
  readonly received: ReceivedQuery[] = [];
  /** Queries received per transport. */
  readonly counts = { udp: 0, tcp: 0 };
  private readonly rules = new Map<string, UpstreamAnswer>();
  private readonly onceRules: Array<{ key: string; answer: UpstreamAnswer }> = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sockets = new Set<net.Socket>();
  private fallback: UpstreamAnswer;
  private closed = false;
  private waiters: Array<{ n: number; resolve: () => void; reject: (e: Error) => void }> = [];

  private constructor(
    private readonly udp: dgram.Socket,
    private readonly other: dgram.Socket,
    private readonly tcp: net.Server | null,
    /** The bound address. */
    readonly address: string,
    /** The bound port (UDP and TCP). */
    readonly port: number,
    options: FakeUpstreamOptions,
  ) {
    this.fallback = options.fallback ?? { rcode: 'NXDOMAIN' };
    udp.on('message', (msg, rinfo) => this.onUdp(msg, rinfo));
    udp.on('error', () => {});
    other.on('error', () => {});
    tcp?.on('connection', (s) => this.onTcp(s));
  }

  /** Starts a fake upstream on a free loopback port (UDP and TCP share the port). */
  static async start(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
    const address = options.address ?? '127.0.0.1';
    const type = net.isIPv6(address) ? 'udp6' : 'udp4';
    const withTcp = options.tcp ?? true;
    for (let attempt = 0; attempt < 20; attempt++) {
      const udp = dgram.createSocket(type);
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(0, address, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      const port = udp.address().port;
      let tcp: net.Server | null = null;
      if (withTcp) {
        tcp = net.createServer({ allowHalfOpen: false });
        const ok = await new Promise<boolean>((resolve) => {
          tcp!.once('error', () => resolve(false));
          tcp!.listen(port, address, () => resolve(true));
        });
        if (!ok) {
          udp.close();
          continue;
        }
      }
      const other = dgram.createSocket(type);
      await new Promise<void>((resolve) => other.bind(0, address, () => resolve()));
      return new FakeUpstream(udp, other, tcp, address, port, options);
    }
    throw new Error('FakeUpstream: could not bind UDP and TCP on one free port after 20 attempts');
  }

  /** `address:port` (IPv6 in brackets), as upstream plugins usually take it. */
  get endpoint(): string {
    return net.isIPv6(this.address) ? `[${this.address}]:${this.port}` : `${this.address}:${this.port}`;
  }

  /** Sets the answer for `name`/`type` (`'*'` for any type), replacing a previous rule. */
  on(name: string, type: CodeLike | '*', answer: UpstreamAnswer): this {
    this.rules.set(key(name, type), answer);
    return this;
  }

  /** Queues a one-shot answer for the next matching query (checked before `on` rules, in order). */
  once(name: string, type: CodeLike | '*', answer: UpstreamAnswer): this {
    this.onceRules.push({ key: key(name, type), answer });
    return this;
  }

  /** Sets the answer for names without a rule. */
  otherwise(answer: UpstreamAnswer): this {
    this.fallback = answer;
    return this;
  }

  /** Number of received queries matching name/type/transport (each optional). */
  count(name?: string, type?: CodeLike, transport?: 'udp' | 'tcp'): number {
    const n = name?.replace(/\.$/, '').toLowerCase();
    const t = type === undefined ? undefined : toType(type);
    return this.received.filter(
      (q) => (n === undefined || q.name.toLowerCase() === n) && (t === undefined || q.type === t) && (transport === undefined || q.transport === transport),
    ).length;
  }

  /** Resolves once at least `n` queries have been received in total (rejects after `timeoutMs`, default 5000). */
  waitForQueries(n: number, timeoutMs = 5000): Promise<void> {
    if (this.received.length >= n) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`FakeUpstream: ${this.received.length}/${n} queries after ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
    });
  }

  /** Forgets received queries, counts and rules (keeps the sockets). */
  reset(): void {
    this.received.length = 0;
    this.counts.udp = 0;
    this.counts.tcp = 0;
    this.rules.clear();
    this.onceRules.length = 0;
  }

  /** Number of open TCP connections from clients. */
  get tcpConnections(): number {
    return this.sockets.size;
  }

  /** Closes every socket and cancels pending delayed replies. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters) w.reject(new Error('FakeUpstream closed'));
    this.waiters = [];
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.sockets) s.destroy();
    await Promise.all([
      new Promise<void>((r) => this.udp.close(() => r())),
      new Promise<void>((r) => this.other.close(() => r())),
      this.tcp ? new Promise<void>((r) => this.tcp!.close(() => r())) : Promise.resolve(),
    ]);
  }

  private record(transport: 'udp' | 'tcp', bytes: Buffer, from: { address: string; port: number }): ReceivedQuery | null {
    let message: Message;
    try {
      message = decode(bytes);
    } catch {
      return null;
    }
    const q = message.questions[0];
    const rq: ReceivedQuery = { transport, name: q?.name ?? '', type: q?.type ?? 0, id: message.id, message, bytes: Buffer.from(bytes), from };
    this.received.push(rq);
    this.counts[transport]++;
    const ready = this.waiters.filter((w) => this.received.length >= w.n);
    this.waiters = this.waiters.filter((w) => this.received.length < w.n);
    for (const w of ready) w.resolve();
    return rq;
  }

  private async behaviour(q: ReceivedQuery): Promise<UpstreamBehaviour> {
    const exact = key(q.name, q.type);
    const any = key(q.name, '*');
    let answer: UpstreamAnswer | undefined;
    const i = this.onceRules.findIndex((r) => r.key === exact || r.key === any);
    if (i >= 0) answer = this.onceRules.splice(i, 1)[0].answer;
    else answer = this.rules.get(exact) ?? this.rules.get(any) ?? this.fallback;
    let b = typeof answer === 'function' ? await answer(q) : answer;
    if (Array.isArray(b)) b = { answers: b };
    return b;
  }

  private build(q: ReceivedQuery, b: UpstreamBehaviour, transport: 'udp' | 'tcp'): Buffer | null {
    if (b.raw !== undefined) return typeof b.raw === 'function' ? b.raw(q.bytes) : b.raw;
    const m = q.message;
    const question = m.questions[0];
    const tc = transport === 'udp' && b.truncate === true;
    const msg: MessageInit = {
      id: b.wrongId ? (m.id + 1) & 0xffff : m.id,
      qr: true,
      opcode: m.opcode,
      aa: b.aa ?? false,
      tc,
      rd: m.rd,
      ra: true,
      ad: b.ad ?? false,
      cd: m.cd,
      rcode: toRcode(b.rcode ?? 0),
      questions: question ? [{ name: b.wrongQuestion ? `wrong-${question.name}` : question.name, type: question.type, class: question.class }] : [],
      answers: tc ? [] : (b.answers ?? []).map(toRecord),
      authorities: tc ? [] : (b.authorities ?? []).map(toRecord),
      additionals: tc ? [] : (b.additionals ?? []).map(toRecord),
    };
    if (m.edns || b.ede) {
      msg.edns = {
        udpPayloadSize: 1232,
        dnssecOk: m.edns?.dnssecOk ?? false,
        options: b.ede ? [{ code: OptionCode.EDE, infoCode: b.ede.code, extraText: b.ede.text }] : [],
      };
    }
    let out = encode(msg);
    if (transport === 'udp') {
      const limit = m.edns ? Math.max(512, Math.min(m.edns.udpPayloadSize, 4096)) : 512;
      if (out.length > limit) out = truncateForUdp(out, limit);
    }
    return out;
  }

  private later(ms: number | undefined, fn: () => void): void {
    if (this.closed) return;
    if (!ms) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  private onUdp(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const q = this.record('udp', msg, { address: rinfo.address, port: rinfo.port });
    if (q === null) return;
    this.behaviour(q).then(
      (b) => {
        if (b.drop) return;
        const out = this.build(q, b, 'udp');
        if (out === null) return;
        this.later(b.delayMs, () => {
          const sock = b.fromOtherPort ? this.other : this.udp;
          sock.send(out, rinfo.port, rinfo.address, () => {});
        });
      },
      () => {},
    );
  }

  private onTcp(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    let buf: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const q = this.record('tcp', msg, { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 });
        if (q === null) continue;
        this.behaviour(q).then(
          (b) => {
            if (b.drop) return;
            const out = this.build(q, b, 'tcp');
            if (out === null) return;
            this.later(b.delayMs, () => {
              if (socket.destroyed) return;
              const framed = Buffer.allocUnsafe(out.length + 2);
              framed.writeUInt16BE(out.length, 0);
              out.copy(framed, 2);
              socket.write(framed);
            });
          },
          () => {},
        );
      }
    });
  }
}
