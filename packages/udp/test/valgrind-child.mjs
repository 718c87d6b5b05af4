// Run under valgrind by udp.test.ts: the addon's whole life cycle (open,
// batches of valid and random datagrams, sync answers through sendmmsg,
// async sends with copied and corrupted records, pause, close, GC of the
// handle) so memcheck sees every code path of native/udp.c.
import dgram from 'node:dgram';
import { createRequire } from 'node:module';
const b = createRequire(import.meta.url)(new URL('../build/Release/heimdall_udp.node', import.meta.url).pathname);
const SLOT = 4096,
  OUT = 1232;
const bufs = { in: Buffer.alloc(64 * SLOT), meta: Buffer.alloc(64 * 48), out: Buffer.alloc(64 * OUT), outMeta: Buffer.alloc(64 * 8) };
let seen = 0,
  answered = 0;
const records = [];
const h = b.open({
  address: '0.0.0.0',
  port: 0,
  slot: SLOT,
  outSlot: OUT,
  ...bufs,
  onBatch(n) {
    let j = 0;
    for (let i = 0; i < n; i++) {
      seen++;
      if ((bufs.meta[i * 48 + 3] & 1) === 0) continue;
      const len = bufs.meta.readUInt16LE(i * 48);
      if (i % 3 === 0) {
        records.push(Buffer.from(bufs.meta.subarray(i * 48, i * 48 + 48)));
        continue;
      }
      bufs.out.set(bufs.in.subarray(i * SLOT, i * SLOT + Math.min(len, OUT)), j * OUT);
      bufs.outMeta.writeUInt16LE(i, j * 8);
      bufs.outMeta.writeUInt16LE(0, j * 8 + 2);
      bufs.outMeta.writeUInt32LE(Math.max(1, Math.min(len, OUT)), j * 8 + 4);
      j++;
    }
    // One bogus entry past the datagrams: the addon must skip it.
    if (j < 64) {
      bufs.outMeta.writeUInt16LE(63, j * 8);
      bufs.outMeta.writeUInt32LE(10, j * 8 + 4);
      j++;
    }
    answered += j;
    return j;
  },
});
b.start(h);
const port = b.localPort(h);
const c = dgram.createSocket('udp4');
c.on('message', () => {});
await new Promise((r) => c.bind(0, '127.0.0.1', r));
let x = 1;
for (let k = 0; k < 300; k++) {
  x = (x * 1103515245 + 12345) >>> 0;
  const len = x % 700;
  const d = Buffer.alloc(len, x & 255);
  c.send(d, port, '127.0.0.2');
}
// Until every datagram arrived, or none came for two seconds after the first (the kernel may drop
// some while valgrind is slow); the first may take long under valgrind (Node 24 starts slowly there).
const start = Date.now();
let last = 0,
  quietSince = Date.now();
while (seen < 300 && (seen === 0 ? Date.now() - start < 60_000 : Date.now() - quietSince < 2000)) {
  if (seen !== last) {
    last = seen;
    quietSince = Date.now();
  }
  await new Promise((r) => setTimeout(r, 20));
}
let ok = 0;
for (const rec of records) if (b.send(h, Buffer.from('async answer'), 12, rec) === 1) ok++;
const bad = Buffer.from(records[0] ?? Buffer.alloc(48));
bad[2] = 9;
const r1 = b.send(h, Buffer.from('x'), 1, bad);
const r2 = b.send(h, Buffer.from('x'), 5, records[0] ?? bad); // length past the buffer
const r3 = b.send(h, Buffer.from('x'), 1, Buffer.alloc(10)); // short record
b.pause(h);
const stats = b.stats(h);
b.close(h);
b.close(h);
c.close();
console.log(JSON.stringify({ seen, answered, asyncSent: ok, invalidSends: [r1, r2, r3], stats }));
