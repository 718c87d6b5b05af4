/**
 * Upstream plugin micro-benchmarks. The plugin's internals are not exported
 * from its package: they are imported from its sources by relative path (run
 * from bench/ so that tsx uses bench/tsconfig.json, which enables decorators).
 *
 *   cd /work/main/bench && node --expose-gc --import tsx upstream.bench.ts
 *
 * Cases, each beside a peer in the same run:
 * 1. rewrite: what the forwarder does to a query and its reply
 *    (`prepareQuery` + `forwardReply`: fresh ID-preserving upstream query with
 *    our OPT, reply made ours for the client: header bits, question case, OPT) vs the naive way with
 *    dns-packet (decode + re-encode of both messages);
 * 2. forward: a batch of 64 concurrent queries through `UpstreamClient.resolve`
 *    (UDP, random IDs, source/ID/question checks, health and stats, EDNS
 *    rewrite) to an in-process loopback responder, vs a bare connected
 *    `dgram` client against the same responder (one socket, sequential IDs,
 *    a Map of pending queries, no checks) — the floor any Node forwarder
 *    pays. Reported per query.
 *
 * Writes bench/results/upstream.json. `UDP_SOCKETS=n UDP_QPS=m` override the
 * client's `udp.sockets` / `udp.queriesPerSocket` (source-port pool) to
 * measure what port rotation costs.
 */
import dgram from 'node:dgram';
import { mkdirSync, writeFileSync } from 'node:fs';
import { MessageReader } from '@heimdall/core/packet';
import { UpstreamClient } from '../plugins/upstream/src/client.js';
import { forwardReply, prepareQuery } from '../plugins/upstream/src/edns.js';
import dnsPacket from 'dns-packet';
import { bench, do_not_optimize, run, summary } from 'mitata';

const BATCH = 64;

// www.example.com A, EDNS 1232 (44 bytes), and a reply with 2 A + OPT.
const QUERY = dnsPacket.encode({
  type: 'query',
  id: 0xabcd,
  flags: dnsPacket.RECURSION_DESIRED,
  questions: [{ name: 'www.example.com', type: 'A', class: 'IN' }],
  additionals: [{ name: '.', type: 'OPT', udpPayloadSize: 1232, flags: 0, options: [] } as unknown as dnsPacket.Answer],
});
const REPLY = dnsPacket.encode({
  type: 'response',
  id: 0xabcd,
  flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
  questions: [{ name: 'www.example.com', type: 'A', class: 'IN' }],
  answers: [
    { name: 'www.example.com', type: 'A', class: 'IN', ttl: 300, data: '93.184.216.34' },
    { name: 'www.example.com', type: 'A', class: 'IN', ttl: 300, data: '93.184.216.35' },
  ],
  additionals: [{ name: '.', type: 'OPT', udpPayloadSize: 1232, flags: 0, options: [] } as unknown as dnsPacket.Answer],
});

// The responder: answers every query with REPLY carrying the query's ID (a perfect, instant upstream).
const responder = dgram.createSocket('udp4');
responder.on('message', (msg, rinfo) => {
  const out = Buffer.from(REPLY);
  out[0] = msg[0]!;
  out[1] = msg[1]!;
  responder.send(out, rinfo.port, rinfo.address);
});
await new Promise<void>((r) => responder.bind(0, '127.0.0.1', () => r()));
const port = responder.address().port;

const client = UpstreamClient.create({
  servers: [`udp://127.0.0.1:${port}`],
  timeout: 2000,
  ...(process.env.UDP_QPS ? { udp: { queriesPerSocket: Number(process.env.UDP_QPS), sockets: Number(process.env.UDP_SOCKETS ?? 4) } } : {}),
});

