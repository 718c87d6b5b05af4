/**
 * The floor every Node DNS server is measured against: a raw `dgram` server
 * that answers every datagram with precomputed response bytes, patching only
 * the ID. No parsing, no pipeline. Usage: `raw.ts <port> [name]`.
 */
import dgram from 'node:dgram';
import { dnsQuery } from '../lib/proc.js';

const port = Number(process.argv[2] ?? 0);
const name = process.argv[3] ?? 'www.example.com';

// Response = the query with QR|RD|RA, ANCOUNT=1, plus one A record 192.0.2.1 (TTL 3600).
const query = dnsQuery(name, 0);
const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1]);
const precomputed = Buffer.concat([query, answer]);
precomputed.writeUInt16BE(0x8180, 2);
precomputed.writeUInt16BE(1, 6);

const socket = dgram.createSocket({ type: 'udp4' });
socket.on('message', (msg, rinfo) => {
  if (msg.length < 12) return;
  const out = Buffer.allocUnsafe(precomputed.length);
  precomputed.copy(out);
  out[0] = msg[0]!;
  out[1] = msg[1]!;
  socket.send(out, rinfo.port, rinfo.address);
});
socket.bind(port, '127.0.0.1', () => {
  console.log(`listening udp 127.0.0.1:${socket.address().port}`);
});
process.on('SIGTERM', () => socket.close(() => process.exit(0)));
