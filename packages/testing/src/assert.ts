/**
 * Assertion helpers for DNS responses. They throw `AssertionError`
 * (node:assert), so they work under any test runner, and print the decoded
 * response when they fail.
 */
import { Buffer } from 'node:buffer';
import { AssertionError } from 'node:assert';
import { decode, OptionCode, rcodeToString, typeToString } from '@heimdall/core/packet';
import type { Message } from '@heimdall/core';
import { type CodeLike, toRcode, toType } from './builders.js';

/** Decodes a response, failing the test with a clear message when it is null or malformed. */
export function decodeResponse(response: Buffer | null | undefined): Message {
  if (response === null || response === undefined) {
    throw new AssertionError({ message: 'expected a response, got none (the query was dropped or nobody answered)' });
  }
  try {
    return decode(response);
  } catch (e) {
    throw new AssertionError({ message: `response does not decode: ${(e as Error).message}` });
  }
}

/** A short human-readable summary of a response (for failure messages and debugging). */
export function describeResponse(m: Message): string {
  const flags = (['qr', 'aa', 'tc', 'rd', 'ra', 'ad', 'cd'] as const).filter((f) => m[f]).join(' ');
  const q = m.questions.map((x) => `${x.name || '.'} ${typeToString(x.type)}`).join(', ');
  const an = m.answers.map((r) => `${r.name || '.'} ${r.ttl} ${typeToString(r.type)} ${JSON.stringify(r.data)}`).join('; ');
  return `id=${m.id} ${rcodeToString(m.rcode)} [${flags}] q=(${q}) answers=(${an}) ns=${m.authorities.length} ar=${m.additionals.length}${m.edns ? ' +edns' : ''}`;
}

function fail(message: string, m: Message): never {
  throw new AssertionError({ message: `${message}\n  response: ${describeResponse(m)}` });
}

/** Asserts the response's (full) rcode. Returns the decoded message for further checks. */
export function expectRcode(response: Buffer | null | undefined, rcode: CodeLike): Message {
  const m = decodeResponse(response);
  const want = toRcode(rcode);
  if (m.rcode !== want) fail(`expected rcode ${rcodeToString(want)}, got ${rcodeToString(m.rcode)}`, m);
  return m;
}

/** An expected answer: the rdata alone (`'192.0.2.1'`) or a partial record (TXT data as strings: `data: ['hello']`). */
export type ExpectedAnswer = string | { name?: string; type?: CodeLike; ttl?: number; data?: unknown };

function sameData(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  // TXT strings decode as Buffers; an expected string compares with their UTF-8 text.
  if (Buffer.isBuffer(a) && typeof b === 'string') return a.toString('utf8') === b;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameData(x, b[i]));
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => sameData((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  if (typeof a === 'string' && typeof b === 'string') return a.toLowerCase() === b.toLowerCase();
  return a === b;
}

/**
 * Asserts NOERROR and that the answer section holds exactly these records
 * (in any order). Names compare case-insensitively.
 *
 * @example
 * expectAnswers(res, ['192.0.2.1', { type: 'A', data: '192.0.2.2', ttl: 60 }]);
 */
export function expectAnswers(response: Buffer | null | undefined, expected: readonly ExpectedAnswer[]): Message {
  const m = expectRcode(response, 'NOERROR');
  if (m.answers.length !== expected.length) fail(`expected ${expected.length} answers, got ${m.answers.length}`, m);
  const left = [...m.answers];
  for (const e of expected) {
    const want = typeof e === 'string' ? { data: e } : e;
    const i = left.findIndex(
      (r) =>
        (want.name === undefined || sameData(r.name, want.name.replace(/\.$/, ''))) &&
        (want.type === undefined || r.type === toType(want.type)) &&
        (want.ttl === undefined || r.ttl === want.ttl) &&
        (want.data === undefined || sameData(r.data, want.data)),
    );
    if (i < 0) fail(`no answer matches ${JSON.stringify(want)}`, m);
    left.splice(i, 1);
  }
  return m;
}

/** Asserts a NOERROR response with an empty answer section (NODATA). */
export function expectNoData(response: Buffer | null | undefined): Message {
  return expectAnswers(response, []);
}

/** Asserts header flags (only the ones given). */
export function expectFlags(response: Buffer | null | undefined, flags: Partial<Record<'qr' | 'aa' | 'tc' | 'rd' | 'ra' | 'ad' | 'cd', boolean>>): Message {
  const m = decodeResponse(response);
  for (const [k, v] of Object.entries(flags)) {
    if (m[k as keyof typeof flags] !== v) fail(`expected ${k}=${v}`, m);
  }
  return m;
}

/** Asserts the response carries an extended DNS error (RFC 8914) with this info code (and text, when given). */
export function expectEde(response: Buffer | null | undefined, code: number, text?: string | RegExp): Message {
  const m = decodeResponse(response);
  const edes = (m.edns?.options ?? []).filter((o) => o.code === OptionCode.EDE) as Array<{ infoCode: number; extraText?: string }>;
  const hit = edes.find((o) => o.infoCode === code);
  if (!hit) fail(`expected EDE ${code}, got ${edes.map((o) => o.infoCode).join(',') || 'none'}`, m);
  if (text !== undefined) {
    const t = hit.extraText ?? '';
    if (typeof text === 'string' ? t !== text : !text.test(t)) fail(`EDE ${code} text ${JSON.stringify(t)} does not match ${text}`, m);
  }
  return m;
}

/** Asserts the response's ID and question echo the query's. */
export function expectEcho(query: Buffer, response: Buffer | null | undefined): Message {
  const q = decode(query);
  const m = decodeResponse(response);
  if (m.id !== q.id) fail(`expected id ${q.id}, got ${m.id}`, m);
  if (!m.qr) fail('QR bit not set', m);
  const a = q.questions[0];
  const b = m.questions[0];
  if (!b || a.name !== b.name || a.type !== b.type || a.class !== b.class) fail(`question not echoed (expected ${a.name} ${a.type})`, m);
  if (m.rd !== q.rd) fail('RD not echoed', m);
  return m;
}
