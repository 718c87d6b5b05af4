/**
 * The per-query context that flows through the middleware chain.
 *
 * Every field is assigned in the constructor (one stable hidden class); the
 * optional parts (`state`, `log`, `signal`) are created on first use, so a
 * query that nobody logs or awaits costs one object plus the query view.
 */
import { Buffer } from 'node:buffer';
import type { Logger } from 'pino';
import {
  decode,
  encode,
  MessageReader,
  nameToWire,
  namesEqual,
  OptionCode,
  Rcode,
  RecordType,
  type MessageInit,
  type ResourceRecordInit,
} from '../packet/index.js';
import { parseIPv4, parseIPv6 } from '../wire/ip.js';
import { cacheKeyOf, QuestionKeyInfo } from '../wire/key.js';
import type { Clock } from '../tokens.js';
import type { StateKey } from './state.js';
import type { ClientInfo } from './types.js';

/** An extended DNS error (RFC 8914) to attach to the response. */
export interface ExtendedError {
  /** INFO-CODE, see `EdeCode` (`EdeCode.Blocked === 15`). */
  readonly code: number;
  /** EXTRA-TEXT, UTF-8, for humans. Keep it short (it travels in every such response). */
  readonly text?: string;
}

/** What a response built by {@link DnsContext.reply} contains besides the echoed question. */
export interface ReplyInit {
  /** Response code, `Rcode.NOERROR` by default. Values above 15 are extended (sent via OPT), e.g. BADVERS (16). */
  rcode?: number;
  /** Authoritative answer bit. */
  aa?: boolean;
  /** Authentic data bit (only when the data was validated). */
  ad?: boolean;
  /** Recursion available bit; defaults to the resolver's setting (true). */
  ra?: boolean;
  answers?: readonly ResourceRecordInit[];
  authorities?: readonly ResourceRecordInit[];
  /** Additional records (without OPT: EDNS is echoed automatically). */
  additionals?: readonly ResourceRecordInit[];
}

/** Resolver-wide settings a context needs. One object per resolver, shared by all its contexts. */
export interface ContextEnv {
  /** Parent logger; `ctx.log` is a child of it. */
  readonly logger: Logger;
  readonly clock: Clock;
  /** UDP payload size we advertise in our OPT records (RFC 6891 §6.2.3). Default 1232. */
  readonly ednsPayloadSize: number;
  /** Value of the RA bit in built responses. Default true. */
  readonly recursionAvailable: boolean;
  /** Milliseconds from arrival to the query's deadline. */
  readonly queryTimeoutMs: number;
}

/** The memo behind {@link DnsContext.questionKey}, shared by every resolver in the process (16384 keys). */
const sharedKeyInfo = new QuestionKeyInfo(16384);

const HEADER = 12;
const OPT_FIXED = 11; // root name (1) + type (2) + class (2) + ttl (4) + rdlength (2)
const EDE_OPTION = 15; // RFC 8914 OPTION-CODE

/**
 * One query in flight: the request, who sent it, the response slot and
 * per-query scratch space for plugins.
 *
 * A middleware answers by assigning `ctx.response` (wire bytes) or calling
 * one of the answering helpers, which build a response that echoes the
 * query's ID, question, RD and CD bits and EDNS (an OPT record with our
 * payload size and the DO bit when the query had one). Never mutate a
 * response buffer in place: another plugin (a cache) may hold it.
 */
