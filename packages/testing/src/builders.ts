/**
 * One-line builders for queries, records and responses in wire format.
 */
import type { Buffer } from 'node:buffer';
import { type EdnsOption, encode, MessageReader, OptionCode, RecordClass, type RecordData, rcodeFromString, typeFromString } from '@heimdall/core/packet';
import { type MessageInit, type ResourceRecordInit, Rcode } from '@heimdall/core';

/** A record type or rcode given by mnemonic (`'AAAA'`, `'NXDOMAIN'`) or number. */
export type CodeLike = string | number;

/** Turns `'AAAA'`/`'TYPE65280'`/28 into a type number. Throws on an unknown mnemonic. */
export function toType(type: CodeLike): number {
  if (typeof type === 'number') return type;
  const n = typeFromString(type.toUpperCase());
  if (n === undefined) throw new TypeError(`unknown record type '${type}'`);
  return n;
}

/** Turns `'NXDOMAIN'`/3 into an rcode number. Throws on an unknown mnemonic. */
export function toRcode(rcode: CodeLike): number {
  if (typeof rcode === 'number') return rcode;
  const n = rcodeFromString(rcode.toUpperCase());
  if (n === undefined) throw new TypeError(`unknown rcode '${rcode}'`);
  return n;
}

/** Options of {@link query}. */
export interface QueryOptions {
  /** Message ID. Default 0x1234 (deterministic tests). */
  id?: number;
  /** RD bit. Default true. */
  rd?: boolean;
  /** CD bit. Default false. */
  cd?: boolean;
  /** AD bit. Default false. */
  ad?: boolean;
  /** Add an OPT record: `true` (payload 1232) or a payload size. Default false (set automatically when `do` or `ednsOptions` is given). */
  edns?: boolean | number;
  /** EDNS version (for BADVERS tests). Default 0. */
  ednsVersion?: number;
  /** DO bit (implies EDNS). Default false. */
  do?: boolean;
  /** EDNS options (implies EDNS). */
  ednsOptions?: EdnsOption[];
  /** Query class. Default IN. */
  class?: CodeLike;
  /** Opcode. Default 0 (QUERY). */
  opcode?: number;
}

/**
 * A query in wire format.
 *
 * @example
 * const q = query('example.com', 'AAAA', { id: 7, do: true });
 */
export function query(name: string, type: CodeLike = 'A', options: QueryOptions = {}): Buffer {
  const useEdns =
    options.edns !== undefined && options.edns !== false ? true : options.do === true || options.ednsOptions !== undefined || options.ednsVersion !== undefined;
  const message: MessageInit = {
    id: options.id ?? 0x1234,
    opcode: options.opcode ?? 0,
    rd: options.rd ?? true,
    cd: options.cd ?? false,
    ad: options.ad ?? false,
    questions: [{ name: stripDot(name), type: toType(type), class: options.class === undefined ? RecordClass.IN : toClass(options.class) }],
  };
  if (useEdns) {
    message.edns = {
      udpPayloadSize: typeof options.edns === 'number' ? options.edns : 1232,
      version: options.ednsVersion ?? 0,
      dnssecOk: options.do ?? false,
      options: options.ednsOptions ?? [],
    };
  }
  return encode(message);
}

function toClass(c: CodeLike): number {
  if (typeof c === 'number') return c;
  const v = (RecordClass as Record<string, number>)[c.toUpperCase()];
  if (v === undefined) throw new TypeError(`unknown class '${c}'`);
  return v;
}

function stripDot(name: string): string {
  return name.length > 1 && name.endsWith('.') && !name.endsWith('\\.') ? name.slice(0, -1) : name === '.' ? '' : name;
}

/** A record for builders: type by mnemonic or number, TTL default 300. */
export interface RecordLike {
  name: string;
  type: CodeLike;
  ttl?: number;
  class?: CodeLike;
  data: RecordData;
}

/**
 * A record.
 *
 * @example
 * record('example.com', 'A', '192.0.2.1', 60)
 */
