import { describe, expect, it } from 'vitest';
import { decode } from './decode.js';
import { encode } from './encode.js';
import { PacketError } from './errors.js';
import { skipName } from './name.js';
import { MessageReader } from './reader.js';
import { RecordType } from './types.js';

/** Header with the given counts. */
function header(qd: number, an: number, ns = 0, ar = 0): number[] {
  return [0xab, 0xcd, 0x81, 0x00, qd >> 8, qd & 0xff, an >> 8, an & 0xff, ns >> 8, ns & 0xff, ar >> 8, ar & 0xff];
}

/** NULL record header after an owner name: type 10, class IN, TTL 0, RDLENGTH 0. */
const NULL_RR = [0, 10, 0, 1, 0, 0, 0, 0, 0, 0];

/**
 * A message: a question for `a`, then one NULL record (root owner) whose
 * RDATA holds `blob` (at offset `BLOB`), then `owner(i)` records (NULL, no
 * RDATA) until the message reaches `size` octets.
 */
const BLOB = 12 + 7 + 11;
function craft(blob: number[], owner: (i: number) => number[], size: number): Buffer {
  const b = header(1, 0);
  b.push(1, 0x61, 0, 0, 1, 0, 1); // question "a" at 12
  b.push(0, 0, 10, 0, 1, 0, 0, 0, 0, blob.length >> 8, blob.length & 0xff);
  if (b.length !== BLOB) throw new Error('layout');
  b.push(...blob);
  let n = 1;
  for (;;) {
    const o = owner(n);
    if (b.length + o.length + 10 > size) break;
    b.push(...o, ...NULL_RR);
    n++;
  }
  const buf = Buffer.from(b);
  buf.writeUInt16BE(n, 6);
  return buf;
}

const ptr = (to: number): number[] => [0xc0 | (to >> 8), to & 0xff];

/**
 * A ~60 KB message whose every record owner is a 2-octet pointer to the end
 * of one long chain of pointers to pointers (each pointing 2 octets back,
 * the first to the question name): the decoder of old walked the whole
 * chain for every record (0.26-0.44 s).
 */
function longChain(hops: number): Buffer {
  const chain: number[] = [...ptr(12)];
  for (let i = 1; i < hops; i++) chain.push(...ptr(BLOB + 2 * (i - 1)));
  const last = BLOB + chain.length - 2;
  return craft(chain, () => ptr(last), 60000);
}

/**
 * Octet-heavy: ~4600 records, each a new 1-octet label in front of a
 * pointer into a 253-octet name of 126 labels (252 octets and one hop per
 * 14-octet record, every name distinct).
 */
function longNames(): Buffer {
  const blob: number[] = [];
  for (let i = 0; i < 126; i++) blob.push(1, 0x61 + (i % 26));
  blob.push(0);
  return craft(blob, (n) => [1, 0x30 + (n % 10), ...ptr(BLOB + 2 * (n % 3))], 65000);
}

/**
 * The worst case within the per-name bounds: a 253-octet name of 126
 * labels, a chain of 126 pointers to pointers in front of it, and ~5000
 * records whose owners point at the chain's end (each name: 127 hops and
 * 252 label octets), every other one a new label in front of a suffix of
 * the long name (distinct names).
 */
function maxedNames(): Buffer {
  const blob: number[] = [];
  for (let i = 0; i < 126; i++) blob.push(1, 0x61 + (i % 26));
  blob.push(0);
  const chainAt = BLOB + blob.length;
  blob.push(...ptr(BLOB));
  for (let i = 1; i < 126; i++) blob.push(...ptr(chainAt + 2 * (i - 1)));
  const last = BLOB + blob.length - 2;
  return craft(blob, (n) => (n % 2 === 0 ? ptr(last) : [1, 0x30 + (n % 10), ...ptr(BLOB + 2 * (n % 120))]), 65000);
}

/** Best of `runs` wall-clock times of `fn` in ms (the minimum is robust to a busy machine). */
function bestMs(fn: () => void, runs = 30): number {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

/** Runs `fn`; a PacketError (the message refused) is as good as success. */
function decodesOrRefuses(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof PacketError)) throw e;
  }
}

/**
 * The time allowed for reading a crafted message: 1 ms, or — on a machine
 * busy enough that even a benign message of the same size (about 4600
 * records with plain 3-octet owners, no pointers) is slow to read — 4× that
 * message's best time, measured now. Either way a decoder that walks
 * pointer chains again per name (0.26-0.44 s here) is far over it.
 */
const BENIGN = craft([], (n) => [1, 0x61 + (n % 26), 0], 60000);
function budgetMs(read: (msg: Buffer) => void): number {
  read(BENIGN);
  return Math.max(1, 4 * bestMs(() => read(BENIGN)));
}