export class DnsContext {
  /**
   * Lazy zero-copy view of the request (header parsed, the rest on demand).
   * After {@link rewrite}, the rewritten question; the client's own stays in
   * {@link original}.
   */
  readonly query: MessageReader;
  /** The query bytes the chain works on (as received, or as rewritten). Do not modify. */
  readonly request: Buffer;
  /** Who asked, and over what. */
  readonly client: ClientInfo;
  /** The answer in wire format, or null while nobody answered. */
  response: Buffer | null;
  /**
   * Set to true to keep this answer out of every cache (the in-memory cache
   * and its tiers): an answer that depends on the client, a synthesized
   * one, a policy decision that can change.
   */
  noCache: boolean;
  /** The client's own request and question view when the query was {@link rewrite}n, else null. */
  original: { readonly request: Buffer; readonly query: MessageReader } | null;
  /** @internal Epoch ms of the deadline once fixed, else -1 (see {@link DnsContext.deadline}). */
  _deadline: number;
  /** @internal */ _env: ContextEnv;
  /** @internal Two inline state slots (no allocation for the common 1–2 keys), then pairs in `_state`. */
  _k0: StateKey<unknown> | undefined;
  /** @internal */ _v0: unknown;
  /** @internal */ _k1: StateKey<unknown> | undefined;
  /** @internal */ _v1: unknown;
  /** @internal [key, value, key, value, …] beyond the inline slots. */
  _state: unknown[] | undefined;
  /** @internal */ _log: Logger | undefined;
  /** @internal */ _abort: AbortController | undefined;
  /** @internal */ _expired: boolean;
  /** @internal */ _ede: ExtendedError[] | undefined;
  /** @internal EDNS of the query: undefined = not looked at yet, null = none. */
  _edns: QueryEdns | null | undefined;
  /** @internal Set by {@link drop}. */
  _dropped: boolean;
  /** @internal {@link questionKey}: undefined = not computed yet for the current request. */
  _qkey: string | null | undefined;
  /** @internal {@link questionNameEnd} */ _qkeyEnd: number;
  /** @internal {@link questionKeyFlags} */ _qkeyFlags: number;
  /** @internal {@link questionNameFolded} */ _qkeyFolded: boolean;

  /**
   * @param request the query bytes (the header must be valid; the resolver checks it first)
   * @param client who sent it
   * @param env resolver-wide settings
   * @param query an already-built view of `request`, to avoid parsing twice
   */
  constructor(request: Buffer, client: ClientInfo, env: ContextEnv, query?: MessageReader) {
    this.query = query ?? new MessageReader(request);
    this.request = request;
    this.client = client;
    this.response = null;
    this.noCache = false;
    this.original = null;
    this._deadline = -1;
    this._env = env;
    this._k0 = undefined;
    this._v0 = undefined;
    this._k1 = undefined;
    this._v1 = undefined;
    this._state = undefined;
    this._log = undefined;
    this._abort = undefined;
    this._expired = false;
    this._ede = undefined;
    this._edns = undefined;
    this._dropped = false;
    this._qkey = undefined;
    this._qkeyEnd = 0;
    this._qkeyFlags = 0;
    this._qkeyFolded = false;
  }

  /**
   * The question key of the request the chain works on ({@link cacheKeyOf}:
   * the name lowercased in wire form, QTYPE, QCLASS, the EDNS/DO/CD flags
   * character), or null when the query is not one a cache handles (not
   * opcode QUERY, not exactly one question, a compressed or malformed name,
   * a zone transfer).
   *
   * Computed once per query, on the first call, and shared by every plugin
   * that asks: the blocking list, the cache, dedup and the stats plugin all
   * key on it, so the name's octets are walked once instead of once per
   * plugin. A question seen lately gets the very same string object back (a
   * process-wide two-way memo of 16384 keys), so a `Map` keyed by it
   * compares by identity and allocates nothing. After {@link rewrite}, the
   * key of the new question.
   */
  questionKey(): string | null {
    let key = this._qkey;
    if (key === undefined) {
      const info = sharedKeyInfo;
      key = this._qkey = cacheKeyOf(this.request, info);
      if (key !== null) {
        this._qkeyEnd = info.nameEnd;
        this._qkeyFlags = info.flags;
        this._qkeyFolded = info.folded;
      }
    }
    return key;
  }

  /**
   * {@link questionKey} if a plugin already asked for it during this query
   * (null: not a cacheable question), else undefined — never computes it.
   * For observers that can do without: the stats plugin uses the key when
   * the cache or the blocking list computed it, and the octets otherwise.
   */
  get knownQuestionKey(): string | null | undefined {
    return this._qkey;
  }

