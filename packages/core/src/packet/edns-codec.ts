/**
 * @internal EDNS option decoding and encoding.
 */
import { Buffer } from 'node:buffer';
import type { ClientSubnetOption, CookieOption, EdnsOption, ExtendedErrorOption, PaddingOption, TcpKeepaliveOption } from './edns.js';
import { PacketError } from './errors.js';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../wire/ip.js';
import { OptionCode } from './optioncodes.js';
import { badValue, isUint, type Writer } from './writer.js';

function bad(offset: number, why: string): PacketError {
  return new PacketError('BAD_OPTION', offset, why);
}

const addr = new Uint8Array(16);

/**
 * The original value bytes of decoded options whose parsed view does not
 * say everything: EXTRA-TEXT that is not valid UTF-8 (decoded with U+FFFD),
 * padding with non-zero octets. `writeOptions` writes them back while the
 * parsed fields are unchanged, so decode → encode keeps the bytes (and any
 * signature over them). Weak: dropped with the decoded option.
 */
const rawValue = new WeakMap<EdnsOption, Buffer>();

/** Decodes the options in an OPT RDATA from `o` to `end`. */
export function decodeOptions(buf: Buffer, o: number, end: number): EdnsOption[] {
  const options: EdnsOption[] = [];
  while (o < end) {
    if (o + 4 > end) throw bad(o, 'truncated EDNS option header');
    const code = (buf[o] << 8) | buf[o + 1];
    const len = (buf[o + 2] << 8) | buf[o + 3];
    const v = o + 4;
    const ve = v + len;
    if (ve > end) throw bad(o, 'EDNS option runs past the OPT RDATA');
    switch (code) {
      case OptionCode.CLIENT_SUBNET: {
        if (len < 4) throw bad(o, 'client subnet option too short');
        const family = (buf[v] << 8) | buf[v + 1];
        const source = buf[v + 2];
        const scope = buf[v + 3];
        const max = family === 1 ? 32 : family === 2 ? 128 : -1;
        if (max < 0) throw bad(o, `client subnet family ${family} unknown`);
        if (source > max || scope > max) throw bad(o, 'client subnet prefix longer than the address');
        const n = len - 4;
        if (n !== (source + 7) >>> 3) throw bad(o, 'client subnet address length does not match its source prefix');
        addr.fill(0);
        for (let i = 0; i < n; i++) addr[i] = buf[v + 4 + i];
        // RFC 7871 §6: bits beyond SOURCE PREFIX-LENGTH must be zero.
        if (source % 8 !== 0 && (addr[n - 1] & (0xff >>> (source % 8))) !== 0) {
          throw bad(o, 'client subnet address has bits set beyond its source prefix');
        }
        options.push({
          code: OptionCode.CLIENT_SUBNET,
          family: family as 1 | 2,
          sourcePrefixLength: source,
          scopePrefixLength: scope,
          address: family === 1 ? formatIPv4(addr, 0) : formatIPv6(addr, 0),
        });
        break;
      }
      case OptionCode.COOKIE:
        if (len !== 8 && (len < 16 || len > 40)) throw bad(o, 'cookie must be 8 or 16..40 octets');
        options.push(
          len === 8
            ? { code: OptionCode.COOKIE, client: Buffer.copyBytesFrom(buf, v, 8) }
            : {
                code: OptionCode.COOKIE,
                client: Buffer.copyBytesFrom(buf, v, 8),
                server: Buffer.copyBytesFrom(buf, v + 8, len - 8),
              },
        );
        break;
      case OptionCode.TCP_KEEPALIVE:
        if (len === 0) options.push({ code: OptionCode.TCP_KEEPALIVE });
        else if (len === 2) options.push({ code: OptionCode.TCP_KEEPALIVE, timeout: (buf[v] << 8) | buf[v + 1] });
        else throw bad(o, 'tcp keepalive must be 0 or 2 octets');
        break;
      case OptionCode.PADDING: {
        const opt: PaddingOption = { code: OptionCode.PADDING, length: len };
        for (let i = v; i < ve; i++) {
          if (buf[i] !== 0) {
            rawValue.set(opt, Buffer.from(buf.subarray(v, ve)));
            break;
          }
        }
        options.push(opt);
        break;
      }
      case OptionCode.EDE: {
        if (len < 2) throw bad(o, 'extended DNS error too short');
        const extraText = buf.toString('utf8', v + 2, ve);
        const opt: ExtendedErrorOption = { code: OptionCode.EDE, infoCode: (buf[v] << 8) | buf[v + 1], extraText };
        // Invalid UTF-8 decodes with U+FFFD and would not encode back to the same octets.
        if (extraText.indexOf('\ufffd') >= 0) rawValue.set(opt, Buffer.from(buf.subarray(v, ve)));
        options.push(opt);
        break;
      }
      default:
        options.push({ code, data: Buffer.copyBytesFrom(buf, v, len) });
    }
    o = ve;
  }
  return options;
}

