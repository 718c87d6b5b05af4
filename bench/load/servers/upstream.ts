/**
 * A fast authoritative-for-everything responder used as the upstream of the
 * forwarding and cache-miss scenarios when dnsmasq is not wanted: every A
 * query gets 192.0.2.1, every AAAA ::1 (TTL 3600), anything else NODATA;
 * an OPT in the query is echoed (payload 1232). UDP and TCP.
 * Usage: `upstream.ts <port>`.
 */
import dgram from 'node:dgram';
import net from 'node:net';

const port = Number(process.argv[2] ?? 0);
const A = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1]);
const AAAA = Buffer.from([0xc0, 0x0c, 0, 28, 0, 1, 0, 0, 0x0e, 0x10, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const OPT = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);

/** Builds the response to `msg`, or null when it is not a parseable query. */
function respond(msg: Buffer): Buffer | null {
  if (msg.length < 17 || (msg[2]! & 0x80) !== 0 || msg.readUInt16BE(4) !== 1) return null;
  let off = 12;
  while (off < msg.length) {
    const len = msg[off]!;
    if (len === 0) break;
    if (len > 63) return null;
    off += len + 1;
  }
  const qend = off + 5;
  if (qend > msg.length) return null;
  const qtype = msg.readUInt16BE(off + 1);
  const rr = qtype === 1 ? A : qtype === 28 ? AAAA : null;
  const hasOpt = msg.readUInt16BE(10) > 0;
  const out = Buffer.allocUnsafe(qend + (rr ? rr.length : 0) + (hasOpt ? OPT.length : 0));
  msg.copy(out, 0, 0, qend);
  out[2] = 0x80 | (msg[2]! & 0x01); // QR, opcode 0, RD echoed
  out[3] = 0x80; // RA, NOERROR
  out.writeUInt16BE(rr ? 1 : 0, 6);
  out.writeUInt32BE(hasOpt ? 1 : 0, 8);
  let w = qend;
  if (rr) w += rr.copy(out, w);
  if (hasOpt) OPT.copy(out, w);
  return out;
}

const udp = dgram.createSocket({ type: 'udp4' });
udp.on('message', (msg, rinfo) => {
  const out = respond(msg);
  if (out) udp.send(out, rinfo.port, rinfo.address);
});

const tcp = net.createServer((conn) => {
  let pending = Buffer.alloc(0);
  conn.on('data', (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 2) {
      const len = pending.readUInt16BE(0);
      if (pending.length < 2 + len) break;
      const out = respond(pending.subarray(2, 2 + len));
      pending = pending.subarray(2 + len);
      if (out) {
        const frame = Buffer.allocUnsafe(2 + out.length);
        frame.writeUInt16BE(out.length, 0);
        out.copy(frame, 2);
        conn.write(frame);
      }
    }
  });
  conn.on('error', () => conn.destroy());
});

udp.bind(port, '127.0.0.1', () => {
  tcp.listen(udp.address().port, '127.0.0.1', () => console.log(`listening udp+tcp 127.0.0.1:${udp.address().port}`));
});
process.on('SIGTERM', () => {
  udp.close();
  tcp.close();
  process.exit(0);
});