  /** Offset just past the question name in {@link request}; valid after {@link questionKey} returned a key. */
  get questionNameEnd(): number {
    return this._qkeyEnd;
  }

  /** The key flags (`KEY_EDNS | KEY_DO | KEY_CD`); valid after {@link questionKey} returned a key. */
  get questionKeyFlags(): number {
    return this._qkeyFlags;
  }

  /**
   * Whether the question name has ASCII capitals (the key has them
   * lowercased); false means the key's name octets are exactly the
   * request's. Valid after {@link questionKey} returned a key.
   */
  get questionNameFolded(): boolean {
    return this._qkeyFolded;
  }

  /**
   * Epoch milliseconds after which the resolver answers SERVFAIL and stops
   * waiting: `queryTimeoutMs` after the query started waiting. Fixed on first
   * use — at the latest when the chain first returns a Promise, which is
   * microseconds after arrival — so a chain that completes synchronously
   * never reads the clock (a `Date.now()` is a third of core's per-query
   * overhead).
   */
  get deadline(): number {
    if (this._deadline < 0) this._deadline = this._env.clock.now() + this._env.queryTimeoutMs;
    return this._deadline;
  }

  /** This query's value for `key` (set by an earlier middleware), or undefined. */
  get<T>(key: StateKey<T>): T | undefined {
    if (this._k0 === key) return this._v0 as T;
    if (this._k1 === key) return this._v1 as T;
    const more = this._state;
    if (more !== undefined) for (let i = 0; i < more.length; i += 2) if (more[i] === key) return more[i + 1] as T;
    return undefined;
  }

  /**
   * Stores per-query state under a typed key that your plugin owns (or a
   * shared one core defines, such as `BLOCKED`), for middleware later in the
   * chain or observers such as a query log.
   */
  set<T>(key: StateKey<T>, value: T): void {
    const k = key as StateKey<unknown>;
    if (this._k0 === undefined || this._k0 === k) {
      this._k0 = k;
      this._v0 = value;
    } else if (this._k1 === undefined || this._k1 === k) {
      this._k1 = k;
      this._v1 = value;
    } else {
      const more = (this._state ??= []);
      for (let i = 0; i < more.length; i += 2) {
        if (more[i] === k) {
          more[i + 1] = value;
          return;
        }
      }
      more.push(k, value);
    }
  }

  /** Whether a value is stored under `key`. */
  has(key: StateKey<unknown>): boolean {
    if (this._k0 === key || this._k1 === key) return true;
    const more = this._state;
    if (more !== undefined) for (let i = 0; i < more.length; i += 2) if (more[i] === key) return true;
    return false;
  }

  /**
   * Changes the question (name and/or type) for the rest of the chain: the
   * middleware after this one, the cache and the upstream see the new
   * question, ID, flags and EDNS kept. When the answer comes back, core
   * gives the client its own question (exact letter case) and renames owner
   * names equal to the new name back to the client's name, as CoreDNS's
   * `rewrite name … answer auto` does. Call it before `next()`.
   *
   * @example
   * // rewrite name suffix .lan .home.arpa
   * if (ctx.query.qname.endsWith('.lan')) ctx.rewrite({ name: `${ctx.query.qname.slice(0, -4)}.home.arpa` });
   * return next();
   */
  rewrite(change: { readonly name?: string; readonly type?: number }): void {
    const q = this.query;
    const name = change.name ?? q.qname;
    const type = change.type ?? q.qtype;
    if (type !== (type & 0xffff)) throw new RangeError(`rewrite: type must be 0..65535, got ${type}`);
    if (name === q.qname && type === q.qtype) return;
    const wire = Buffer.allocUnsafe(256);
    const nameLen = nameToWire(name, wire, 0); // throws on a bad name
    const req = this.request;
    const qEnd = q.questionEnd;
    const out = Buffer.allocUnsafe(12 + nameLen + 4 + (req.length - qEnd));
    req.copy(out, 0, 0, 12);
    out.writeUInt16BE(1, 4);
    wire.copy(out, 12, 0, nameLen);
    out.writeUInt16BE(type, 12 + nameLen);
    out.writeUInt16BE(q.qclass, 12 + nameLen + 2);
    req.copy(out, 12 + nameLen + 4, qEnd);
    if (this.original === null) this.original = { request: req, query: q };
    const self = this as { request: Buffer; query: MessageReader };
    self.request = out;
    self.query = new MessageReader(out);
    self.query.questionEnd;
    this._edns = undefined;
    this._log = undefined;
    this._qkey = undefined;
  }