function begin(w: Writer, code: number): number {
  w.u16(code, 'option code');
  w.need(2);
  w.pos += 2;
  return w.pos;
}

function finish(w: Writer, at: number): void {
  const len = w.pos - at;
  if (len > 0xffff) badValue('option length', len);
  w.buf[at - 2] = len >>> 8;
  w.buf[at - 1] = len & 0xff;
}

/** Writes options in the given order. */
export function writeOptions(w: Writer, options: readonly EdnsOption[]): void {
  for (const opt of options) {
    if (opt === null || typeof opt !== 'object') badValue('EDNS option', opt);
    if ('data' in opt && opt.data !== undefined) {
      const at = begin(w, opt.code);
      w.bytes(opt.data, 'option data');
      finish(w, at);
      continue;
    }
    switch (opt.code) {
      case OptionCode.CLIENT_SUBNET: {
        const o = opt as ClientSubnetOption;
        const max = o.family === 1 ? 32 : o.family === 2 ? 128 : badValue('client subnet family', o.family);
        const source = o.sourcePrefixLength;
        if (!isUint(source, max)) badValue('client subnet source prefix', source);
        if (!isUint(o.scopePrefixLength, max)) badValue('client subnet scope prefix', o.scopePrefixLength);
        if (o.family === 1) parseIPv4(o.address, addr, 0);
        else parseIPv6(o.address, addr, 0);
        const n = (source + 7) >>> 3;
        // RFC 7871 §6: the address is truncated to SOURCE PREFIX-LENGTH bits, padded with 0 bits.
        if (source % 8 !== 0) addr[n - 1] &= (0xff << (8 - (source % 8))) & 0xff;
        const at = begin(w, opt.code);
        w.u16(o.family, 'family');
        w.u8(source, 'source prefix');
        w.u8(o.scopePrefixLength, 'scope prefix');
        w.bytes(addr.subarray(0, n), 'address');
        finish(w, at);
        break;
      }
      case OptionCode.COOKIE: {
        const c = opt as CookieOption;
        if (!(c.client instanceof Uint8Array) || c.client.length !== 8) badValue('client cookie (8 octets)', c.client);
        const server = c.server;
        if (server !== undefined && (!(server instanceof Uint8Array) || server.length < 8 || server.length > 32)) {
          badValue('server cookie (8..32 octets)', server);
        }
        const at = begin(w, opt.code);
        w.bytes(c.client, 'client cookie');
        if (server !== undefined) w.bytes(server, 'server cookie');
        finish(w, at);
        break;
      }
      case OptionCode.TCP_KEEPALIVE: {
        const at = begin(w, opt.code);
        const timeout = (opt as TcpKeepaliveOption).timeout;
        if (timeout !== undefined) w.u16(timeout, 'keepalive timeout');
        finish(w, at);
        break;
      }
      case OptionCode.PADDING: {
        const len = (opt as PaddingOption).length;
        if (!isUint(len, 0xffff)) badValue('padding length', len);
        const at = begin(w, opt.code);
        const raw = rawValue.get(opt);
        if (raw !== undefined && raw.length === len) {
          w.bytes(raw, 'padding');
        } else {
          w.need(len);
          w.buf.fill(0, w.pos, w.pos + len);
          w.pos += len;
        }
        finish(w, at);
        break;
      }
      case OptionCode.EDE: {
        const at = begin(w, opt.code);
        const e = opt as ExtendedErrorOption;
        const raw = rawValue.get(opt);
        if (raw !== undefined && e.infoCode === ((raw[0] << 8) | raw[1]) && e.extraText === raw.toString('utf8', 2)) {
          w.bytes(raw, 'EDE');
        } else {
          w.u16(e.infoCode, 'EDE info code');
          if (e.extraText) w.utf8(e.extraText, 'EDE extra text');
        }
        finish(w, at);
        break;
      }
      default:
        badValue(`EDNS option ${opt.code} (unknown codes need a data Buffer)`, opt);
    }
  }
}
