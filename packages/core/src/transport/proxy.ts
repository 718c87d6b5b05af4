/**
 * PROXY protocol version 2 (the binary header of HAProxy's spec,
 * https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt §2.2): a load
 * balancer prepends it to a connection so the server learns the real client.
 *
 * Accepted only from trusted sources; bounded in size
 * ({@link PROXY_V2_MAX_HEADER}) and in time (a read deadline).
 */
import { Buffer } from 'node:buffer';
import type net from 'node:net';
import { ConfigError } from '../errors.js';
import { type Cidr, cidrContains, formatIPv4, formatIPv6, ipToBytes, parseCidr } from '../wire/ip.js';

/** The 12-octet signature every v2 header starts with. */
export const PROXY_V2_SIGNATURE: Buffer = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** Largest header we accept: 16 fixed octets + 1024 of addresses and TLVs. */
export const PROXY_V2_MAX_HEADER = 16 + 1024;

/** A parsed v2 header. */
export interface ProxyHeader {
  /** `local`: the balancer's own connection (health check): use the real peer. */
  readonly command: 'local' | 'proxy';
  /** Source (the client) for PROXY over IPv4/IPv6; undefined for LOCAL, UNSPEC and unix sockets. */
  readonly source?: { readonly address: string; readonly port: number; readonly family: 4 | 6 };
  readonly destination?: { readonly address: string; readonly port: number };
  /** Octets the header took (the stream's data starts after them). */
  readonly length: number;
}

/** What {@link parseProxyV2} makes of a buffer: a header, more bytes needed, or an invalid header (with why). */
export type ProxyParse = { readonly ok: true; readonly header: ProxyHeader } | { readonly ok: false; readonly incomplete: boolean; readonly reason: string };

const INCOMPLETE: ProxyParse = Object.freeze({ ok: false, incomplete: true, reason: 'incomplete header' });
const invalid = (reason: string): ProxyParse => ({ ok: false, incomplete: false, reason });

/** How many leading octets of `buf` match the signature (12 = all of it). */
export function signaturePrefix(buf: Uint8Array): number {
  const n = Math.min(buf.length, 12);
  for (let i = 0; i < n; i++) if (buf[i] !== PROXY_V2_SIGNATURE[i]) return i;
  return n;
}

/** Parses a v2 header at the start of `buf`. Never throws. */
export function parseProxyV2(buf: Buffer, maxHeader = PROXY_V2_MAX_HEADER): ProxyParse {
  const sig = signaturePrefix(buf);
  if (sig < Math.min(buf.length, 12)) return invalid('not a PROXY v2 header');
  if (buf.length < 16) return INCOMPLETE;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return invalid(`unsupported version ${verCmd >> 4}`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return invalid(`unknown command ${cmd}`);
  const fam = buf[13]!;
  const len = buf.readUInt16BE(14);
  if (16 + len > maxHeader) return invalid(`header of ${16 + len} octets exceeds ${maxHeader}`);
  if (buf.length < 16 + len) return INCOMPLETE;
  const length = 16 + len;
  if (cmd === 0) return { ok: true, header: { command: 'local', length } };
  const family = fam >> 4;
  const proto = fam & 0x0f;
  if (proto > 2) return invalid(`unknown transport protocol ${proto}`);
  if (family === 1) {
    if (len < 12) return invalid('address block too short for IPv4');
    return {
      ok: true,
      header: {
        command: 'proxy',
        source: { address: formatIPv4(buf, 16), port: buf.readUInt16BE(24), family: 4 },
        destination: { address: formatIPv4(buf, 20), port: buf.readUInt16BE(26) },
        length,
      },
    };
  }
  if (family === 2) {
    if (len < 36) return invalid('address block too short for IPv6');
    let mapped = buf[26] === 0xff && buf[27] === 0xff;
    for (let i = 16; i < 26 && mapped; i++) if (buf[i] !== 0) mapped = false;
    return {
      ok: true,
      header: {
        command: 'proxy',
        source: mapped
          ? { address: formatIPv4(buf, 28), port: buf.readUInt16BE(48), family: 4 }
          : { address: formatIPv6(buf, 16), port: buf.readUInt16BE(48), family: 6 },
        destination: { address: formatIPv6(buf, 32), port: buf.readUInt16BE(50) },
        length,
      },
    };
  }
  if (family === 0 || family === 3) return { ok: true, header: { command: 'proxy', length } }; // UNSPEC, unix: keep the real peer
  return invalid(`unknown address family ${family}`);
}

/** Builds a v2 header (tests, benchmarks and clients behind a balancer). */
export function buildProxyV2(
  source: { address: string; port: number } | null,
  destination: { address: string; port: number } = { address: '127.0.0.1', port: 53 },
): Buffer {
  if (source === null) return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x20, 0x00, 0, 0])]);
  const s = ipToBytes(source.address);
  let d = ipToBytes(destination.address);
  if (s === null || d === null) throw new TypeError('buildProxyV2: addresses must be IP literals');
  const v6 = s.length === 16 || d.length === 16;
  const six = (b: Buffer) => (b.length === 16 ? b : Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), b]));
  const sb = v6 ? six(s) : s;
  d = v6 ? six(d) : d;
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(source.port, 0);
  ports.writeUInt16BE(destination.port, 2);
  const body = Buffer.concat([sb, d, ports]);
  const head = Buffer.from([0x21, v6 ? 0x21 : 0x11, 0, 0]);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([PROXY_V2_SIGNATURE, head, body]);
}