  /**
   * @internal Called by the resolver (and the testing kit) once the chain is
   * done: after a {@link rewrite}, gives the client its own question back.
   */
  _finalize(): void {
    const response = this.response;
    const original = this.original;
    if (original === null || response === null) return;
    try {
      const m = decode(response);
      const rewritten = this.query.qname;
      const client = original.query;
      m.questions = [{ name: client.qname, type: client.qtype, class: client.qclass }];
      for (const section of [m.answers, m.authorities, m.additionals]) {
        for (const r of section) if (namesEqual(r.name, rewritten)) r.name = client.qname;
      }
      this.response = encode(m);
    } catch (e) {
      this.log.warn({ err: e }, 'could not restore the question of a rewritten query; answering SERVFAIL');
      this._ede = undefined;
      const self = this as { request: Buffer; query: MessageReader };
      self.request = original.request;
      self.query = original.query;
      this.original = null;
      this._edns = undefined;
      this._qkey = undefined;
      this.servfail();
    }
  }

  /** A pino child logger bound to this query (id, client, question). Created on first use. */
  get log(): Logger {
    if (this._log === undefined) {
      let question: string | undefined;
      try {
        question = `${this.query.qname} ${this.query.qtype}`;
      } catch {
        question = undefined;
      }
      this._log = this._env.logger.child({ qid: this.query.id, client: this.client.address, question });
    }
    return this._log;
  }

  /**
   * Aborted when the query's deadline passes (or the resolver stops). Pass
   * it to anything that waits (upstream requests, Redis). Created on first use.
   */
  get signal(): AbortSignal {
    if (this._abort === undefined) {
      this._abort = new AbortController();
      if (this._expired) this._abort.abort(deadlineError());
    }
    return this._abort.signal;
  }

  /** True once a response is set. */
  get answered(): boolean {
    return this.response !== null;
  }

  /**
   * Sends nothing back: the client sees a timeout (an ACL's `drop`, a rate
   * limiter's excess). Clears the response; the resolver returns null and
   * counts `heimdall_queries_dropped_total{reason="policy"}`. A middleware
   * that sets a response afterwards answers after all.
   */
  drop(): void {
    this.response = null;
    this._dropped = true;
  }

  /** True when {@link drop} was called and no response was set since. */
  get dropped(): boolean {
    return this._dropped && this.response === null;
  }

  /**
   * The UDP payload size this resolver advertises in its OPT records
   * (`ednsPayloadSize`, RFC 6891 §6.2.3): what a plugin writes into an OPT
   * it builds for this query's response.
   */
  get ednsPayloadSize(): number {
    return this._env.ednsPayloadSize;
  }

  /** Milliseconds left before the deadline (never negative), by the resolver's clock. */
  remaining(): number {
    const left = this.deadline - this._env.clock.now();
    return Math.max(left, 0);
  }

  /** @internal Marks the deadline as passed and aborts `signal` if anyone took it. */
  _expire(reason?: unknown): void {
    if (this._expired) return;
    this._expired = true;
    this._abort?.abort(reason ?? deadlineError());
  }

  /**
   * Attaches an extended DNS error (RFC 8914) to this query's response: to
   * the one built next by a helper, and to `ctx.response` if one is already
   * set (rebuilt as a new buffer). Ignored when the query had no EDNS, as the
   * RFC requires.
   */
  ede(code: number, text?: string): void {
    (this._ede ??= []).push(text === undefined ? { code } : { code, text });
    if (this.response !== null && this.queryEdns() !== null) {
      this.response = withEde(this.response, { code, text });
    }
  }