// Peer: the least a Node UDP forwarder can do.
const raw = dgram.createSocket('udp4');
const pending = new Map<number, (b: Buffer) => void>();
raw.on('message', (msg) => {
  const id = (msg[0]! << 8) | msg[1]!;
  const done = pending.get(id);
  if (done) {
    pending.delete(id);
    done(msg);
  }
});
await new Promise<void>((r) => raw.connect(port, '127.0.0.1', () => r()));
let nextId = 0;
function rawExchange(q: Buffer): Promise<Buffer> {
  const id = (nextId = (nextId + 1) & 0xffff);
  const out = Buffer.from(q);
  out[0] = id >> 8;
  out[1] = id & 0xff;
  return new Promise((resolve) => {
    pending.set(id, resolve);
    raw.send(out);
  });
}

// Sanity: both paths work and the client's reply keeps the query's ID.
const check = await client.resolve(QUERY);
if (check.readUInt16BE(0) !== 0xabcd) throw new Error('bad ID from client');
await rawExchange(QUERY);

summary(() => {
  bench('heimdall: prepareQuery + forwardReply', () => {
    const prep = prepareQuery(QUERY, new MessageReader(QUERY), { mode: 'strip' }, 1232, 1232);
    const reply = Buffer.from(REPLY);
    do_not_optimize(forwardReply(reply, prep));
  });
  bench('dns-packet: decode + encode query and reply', () => {
    const q = dnsPacket.decode(QUERY);
    do_not_optimize(dnsPacket.encode(q));
    const r = dnsPacket.decode(REPLY);
    do_not_optimize(dnsPacket.encode(r));
  });
});

const batch: Promise<Buffer>[] = new Array(BATCH);
summary(() => {
  bench(`heimdall: UpstreamClient.resolve x${BATCH} (UDP loopback)`, async () => {
    for (let i = 0; i < BATCH; i++) batch[i] = client.resolve(QUERY);
    await Promise.all(batch);
  });
  bench(`raw dgram: send + match by ID x${BATCH}`, async () => {
    for (let i = 0; i < BATCH; i++) batch[i] = rawExchange(QUERY);
    await Promise.all(batch);
  });
});

type Stats = { avg: number; p75: number; p99: number };
const res = (await run()) as unknown as { benchmarks: { alias?: string; runs: { name: string; stats?: Stats }[] }[] };
const byName = new Map<string, Stats>();
for (const b of res.benchmarks) for (const r of b.runs) if (r.stats) byName.set(r.name ?? b.alias, r.stats);

const round = (n: number) => Math.round(n * 10) / 10;
const cases = [
  {
    name: 'rewrite query + reply',
    ours: 'heimdall: prepareQuery + forwardReply',
    peer: 'dns-packet: decode + encode query and reply',
    peerName: 'dns-packet',
    per: 1,
  },
  {
    name: 'forward over UDP loopback, per query',
    ours: `heimdall: UpstreamClient.resolve x${BATCH} (UDP loopback)`,
    peer: `raw dgram: send + match by ID x${BATCH}`,
    peerName: 'raw dgram',
    per: BATCH,
  },
];
const results = cases.map((c) => {
  const a = byName.get(c.ours);
  const p = byName.get(c.peer);
  return {
    name: c.name,
    avgNs: a ? round(a.avg / c.per) : null,
    p75Ns: a ? round(a.p75 / c.per) : null,
    p99Ns: a ? round(a.p99 / c.per) : null,
    peer: c.peerName,
    peerAvgNs: p ? round(p.avg / c.per) : null,
    ratio: a && p ? Math.round((p.avg / a.avg) * 100) / 100 : null,
  };
});
const out = {
  bench: 'upstream',
  date: new Date().toISOString(),
  node: process.version,
  better: 'higher',
  note: `ratio = peer avg / heimdall avg (higher is better; < 1 means heimdall is slower). Forward case: batches of ${BATCH} concurrent queries, per-query figures. Machine shared with other work when measured.`,
  results,
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/upstream.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
console.table(results.map((r) => ({ case: r.name, 'avg ns': r.avgNs, 'p99 ns': r.p99Ns, peer: r.peer, 'peer ns': r.peerAvgNs, ratio: r.ratio })));
await client.close();
raw.close();
responder.close();