describe('compression pointers: bounded work (≤ 1 ms for any message on a quiet machine)', () => {
  const crafted: Array<[string, Buffer]> = [
    ['a 20 000-hop pointer chain', longChain(20_000)],
    ['a 127-hop chain', longChain(126)],
    ['a 128-hop chain', longChain(127)],
    ['255-octet names behind 126 hops, 5000 records', maxedNames()],
    ['distinct 255-octet names, one hop each', longNames()],
  ];

  for (const [what, msg] of crafted) {
    it(`${what} (${msg.length} B): decode`, () => {
      const read = (m: Buffer): void => decodesOrRefuses(() => decode(m));
      read(msg); // warm up
      expect(bestMs(() => read(msg))).toBeLessThanOrEqual(budgetMs(read));
    });

    it(`${what}: MessageReader (every name and RDATA)`, () => {
      const readAll = (m: Buffer): void =>
        decodesOrRefuses(() => {
          const r = new MessageReader(m);
          for (const v of r.records()) {
            void v.name;
            v.data();
          }
        });
      readAll(msg);
      expect(bestMs(() => readAll(msg))).toBeLessThanOrEqual(budgetMs(readAll));
    });

    it(`${what}: skipName over every record`, () => {
      const skipAll = (m: Buffer): void =>
        decodesOrRefuses(() => {
          let p = new MessageReader(m).questionEnd;
          for (let i = m.readUInt16BE(6); i > 0; i--) {
            const h = skipName(m, p);
            p = h + 10 + m.readUInt16BE(h + 8);
          }
          expect(p).toBe(m.length);
        });
      skipAll(msg);
      expect(bestMs(() => skipAll(msg))).toBeLessThanOrEqual(budgetMs(skipAll));
    });
  }

  it('a chain longer than 127 hops is refused (POINTER_LIMIT) on both paths', () => {
    const msg = longChain(127); // the owner's pointer + 127 in the chain
    expect(() => decode(msg)).toThrow(expect.objectContaining({ code: 'POINTER_LIMIT' }));
    const [, second] = new MessageReader(msg).records();
    expect(() => second.name).toThrow(expect.objectContaining({ code: 'POINTER_LIMIT' }));
    // 127 hops is still a name.
    expect(decode(longChain(126)).answers[1].name).toBe('a');
  });

  it('real messages stay far below the expansion budget', () => {
    // 200 records, each owner a distinct label in front of a pointer to a 60-octet zone name.
    const zone = `${'x'.repeat(20)}.${'y'.repeat(20)}.example.com`;
    const answers = Array.from({ length: 200 }, (_, i) => ({ name: `h${i}.${zone}`, type: RecordType.A, ttl: 60, data: '192.0.2.1' }));
    const bytes = encode({ questions: [{ name: zone, type: RecordType.A }], answers });
    expect(decode(bytes).answers).toHaveLength(200);
    expect([...new MessageReader(bytes).records()].map((v) => v.name)).toEqual(answers.map((a) => a.name));
  });
});

describe('decode → encode keeps octets the parsed view does not change', () => {
  const q = { questions: [{ name: 'example.com', type: RecordType.A }] };
  /** An encoded message with one OPT option of `code` whose value bytes are replaced by `value`. */
  function withOption(code: number, value: Buffer): Buffer {
    const head = encode({ ...q, qr: true, edns: { udpPayloadSize: 1232, options: [] } });
    const opt = Buffer.alloc(4 + value.length);
    opt.writeUInt16BE(code, 0);
    opt.writeUInt16BE(value.length, 2);
    value.copy(opt, 4);
    const out = Buffer.concat([head, opt]);
    out.writeUInt16BE(opt.length, head.length - 2); // OPT RDLENGTH (the OPT is last)
    return out;
  }

  it('EDE EXTRA-TEXT that is not valid UTF-8', () => {
    const bytes = withOption(15, Buffer.from([0x00, 0x03, 0x41, 0xff, 0xfe, 0xc3, 0x42]));
    const m = decode(bytes);
    expect(m.edns?.options[0]).toMatchObject({ code: 15, infoCode: 3 });
    expect(encode(m).equals(bytes)).toBe(true);
    // Changed fields are written from the parsed view.
    const changed = encode({ ...m, edns: { ...m.edns, options: [{ ...m.edns!.options[0], extraText: 'x' } as never] } });
    expect(decode(changed).edns?.options[0]).toMatchObject({ infoCode: 3, extraText: 'x' });
  });

  it('padding with non-zero octets', () => {
    const bytes = withOption(12, Buffer.from([0, 1, 2, 3, 0xff]));
    const m = decode(bytes);
    expect(m.edns?.options[0]).toEqual({ code: 12, length: 5 });
    expect(encode(m).equals(bytes)).toBe(true);
  });

  /** A response with one record of `type` whose RDATA is `rdata`. */
  function withRdata(type: number, rdata: Buffer): Buffer {
    const head = encode({ ...q, qr: true });
    const rr = Buffer.concat([Buffer.from([0xc0, 12, type >> 8, type & 0xff, 0, 1, 0, 0, 0, 60, rdata.length >> 8, rdata.length & 0xff]), rdata]);
    const out = Buffer.concat([head, rr]);
    out.writeUInt16BE(1, 6);
    return out;
  }

  it('non-canonical NSEC and NSEC3 type bitmaps (trailing zero octets, empty windows)', () => {
    const next = Buffer.from([1, 0x62, 0]); // "b"
    const bitmaps = [
      Buffer.from([0, 4, 0x40, 0, 0, 0]), // A, padded to 4 octets
      Buffer.from([0, 1, 0x40, 1, 1, 0]), // A, then an empty window 1
    ];
    for (const bitmap of bitmaps) {
      const nsec = withRdata(RecordType.NSEC, Buffer.concat([next, bitmap]));
      const m = decode(nsec);
      expect(m.answers[0].data).toEqual({ nextDomain: 'b', types: [1] });
      expect(encode(m).equals(nsec)).toBe(true);
      const nsec3 = withRdata(RecordType.NSEC3, Buffer.concat([Buffer.from([1, 0, 0, 0, 0, 2, 0xaa, 0xbb]), bitmap]));
      const m3 = decode(nsec3);
      expect((m3.answers[0].data as { types: number[] }).types).toEqual([1]);
      expect(encode(m3).equals(nsec3)).toBe(true);
      // A changed type list is written canonically.
      (m.answers[0].data as { types: number[] }).types.push(RecordType.AAAA);
      expect(decode(encode(m)).answers[0].data).toEqual({ nextDomain: 'b', types: [1, 28] });
    }
  });
});