  /** Answers NOERROR with these records in the answer section. */
  answer(records: readonly ResourceRecordInit[], init?: Omit<ReplyInit, 'answers'>): void {
    this.reply(init === undefined ? { answers: records } : { ...init, answers: records });
  }

  /** Answers NXDOMAIN, with the zone's SOA in the authority section when given (RFC 2308 negative caching). */
  nxdomain(soa?: ResourceRecordInit): void {
    if (soa === undefined) this.response = this.buildBare(Rcode.NXDOMAIN, true);
    else this.reply({ rcode: Rcode.NXDOMAIN, authorities: [soa] });
  }

  /** Answers NOERROR with no answer (NODATA), with the zone's SOA when given. */
  nodata(soa?: ResourceRecordInit): void {
    if (soa === undefined) this.response = this.buildBare(Rcode.NOERROR, true);
    else this.reply({ authorities: [soa] });
  }

  /** Answers REFUSED (policy: we will not answer this client or name). */
  refused(ede?: ExtendedError): void {
    if (ede) (this._ede ??= []).push(ede);
    this.response = this.buildBare(Rcode.REFUSED, true);
  }

  /** Answers SERVFAIL, optionally with an extended error saying why. */
  servfail(ede?: ExtendedError): void {
    if (ede) (this._ede ??= []).push(ede);
    this.response = this.buildBare(Rcode.SERVFAIL, true);
  }

  /**
   * Answers with TC=1 and no records (RFC 1035 §4.1.1), so a real client
   * retries over TCP: what rate limiters answer instead of dropping (the
   * "slip" of BIND's RRL). The answer is never cached (`noCache`).
   */
  truncated(rcode: number = Rcode.NOERROR): void {
    const out = this.buildBare(rcode, true);
    out[2] |= 0x02;
    this.response = out;
    this.noCache = true;
  }

  /** Answers FORMERR (the query is malformed in a way the header did not show). */
  formerr(): void {
    this.response = this.buildBare(Rcode.FORMERR, true);
  }

  /** Answers NOTIMP (a query type or feature this resolver does not implement). */
  notimp(): void {
    this.response = this.buildBare(Rcode.NOTIMP, true);
  }

  /**
   * Builds and sets a response from parts, echoing ID, question, RD, CD and
   * EDNS. `rcode` above 15 is written as an extended rcode in the OPT record.
   */
  reply(init: ReplyInit): void {
    if (this.replyFast(init)) return;
    const q = this.query;
    const edns = this.queryEdns();
    const rcode = init.rcode ?? 0;
    const message: MessageInit = {
      id: q.id,
      qr: true,
      opcode: q.opcode,
      aa: init.aa ?? false,
      rd: q.rd,
      ra: init.ra ?? this._env.recursionAvailable,
      ad: init.ad ?? false,
      cd: q.cd,
      rcode: edns === null ? rcode & 0xf : rcode,
      questions: [{ name: q.qname, type: q.qtype, class: q.qclass }],
      answers: init.answers as ResourceRecordInit[] | undefined,
      authorities: init.authorities as ResourceRecordInit[] | undefined,
      additionals: init.additionals as ResourceRecordInit[] | undefined,
    };
    if (edns !== null) {
      message.edns = {
        udpPayloadSize: this._env.ednsPayloadSize,
        version: 0,
        dnssecOk: edns.do,
        options: this._ede === undefined ? [] : this._ede.map((e) => ({ code: OptionCode.EDE, infoCode: e.code, extraText: e.text })),
      };
    }
    this.response = encode(message);
  }

