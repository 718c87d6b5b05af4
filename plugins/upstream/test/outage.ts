/**
 * Outage measurement (not a test). A resolver process (outage-resolver.mjs) runs a local
 * answer for `cached.test` and the upstream plugin, defaults, pointed at a
 * black-hole upstream (a FakeUpstream in this process that never replies).
 * This process loads it over UDP loopback: new names at --qps for --seconds,
 * plus `cached.test` 100 times a second. It reports the resolver process's
 * RSS (idle: after start and 2 s of cached queries only; peak and end during
 * the flood, read from /proc), how long `cached.test` took meanwhile, the
 * resolver's own event-loop delay, and the rcodes the flood got.
 *
 *   TSX_TSCONFIG_PATH=plugins/upstream/tsconfig.json \
 *     node --import tsx plugins/upstream/test/outage.ts [plugin entry] [qps] [seconds]
 *
 * Build first (`npx turbo run build --filter=@heimdall/plugin-upstream...`).
 * The plugin entry defaults to this package's dist/index.js; pass the old
 * code's entry (a `git worktree` of an earlier commit) to compare. The
 * load, the black hole and the resolver are separate processes on purpose:
 * in one process the client's own timers and garbage showed up as the
 * resolver's latency, and its memory as the resolver's.
 *
 * Environment: OUTAGE_EXEC_ARGV (Node flags of the resolver, space-separated),
 * OUTAGE_OPTIONS (JSON merged into the plugin's options), OUTAGE_RESOLVER
 * (another resolver script, e.g. one that writes heap snapshots).
 */
import { fork } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FakeUpstream, query } from '@heimdall/testing';

const entry = resolve(process.argv[2] ?? new URL('../dist/index.js', import.meta.url).pathname);
const qps = Number(process.argv[3] ?? 2000);
const seconds = Number(process.argv[4] ?? 20);

await loadProcess();

async function loadProcess(): Promise<void> {
  const hole = await FakeUpstream.start();
  hole.otherwise({ drop: true });
  // Keep the black hole's memory flat: it records every query otherwise.
  setInterval(() => hole.reset(), 1000).unref();

  // The resolver runs the built packages (dist) in plain Node, as in
  // production: no TypeScript loader in its memory.
  const child = fork(process.env.OUTAGE_RESOLVER ?? new URL('./outage-resolver.mjs', import.meta.url).pathname, [entry], {
    env: { ...process.env, OUTAGE_UPSTREAM: hole.endpoint },
    execArgv: process.env.OUTAGE_EXEC_ARGV ? process.env.OUTAGE_EXEC_ARGV.split(' ') : [],
  });
  const hardStop = setTimeout(
    () => {
      child.kill('SIGKILL');
      process.exit(3);
    },
    (seconds + 60) * 1000,
  );
  const { port } = await new Promise<{ port: number }>((r) => child.once('message', (m) => r(m as { port: number })));
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) * 1024;

  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.connect(port, '127.0.0.1', () => r()));
  // A large receive buffer on the load side, so that what is lost is lost in the resolver, not here.
  sock.setRecvBufferSize(16 * 1024 * 1024);
  const rcodes = new Map<number, number>();
  const sentAt = new Map<number, number>();
  let cachedRtt: number[] = [];
  const floodRtt: number[] = [];
  sock.on('message', (m) => {
    const qid = m.readUInt16BE(0);
    const t = sentAt.get(qid);
    if (t === undefined) return;
    sentAt.delete(qid);
    const ms = performance.now() - t;
    if (qid >= 0xff00) cachedRtt.push(ms);
    else {
      floodRtt.push(ms);
      rcodes.set(m[3]! & 15, (rcodes.get(m[3]! & 15) ?? 0) + 1);
    }
  });
  function send(name: string, qid: number): void {
    sentAt.set(qid, performance.now());
    sock.send(query(name, 'A', { id: qid, edns: true }));
  }
  let cachedId = 0xff00;
  const cached = () => {
    cachedId = cachedId === 0xffff ? 0xff00 : cachedId + 1;
    send('cached.test', cachedId);
  };

  // Idle: 2 s of cached queries only.
  const warm = setInterval(cached, 10);
  await new Promise((r) => setTimeout(r, 2000));
  clearInterval(warm);
  const idleCached = cachedRtt;
  cachedRtt = [];
  const rssIdle = rss();

  child.send('flood');
  const rssSamples: number[] = [];
  let n = 0;
  let id = 0;
  const start = performance.now();
  let tick = 0;
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      tick++;
      const due = Math.floor(((performance.now() - start) / 1000) * qps);
      while (n < due) {
        id = (id + 1) % 0xff00;
        send(`n${n++}.outage.test`, id);
      }
      cached();
      if (tick % 10 === 0) rssSamples.push(rss());
      if (performance.now() - start >= seconds * 1000) {
        clearInterval(timer);
        done();
      }
    }, 10);
  });
  // Let the last queries run into their deadlines.
  await new Promise((r) => setTimeout(r, 6000));
  rssSamples.push(rss());
  child.send('report');
  const loop = await new Promise<{ p99: number; max: number }>((r) => child.once('message', (m) => r(m as { p99: number; max: number })));
  const pct = (a: number[], p: number) => {
    const s = [...a].sort((x, y) => x - y);
    return s.length ? Math.round(s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]! * 10) / 10 : null;
  };
  const mb = (b: number) => Math.round(b / 1048576);
  const peak = Math.max(...rssSamples);
  console.log(
    JSON.stringify(
      {
        entry,
        qps,
        seconds,
        sent: n,
        answered: floodRtt.length,
        rcodes: Object.fromEntries([...rcodes].map(([k, v]) => [['NOERROR', 'FORMERR', 'SERVFAIL'][k] ?? k, v])),
        floodMs: { p50: pct(floodRtt, 50), p99: pct(floodRtt, 99) },
        resolverRssMB: {
          idle: mb(rssIdle),
          peak: mb(peak),
          end: mb(rssSamples[rssSamples.length - 1]!),
          peakOverIdle: Math.round((peak / rssIdle) * 100) / 100,
        },
        resolverEventLoopDelayMs: loop,
        cachedMsIdle: { n: idleCached.length, p50: pct(idleCached, 50), p99: pct(idleCached, 99) },
        cachedMs: { n: cachedRtt.length, p50: pct(cachedRtt, 50), p99: pct(cachedRtt, 99), max: pct(cachedRtt, 100) },
      },
      null,
      1,
    ),
  );
  clearTimeout(hardStop);
  sock.close();
  await hole.close();
  process.exit(0);
}
