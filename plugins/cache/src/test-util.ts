/**
 * Test helpers (not built into dist): wire-format queries and responses made
 * with dns-packet, independent of Heimdall's own codec.
 */
import { parseOptions } from '@heimdall/core';
import { FakeClock } from '@heimdall/testing';
import * as packet from 'dns-packet';
import { type CacheOptionsInput, cacheOptionsSchema } from './options.js';
import { CacheStore } from './store.js';

export interface QueryOpts {
  id?: number;
  type?: packet.RecordType;
  edns?: boolean;
  do?: boolean;
  cd?: boolean;
  rd?: boolean;
  ad?: boolean;
}

function queryFlags(o: QueryOpts): number {
  return (o.rd === false ? 0 : packet.RECURSION_DESIRED) | (o.cd ? packet.CHECKING_DISABLED : 0) | (o.ad ? 0x20 : 0);
}

function opt(o: QueryOpts, options: any[] = []): packet.Answer[] {
  if (!o.edns && !o.do) return [];
  return [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: o.do ? packet.DNSSEC_OK : 0, options } as any];
}

/** A query for `name`/`type`. */
export function makeQuery(name: string, o: QueryOpts = {}): Buffer {
  return packet.encode({
    id: o.id ?? 0x1234,
    type: 'query',
    flags: queryFlags(o),
    questions: [{ type: o.type ?? 'A', name, class: 'IN' }],
    additionals: opt(o),
  });
}

export interface ResponseOpts extends QueryOpts {
  rcode?: number;
  tc?: boolean;
  aa?: boolean;
  answers?: packet.Answer[];
  authorities?: packet.Answer[];
  additionals?: packet.Answer[];
  optOptions?: any[];
  qname?: string;
}

/** A response (QR set, RA set) with the given sections. */
export function makeResponse(name: string, o: ResponseOpts = {}): Buffer {
  return packet.encode({
    id: o.id ?? 0x1234,
    type: 'response',
    flags: queryFlags(o) | packet.RECURSION_AVAILABLE | (o.rcode ?? 0) | (o.tc ? packet.TRUNCATED_RESPONSE : 0) | (o.aa ? packet.AUTHORITATIVE_ANSWER : 0),
    questions: [{ type: o.type ?? 'A', name: o.qname ?? name, class: 'IN' }],
    answers: o.answers ?? [],
    authorities: o.authorities ?? [],
    additionals: [...(o.additionals ?? []), ...opt(o, o.optOptions)],
  });
}

/** `n` A records for `name`. */
export function aRecords(name: string, ttl: number, n = 2): packet.Answer[] {
  return Array.from({ length: n }, (_, i) => ({ type: 'A', name, ttl, data: `192.0.2.${i + 1}` }) as packet.Answer);
}

/** An SOA record for `zone`. */
export function soa(zone: string, ttl: number, minimum: number): packet.Answer {
  return {
    type: 'SOA',
    name: zone,
    ttl,
    data: {
      mname: `ns.${zone}`,
      rname: `hostmaster.${zone}`,
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum,
    },
  } as packet.Answer;
}

/** Decodes wire bytes with dns-packet. */
export function decode(buf: Buffer): any {
  return packet.decode(buf);
}

/** TTLs of every record except OPT. */
export function ttlsOf(buf: Buffer): number[] {
  const p: any = packet.decode(buf);
  return [...(p.answers ?? []), ...(p.authorities ?? []), ...(p.additionals ?? [])].filter((r: any) => r.type !== 'OPT').map((r: any) => r.ttl ?? -1);
}

/** A NOERROR response whose single A answer names the question through a compression pointer (0xC00C). */
export function compressedResponse(name: string, id: number, ttl: number): Buffer {
  const q = makeQuery(name, { id });
  const question = q.subarray(12);
  const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 192, 0, 2, 1]);
  answer.writeUInt32BE(ttl, 6);
  const header = Buffer.from(q.subarray(0, 12));
  header[2] |= 0x80;
  header[3] = 0x80;
  header.writeUInt16BE(1, 6);
  return Buffer.concat([header, question, answer]);
}

/** Lets pending promise callbacks run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
}

/** A store outside DI: options validated by core's parser (as the plugin's factory does), a FakeClock unless given. */
export function newStore(options: CacheOptionsInput = {}, clock: FakeClock = new FakeClock()): CacheStore {
  return new CacheStore(parseOptions(cacheOptionsSchema, options, 'cache'), clock);
}