  /**
   * The common answer — A/AAAA records owned by the question name, nothing
   * in the other sections — written straight from the request bytes:
   * header and question copied (exact case kept), each owner a pointer to
   * the question name (0xC00C), addresses parsed in place. About half the
   * cost of the general encoder. Returns false when the reply does not fit
   * that shape (then the encoder builds it).
   */
  private replyFast(init: ReplyInit): boolean {
    const answers = init.answers;
    if (answers === undefined || answers.length === 0 || answers.length > 64) return false;
    if ((init.authorities !== undefined && init.authorities.length > 0) || (init.additionals !== undefined && init.additionals.length > 0)) return false;
    const rcode = init.rcode ?? 0;
    if (rcode > 15) return false;
    const q = this.query;
    const qname = q.qname;
    let size = q.questionEnd;
    for (let i = 0; i < answers.length; i++) {
      const r = answers[i];
      const t = r.type;
      if ((t !== RecordType.A && t !== RecordType.AAAA) || r.name !== qname || typeof r.data !== 'string') return false;
      if (r.class !== undefined && r.class !== 1) return false;
      const ttl = r.ttl;
      if (ttl !== undefined && (typeof ttl !== 'number' || ttl >>> 0 !== ttl)) return false;
      size += t === RecordType.A ? 16 : 28;
    }
    const edns = this.queryEdns();
    if (edns !== null) size += OPT_FIXED + edeLength(this._ede);
    const req = this.request;
    const qEnd = q.questionEnd;
    const out = Buffer.allocUnsafe(size);
    req.copy(out, 0, 0, qEnd);
    out[2] = 0x80 | (req[2] & 0x79) | (init.aa ? 0x04 : 0);
    out[3] = ((init.ra ?? this._env.recursionAvailable) ? 0x80 : 0) | (init.ad ? 0x20 : 0) | (req[3] & 0x10) | rcode;
    out[4] = 0;
    out[5] = 1;
    out[6] = answers.length >> 8;
    out[7] = answers.length & 0xff;
    out[8] = 0;
    out[9] = 0;
    out[10] = 0;
    out[11] = edns === null ? 0 : 1;
    let p = qEnd;
    for (let i = 0; i < answers.length; i++) {
      const r = answers[i];
      const isA = r.type === RecordType.A;
      out[p] = 0xc0;
      out[p + 1] = 0x0c;
      out[p + 2] = 0;
      out[p + 3] = isA ? 1 : 28;
      out[p + 4] = 0;
      out[p + 5] = 1;
      out.writeUInt32BE(r.ttl ?? 0, p + 6);
      out[p + 10] = 0;
      out[p + 11] = isA ? 4 : 16;
      if (isA) parseIPv4(r.data as string, out, p + 12);
      else parseIPv6(r.data as string, out, p + 12);
      p += isA ? 16 : 28;
    }
    if (edns !== null) writeOpt(out, p, this._env.ednsPayloadSize, 0, edns.do, this._ede);
    this.response = out;
    return true;
  }

  /** EDNS facts of the query (`null` when it had no OPT record). Parsed once. */
  queryEdns(): QueryEdns | null {
    if (this._edns === undefined) {
      const q = this.query;
      const o = q.arcount === 0 ? -1 : q.optOffset;
      if (o < 0) this._edns = null;
      else {
        const b = this.request;
        this._edns = { payloadSize: (b[o + 3] << 8) | b[o + 4], version: b[o + 6], do: (b[o + 7] & 0x80) !== 0 };
      }
    }
    return this._edns;
  }

  /**
   * Header + echoed question (+ OPT) with no records: written directly from
   * the request bytes, no encoder involved. The question keeps the query's
   * exact letter case (0x20 randomisation).
   */
  buildBare(rcode: number, withQuestion: boolean): Buffer {
    const req = this.request;
    const qEnd = withQuestion ? this.query.questionEnd : HEADER;
    const edns = this.queryEdns();
    const optLen = edns === null ? 0 : OPT_FIXED + edeLength(this._ede);
    const out = Buffer.allocUnsafe(qEnd + optLen);
    req.copy(out, 0, 0, qEnd);
    // Flags: QR=1, opcode echoed, AA=0, TC=0, RD echoed; RA per settings, Z=0, AD=0, CD echoed.
    out[2] = 0x80 | (req[2] & 0x79);
    out[3] = (this._env.recursionAvailable ? 0x80 : 0) | (req[3] & 0x10) | (rcode & 0xf);
    out.writeUInt16BE(withQuestion ? 1 : 0, 4);
    out.writeUInt32BE(0, 6); // ANCOUNT, NSCOUNT
    out.writeUInt16BE(edns === null ? 0 : 1, 10);
    if (edns !== null) writeOpt(out, qEnd, this._env.ednsPayloadSize, rcode >> 4, edns.do, this._ede);
    return out;
  }
}