/** A compiled list of addresses/CIDRs. */
export class AddressSet {
  private readonly cidrs: Cidr[];

  /** Throws `ConfigError` naming `path[i]` for an entry that is neither an address nor a CIDR. */
  constructor(entries: readonly string[], path: string) {
    this.cidrs = entries.map((e, i) => {
      const c = parseCidr(e.includes('/') ? e : `${e}/${e.includes(':') ? 128 : 32}`);
      if (c === null) throw new ConfigError(`${path}[${i}]`, 'must be an IP address or CIDR (10.0.0.0/8, 2001:db8::/32)', e);
      // An IPv4-mapped address given with an IPv6 prefix length does not fit as IPv4: parseCidr rejects it above.
      return c;
    });
  }

  get size(): number {
    return this.cidrs.length;
  }

  /** Whether `address` (text, as a socket reports it; IPv4-mapped counts as IPv4) is in the set. */
  has(address: string | undefined): boolean {
    if (address === undefined || this.cidrs.length === 0) return false;
    const b = ipToBytes(address);
    if (b === null) return false;
    for (const c of this.cidrs) if (cidrContains(c, b)) return true;
    return false;
  }
}

/** Outcome of {@link readProxyPreamble}. */
export type PreambleResult =
  | { readonly ok: true; readonly header: ProxyHeader | null }
  | { readonly ok: false; readonly reason: 'invalid' | 'timeout' | 'closed' | 'untrusted-header'; readonly detail?: string };

/**
 * Reads what a stream listener with PROXY protocol on must read before the
 * connection's own data. From a `trusted` source: a whole v2 header (else
 * failure). From another source: only as many octets as it takes to tell
 * that the stream does not start with the signature (a header from an
 * untrusted source is a failure). Bytes after the header go back into the
 * socket (`unshift`) for whoever reads next (a TLS wrapper reads them too).
 * The socket is left paused.
 */
export function readProxyPreamble(socket: net.Socket, trusted: boolean, timeoutMs: number, done: (r: PreambleResult) => void): void {
  let buf: Buffer | null = null;
  let finished = false;
  const finish = (r: PreambleResult, rest: Buffer | null) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onEnd);
    socket.pause();
    if (rest !== null && rest.length > 0) socket.unshift(rest);
    done(r);
  };
  const onData = (chunk: Buffer) => {
    buf = buf === null ? chunk : Buffer.concat([buf, chunk]);
    if (!trusted) {
      const n = signaturePrefix(buf);
      if (n === 12) finish({ ok: false, reason: 'untrusted-header' }, null);
      else if (n < buf.length) finish({ ok: true, header: null }, buf);
      return;
    }
    const p = parseProxyV2(buf);
    if (p.ok) finish({ ok: true, header: p.header }, buf.subarray(p.header.length));
    else if (!p.incomplete) finish({ ok: false, reason: 'invalid', detail: p.reason }, null);
  };
  const onEnd = () => finish({ ok: false, reason: 'closed' }, null);
  const timer = setTimeout(() => finish(trusted ? { ok: false, reason: 'timeout' } : { ok: true, header: null }, buf), timeoutMs);
  timer.unref();
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', onEnd);
}
