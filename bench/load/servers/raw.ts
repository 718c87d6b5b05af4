/**
 * The floor every Node DNS server is measured against: a raw `dgram` server
 * that answers every datagram with precomputed response bytes, patching only
 * the ID. No parsing, no pipeline. Usage: `raw.ts <port> [name]`.
 */
import dgram from 'node:dgram';
import { precomputedAnswer } from '../lib/proc.js';

const port = Number(process.argv[2] ?? 0);
const name = process.argv[3] ?? 'www.example.com';

const precomputed = precomputedAnswer(name);

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