export function record(name: string, type: CodeLike, data: RecordData, ttl = 300): ResourceRecordInit {
  return { name: stripDot(name), type: toType(type), class: RecordClass.IN, ttl, data };
}

/** A SOA record for negative answers (RFC 2308: the `minimum` is the negative TTL). */
export function soa(zone: string, options: { ttl?: number; minimum?: number; serial?: number } = {}): ResourceRecordInit {
  const z = stripDot(zone);
  return record(
    z,
    'SOA',
    {
      mname: z === '' ? 'a.root-servers.net' : `ns1.${z}`,
      rname: z === '' ? 'nstld.verisign-grs.com' : `hostmaster.${z}`,
      serial: options.serial ?? 2024010101,
      refresh: 3600,
      retry: 600,
      expire: 604800,
      minimum: options.minimum ?? 300,
    },
    options.ttl ?? options.minimum ?? 300,
  );
}

function toRecord(r: RecordLike | ResourceRecordInit): ResourceRecordInit {
  return {
    name: stripDot(r.name),
    type: toType(r.type),
    class: r.class === undefined ? RecordClass.IN : toClass(r.class),
    ttl: r.ttl ?? 300,
    data: r.data,
  };
}

/** Options of {@link response}. */
export interface ResponseOptions {
  /** Default NOERROR. */
  rcode?: CodeLike;
  answers?: Array<RecordLike | ResourceRecordInit>;
  authorities?: Array<RecordLike | ResourceRecordInit>;
  additionals?: Array<RecordLike | ResourceRecordInit>;
  aa?: boolean;
  tc?: boolean;
  /** RA bit, default true. */
  ra?: boolean;
  ad?: boolean;
  /** Override the ID (default: the query's). */
  id?: number;
  /** Echo EDNS: default when the query had an OPT record. `false` to omit. */
  edns?: boolean;
  /** EDNS options of the response (e.g. an EDE). */
  ednsOptions?: EdnsOption[];
  /** An extended DNS error to attach (implies EDNS). */
  ede?: { code: number; text?: string };
}

/**
 * A response to `q` (a query built by {@link query} or any wire query) in
 * wire format: ID, question, RD, CD and EDNS/DO echoed.
 *
 * @example
 * const r = response(query('example.com'), { answers: [record('example.com', 'A', '192.0.2.1')] });
 */
export function response(q: Buffer, options: ResponseOptions = {}): Buffer {
  const reader = new MessageReader(q);
  const queryEdns = reader.arcount > 0 ? reader.edns() : null;
  const message: MessageInit = {
    id: options.id ?? reader.id,
    qr: true,
    opcode: reader.opcode,
    aa: options.aa ?? false,
    tc: options.tc ?? false,
    rd: reader.rd,
    ra: options.ra ?? true,
    ad: options.ad ?? false,
    cd: reader.cd,
    rcode: toRcode(options.rcode ?? Rcode.NOERROR),
    questions: reader.qdcount > 0 ? [{ name: reader.qname, type: reader.qtype, class: reader.qclass }] : [],
    answers: (options.answers ?? []).map(toRecord),
    authorities: (options.authorities ?? []).map(toRecord),
    additionals: (options.additionals ?? []).map(toRecord),
  };
  const wantEdns = options.edns ?? (queryEdns !== null || options.ede !== undefined || options.ednsOptions !== undefined);
  if (wantEdns) {
    const opts: EdnsOption[] = [...(options.ednsOptions ?? [])];
    if (options.ede) opts.push({ code: OptionCode.EDE, infoCode: options.ede.code, extraText: options.ede.text });
    message.edns = { udpPayloadSize: 1232, version: 0, dnssecOk: queryEdns?.dnssecOk ?? false, options: opts };
  } else if (toRcode(options.rcode ?? 0) > 15) {
    throw new TypeError('an extended rcode needs EDNS');
  }
  return encode(message);
}
