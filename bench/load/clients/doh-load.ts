/**
 * A bounded DoH load client (dnsperf 2.10's DoH cannot keep several queries
 * in flight on a session): `connections` HTTP/2 sessions, each keeping
 * `streams` POST requests (`application/dns-message`) in flight, for
 * `seconds`, cycling through the query file. Prints one JSON line:
 * `{ sent, completed, errors, qps, runSeconds, avgUs, p50Us, p99Us, p999Us, rcodes, clientCpuUsPerQuery, clientCpuPercent }`
 * (the client's own CPU per answered query and as a share of one core: near
 * 100 % means the client, not the server, bounds the QPS).
 * Usage: `doh-load.ts <url> <queryFile> <seconds> <connections> <streams>`.
 */
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';

const [url, file, secondsText, connText, streamsText] = process.argv.slice(2) as [string, string, string, string, string];
const seconds = Math.min(Number(secondsText), 300);
const connections = Number(connText);
const streams = Number(streamsText);

const TYPES: Record<string, number> = { A: 1, AAAA: 28, TXT: 16, MX: 15 };
function wire(name: string, type: number): Buffer {
  const labels = name.split('.').filter(Boolean);
  const out = Buffer.alloc(12 + labels.reduce((n, l) => n + l.length + 1, 1) + 4);
  out.writeUInt16BE(0, 0); // RFC 8484 §4.1: ID 0
  out.writeUInt16BE(0x0100, 2);
  out.writeUInt16BE(1, 4);
  let p = 12;
  for (const l of labels) {
    out[p++] = l.length;
    p += out.write(l, p, 'ascii');
  }
  out[p++] = 0;
  out.writeUInt16BE(type, p);
  out.writeUInt16BE(1, p + 2);
  return out;
}
const queries = readFileSync(file, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => {
    const [name, type] = l.trim().split(/\s+/);
    return wire(name!, TYPES[type ?? 'A'] ?? 1);
  });

const hist = new Uint32Array(2_000_001);
const rcodes: Record<number, number> = {};
let sent = 0;
let completed = 0;
let errors = 0;
let next = 0;
let latencySum = 0;
const started = performance.now();
const cpuStart = process.cpuUsage();
const stopAt = started + seconds * 1000;
let running = true;

function issue(session: http2.ClientHttp2Session): void {
  if (!running || session.closed || session.destroyed) return;
  const q = queries[next++ % queries.length]!;
  const t0 = performance.now();
  sent++;
  const req = session.request({
    ':method': 'POST',
    ':path': new URL(url).pathname,
    'content-type': 'application/dns-message',
    accept: 'application/dns-message',
    'content-length': q.length,
  });
  const chunks: Buffer[] = [];
  let status = 0;
  req.on('response', (h) => {
    status = Number(h[':status']);
  });
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    if (status === 200 && body.length >= 12) {
      completed++;
      const us = (performance.now() - t0) * 1000;
      latencySum += us;
      hist[Math.min(Math.round(us), 2_000_000)]!++;
      rcodes[body[3]! & 15] = (rcodes[body[3]! & 15] ?? 0) + 1;
    } else errors++;
    issue(session);
  });
  req.on('error', () => {
    errors++;
  });
  req.end(q);
}

const sessions = Array.from({ length: connections }, () => {
  const s = http2.connect(url, { rejectUnauthorized: false, settings: { initialWindowSize: 1 << 20 } });
  s.on('error', () => {
    errors++;
  });
  s.once('connect', () => {
    for (let i = 0; i < streams; i++) issue(s);
  });
  return s;
});

setTimeout(
  () => {
    running = false;
    const runSeconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    const cpuUs = cpu.user + cpu.system;
    const pct = (p: number) => {
      const target = Math.ceil(completed * p);
      let seen = 0;
      for (let i = 0; i < hist.length; i++) {
        seen += hist[i]!;
        if (seen >= target) return i;
      }
      return null;
    };
    const names = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
    const rc: Record<string, number> = {};
    for (const [k, v] of Object.entries(rcodes)) rc[names[Number(k)] ?? k] = v;
    console.log(
      JSON.stringify({
        sent,
        completed,
        errors,
        lost: sent - completed,
        qps: completed / runSeconds,
        runSeconds,
        avgUs: completed ? latencySum / completed : 0,
        p50Us: completed ? pct(0.5) : null,
        p99Us: completed ? pct(0.99) : null,
        p999Us: completed ? pct(0.999) : null,
        rcodes: rc,
        clientCpuUsPerQuery: completed ? cpuUs / completed : null,
        clientCpuPercent: (cpuUs / (runSeconds * 1e6)) * 100,
      }),
    );
    for (const s of sessions) s.destroy();
    process.exit(0);
  },
  Math.max(0, stopAt - performance.now()),
);
setTimeout(() => process.exit(2), (seconds + 10) * 1000).unref();