/** EDNS facts of a query, as the context needs them. */
export interface QueryEdns {
  readonly payloadSize: number;
  readonly version: number;
  readonly do: boolean;
}

function deadlineError(): Error {
  const e = new Error('query deadline passed');
  e.name = 'TimeoutError';
  return e;
}

function edeLength(list: readonly ExtendedError[] | undefined): number {
  if (list === undefined) return 0;
  let n = 0;
  for (const e of list) n += 4 + 2 + (e.text ? Buffer.byteLength(e.text) : 0);
  return n;
}

/** Writes an OPT record at `offset` (root owner, our payload size, ext rcode, version 0, DO, EDE options). */
function writeOpt(out: Buffer, offset: number, payload: number, extRcode: number, dnssecOk: boolean, ede: readonly ExtendedError[] | undefined): number {
  out[offset] = 0;
  out.writeUInt16BE(RecordType.OPT, offset + 1);
  out.writeUInt16BE(payload, offset + 3);
  out[offset + 5] = extRcode & 0xff;
  out[offset + 6] = 0; // version
  out[offset + 7] = dnssecOk ? 0x80 : 0;
  out[offset + 8] = 0;
  const rdLen = edeLength(ede);
  out.writeUInt16BE(rdLen, offset + 9);
  let p = offset + OPT_FIXED;
  if (ede !== undefined) {
    for (const e of ede) {
      const textLen = e.text ? Buffer.byteLength(e.text) : 0;
      out.writeUInt16BE(EDE_OPTION, p);
      out.writeUInt16BE(2 + textLen, p + 2);
      out.writeUInt16BE(e.code & 0xffff, p + 4);
      if (textLen > 0) out.write(e.text!, p + 6, 'utf8');
      p += 6 + textLen;
    }
  }
  return p;
}

function edeData(e: ExtendedError): Buffer {
  const text = e.text ? Buffer.from(e.text, 'utf8') : undefined;
  const b = Buffer.allocUnsafe(2 + (text ? text.length : 0));
  b.writeUInt16BE(e.code & 0xffff, 0);
  if (text) text.copy(b, 2);
  return b;
}

/**
 * Returns a copy of `response` with an EDE option added to its OPT record
 * (the OPT is the last record we or an upstream wrote; if there is none the
 * response is returned unchanged).
 */
export function withEde(response: Buffer, ede: ExtendedError): Buffer {
  let reader: MessageReader;
  try {
    reader = new MessageReader(response);
    if (reader.arcount === 0) return response;
    for (const rec of reader.records()) {
      if (rec.section === 'additional' && rec.type === RecordType.OPT) {
        const start = rec.rdataOffset + rec.rdataLength;
        const add = edeData(ede);
        const out = Buffer.allocUnsafe(response.length + 4 + add.length);
        response.copy(out, 0, 0, start);
        out.writeUInt16BE(EDE_OPTION, start);
        out.writeUInt16BE(add.length, start + 2);
        add.copy(out, start + 4);
        response.copy(out, start + 4 + add.length, start);
        out.writeUInt16BE(rec.rdataLength + 4 + add.length, rec.rdataOffset - 2);
        return out;
      }
    }
  } catch {
    return response;
  }
  return response;
}

/**
 * A response with only a header (ID and opcode echoed, QR set, counts 0),
 * for queries whose question cannot be echoed (QDCOUNT ≠ 1, unknown opcode,
 * unparseable question).
 */
export function headerOnlyResponse(request: Buffer, rcode: number, recursionAvailable = true): Buffer {
  const out = Buffer.alloc(HEADER);
  request.copy(out, 0, 0, 2);
  out[2] = 0x80 | (request[2] & 0x79);
  out[3] = (recursionAvailable ? 0x80 : 0) | (request[3] & 0x10) | (rcode & 0xf);
  return out;
}
