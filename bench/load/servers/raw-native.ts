/**
 * The floor of the batched native path from JavaScript: `@heimdall/udp`'s
 * socket (recvmmsg/sendmmsg, one JS call per batch) answering every datagram
 * with precomputed bytes, patching only the ID, as `raw.ts` does over
 * node:dgram. What the addon, Node-API and the event loop cost per query
 * before any DNS work. Prints the addon's counters (datagrams per batch) on
 * SIGTERM. Usage: `raw-native.ts <port> [name]`.
 */
import { loadNativeUdp } from '@heimdall/udp';
import { precomputedAnswer } from '../lib/proc.js';

const port = Number(process.argv[2] ?? 0);
const name = process.argv[3] ?? 'www.example.com';

const precomputed = precomputedAnswer(name);
const out = Buffer.from(precomputed);

const load = loadNativeUdp();
if (!load.available) throw new Error(`native UDP unavailable: ${load.reason}`);
const socket = load.open({
  address: '127.0.0.1',
  port,
  maxResponseSize: 1232,
  onBatch(sock, count) {
    let answers = 0;
    for (let i = 0; i < count; i++) {
      if (!sock.valid(i)) continue;
      const at = i * sock.slot;
      out[0] = sock.in[at]!;
      out[1] = sock.in[at + 1]!;
      if (sock.answer(answers, i, out)) answers++;
    }
    return answers;
  },
});
socket.start();
console.log(`listening udp 127.0.0.1:${socket.localPort()}`);
process.on('SIGTERM', () => {
  const s = socket.stats();
  console.log(JSON.stringify({ ...s, perBatch: s.batches > 0 ? s.received / s.batches : 0 }));
  socket.close();
  process.exit(0);
});
