/**
 * `npm run bench:load`: the load harness — dnsperf, and the batched UDP
 * client (client/batchperf.c, built with cc) for the `pipeline` and
 * `cache-hit` rows, where dnsperf (~130k QPS) would be the bottleneck.
 *
 * Installs what is missing (dnsperf, dnsmasq, unbound from Debian packages),
 * starts a fast local upstream, and measures in one run, with every server
 * pinned to CPU 0 and dnsperf (and the upstream) pinned to CPU 1:
 *
 * - `pipeline` (issue 3): a Heimdall resolver with one synchronous answering
 *   middleware vs a raw `dgram` server replying with precomputed bytes;
 * - `forward` (issue 4): Heimdall forwarding with the upstream plugin only
 *   (no cache) vs `dnsmasq --cache-size=0`, both to the same upstream;
 * - `app` (issue 7): the reference app (full default chain, blocking on with
 *   a 100k-entry list) vs dnsmasq and unbound as caching forwarders: resident
 *   memory with 100k cached entries, cache hits at full speed, p99 at a fixed
 *   10,000 QPS, cache misses at full speed;
 * - `encrypted` (issue 13): cache hits over DNS over TLS and DNS over HTTPS
 *   (dnsperf `-m dot` / `-m doh`, 16 connections kept for the run, 200
 *   queries outstanding) from a Heimdall caching forwarder (cache →
 *   upstream) beside unbound's DoT (1 thread) in the same run.
 *
 * Output: `bench/results/load.json` and `bench/results/load.md`; a full run
 * (no `--only`, default `--out`) also refreshes the table in README.md.
 * Flags: `--seconds N` (per measurement, default 8), `--only pipeline,forward,app,encrypted`,
 * `--out DIR`, `--profile-doh DIR` (encrypted only: measure DoH alone with
 * the V8 CPU profiler running in the Heimdall server over the measured
 * window, write the `.cpuprofile` to DIR and print its top frames;
 * `lib/cpuprofile.ts` summarises any profile).
 * Loopback only; every child is killed when the harness exits.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBatchperf, runBatchperf } from './lib/batchperf.js';
import { type ClientReport, type DnsperfResult, runDnsperf } from './lib/dnsperf.js';
import { hasBinary, ensureTools } from './lib/packages.js';
import { type Command, dnsmasqForwarder, dnsmasqUpstream, unboundDot, unboundForwarder } from './lib/peers.js';
import { cpuMicros, freePort, type Pinned, rssBytes, sleep, runMain } from './lib/proc.js';
import { appConfig, CLIENT_CORE, defaultChain, type LoadRow, flag, resultRow, SERVER_CORE, startServer } from './lib/harness.js';
import { blocklistFile, nameFile } from './lib/queries.js';
import { summarizeProfile } from './lib/cpuprofile.js';
import { selfSignedCertificate } from '@heimdall/testing';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const seconds = Number(flag('seconds', '8'));
const SCENARIOS = 'pipeline,forward,app,encrypted';
const only = new Set(flag('only', SCENARIOS).split(','));
const outDir = resolve(flag('out', join(repo, 'bench/results')));
const profileDoh = flag('profile-doh', '');
const HIT_NAMES = 1000;
const CACHE_FILL = 100_000;
const BLOCKLIST_SIZE = 100_000;
const FIXED_QPS = 10_000;

/** One measured line of the table. */
interface Row extends LoadRow {
  rcodes: Record<string, number>;
  /** Server CPU time over the run's wall time, % of one core (100 = the server's core was saturated). */
  serverCpuPercent?: number;
  /** DoH rows: the load client's own CPU per answered query, and as % of its core (near 100: the client bounds the QPS). */
  clientCpuUsPerQuery?: number | null;
  clientCpuPercent?: number;
}

const rows: Row[] = [];
const notes: string[] = [];
const tmp = mkdtempSync(join(os.tmpdir(), 'heimdall-load-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const tsxNode = (script: string, args: string[]): Command => ({
  command: process.execPath,
  args: ['--import', 'tsx', join(here, script), ...args],
});

/** Runs dnsperf against `server` and records a row with its CPU cost per query. */
async function measure(
  scenario: string,
  server: Pinned,
  port: number,
  queryFile: string,
  opts: {
    qps?: number;
    maxRuns?: number;
    seconds?: number;
    keep?: boolean;
    mode?: 'udp' | 'tcp' | 'dot' | 'doh';
    extra?: string[];
    clients?: number;
    /** `batch`: the batched UDP client (client/batchperf.c, 4000 in flight) where dnsperf (~130k QPS) would be the bottleneck. */
    client?: 'dnsperf' | 'batch';
  } = {},
): Promise<Row> {
  const cpu0 = cpuMicros(server.pid);
  const batch = opts.client === 'batch' && (opts.mode ?? 'udp') === 'udp' && batchClient;
  const r: DnsperfResult = await (batch ? runBatchperf : runDnsperf)({
    port,
    queryFile,
    seconds: opts.seconds ?? seconds,
    maxRuns: opts.maxRuns,
    qps: opts.qps,
    core: CLIENT_CORE,
    tmpDir: tmp,
    mode: opts.mode,
    extra: opts.extra,
    clients: opts.clients,
  });
  const cpu1 = cpuMicros(server.pid);
  const row: Row = resultRow(scenario, server, r, cpu1 - cpu0, { rcodes: r.rcodes });
  if (opts.keep === false) return row;
  rows.push(row);
  console.log(
    `  ${scenario.padEnd(22)} ${server.name.padEnd(16)} ${String(row.qps).padStart(7)} qps  avg ${row.avgUs} µs  p99 ${row.p99Us} µs  lost ${row.lost}  cpu ${row.cpuUsPerQuery} µs/q  rss ${row.rssMB} MB`,
  );
  return row;
}

/** The fast upstream: dnsmasq authoritative for everything, pinned with the client. */
async function startUpstream(): Promise<{ server: Pinned; port: number }> {
  const port = await freePort();
  const cmd = hasBinary('dnsmasq') ? dnsmasqUpstream(port) : tsxNode('servers/upstream.ts', [String(port)]);
  const server = await startServer('upstream', cmd, port, CLIENT_CORE);
  return { server, port };
}

function appBuilt(): string | null {
  const cli = join(repo, 'apps/heimdall/dist/cli.js');
  return existsSync(cli) ? cli : null;
}

/** Whether the batched UDP client could be built (cc): then it measures the pipeline and cache-hit rows. */
let batchClient = false;
function setUpBatchClient(): void {
  try {
    buildBatchperf(tmp);
    batchClient = true;
    notes.push(
      'client: the pipeline, cache-hit rows (and their warm-ups) with the batched UDP client (client/batchperf.c: sendmmsg/recvmmsg, 4000 in flight, 4 sockets), since dnsperf saturates near 130k QPS; every other row with dnsperf',
    );
  } catch (err) {
    notes.push(`client: batched client not built (${(err as Error).message.split('\n')[0]}): dnsperf for every row`);
  }
}

async function scenarioPipeline(): Promise<void> {
  console.log('pipeline: one sync answering middleware vs raw dgram (issue 3)');
  const q = join(tmp, 'single.txt');
  writeFileSync(q, 'www.example.com A\n');
  const servers: Array<[string, (port: number) => Command]> = [
    ['raw-dgram', (port) => tsxNode('servers/raw.ts', [String(port), 'www.example.com'])],
    ['heimdall-sync', (port) => tsxNode('servers/sync-resolver.ts', [String(port)])],
  ];
  for (const [name, make] of servers) {
    if (name === 'heimdall-sync' && !existsSync(join(here, 'servers/sync-resolver.ts'))) {
      notes.push('pipeline: servers/sync-resolver.ts not present, heimdall-sync skipped');
      continue;
    }
    const port = await freePort();
    const server = await startServer(name, make(port), port);
    await measure('pipeline', server, port, q, { seconds: 1, keep: false, client: 'batch' }); // warm-up (JIT)
    await measure('pipeline', server, port, q, { client: 'batch' });
    await server.stop();
  }
}

async function scenarioForward(): Promise<void> {
  console.log('forward: cache off, to a local upstream (issue 4)');
  const upstream = await startUpstream();
  const q = await nameFile(join(tmp, 'forward.txt'), 'fwd', 10_000);
  const servers: Array<[string, (port: number) => Command]> = [
    ['dnsmasq-nocache', (port) => dnsmasqForwarder(port, upstream.port, 0)],
    ['heimdall-forward', (port) => tsxNode('servers/forwarder.ts', [String(port), String(upstream.port)])],
  ];
  try {
    for (const [name, make] of servers) {
      if (name === 'heimdall-forward' && !existsSync(join(here, 'servers/forwarder.ts'))) {
        notes.push('forward: servers/forwarder.ts not present, heimdall-forward skipped');
        continue;
      }
      if (name.startsWith('dnsmasq') && !hasBinary('dnsmasq')) continue;
      const port = await freePort();
      const server = await startServer(name, make(port), port);
      await measure('forward', server, port, q, { seconds: 1, keep: false });
      await measure('forward', server, port, q);
      await server.stop();
    }
  } finally {
    await upstream.server.stop();
  }
}

async function scenarioApp(): Promise<void> {
  console.log('app: caching resolvers, blocking on (issue 7)');
  const upstream = await startUpstream();
  const hit = await nameFile(join(tmp, 'hit.txt'), 'hit', HIT_NAMES);
  const fill = await nameFile(join(tmp, 'fill.txt'), 'fill', CACHE_FILL);
  const miss = await nameFile(join(tmp, 'miss.txt'), 'miss', 800_000);
  const blocklist = await blocklistFile(join(tmp, 'blocklist.txt'), BLOCKLIST_SIZE);
  const servers: Array<[string, (port: number) => Command]> = [];
  const cli = appBuilt();
  if (cli) {
    servers.push([
      'heimdall',
      (port) => {
        const config = join(tmp, `heimdall-${port}.json`);
        writeFileSync(config, JSON.stringify(appConfig(port, { plugins: defaultChain(blocklist, upstream.port) }), null, 2));
        // Same V8 flag and malloc setting as the `heimdall` bin and `npm start`
        // (smaller young generation; big native buffers always mmap'd so they go back to the OS).
        return { command: process.execPath, args: ['--max-semi-space-size=4', cli, '--config', config], env: { MALLOC_MMAP_THRESHOLD_: '131072' } };
      },
    ]);
  } else {
    notes.push('app: apps/heimdall/dist/cli.js not built, heimdall skipped');
  }
  if (hasBinary('dnsmasq')) servers.push(['dnsmasq', (port) => dnsmasqForwarder(port, upstream.port, 150_000)]);
  notes.push(
    'peers: dnsmasq --cache-size=150000 --dns-forward-max=4096 (so 100k entries fit; its eviction at that size slows its miss run), unbound 1 thread, no validator, msg/rrset caches 128/256 MB; heimdall: (default localOnly acl) metrics → stats → special-use → blocking (100k-entry hosts list) → cache (maxEntries 250k) → dedup → upstream, node --max-semi-space-size=4, MALLOC_MMAP_THRESHOLD_=131072',
  );
  if (hasBinary('unbound')) servers.push(['unbound', (port) => unboundForwarder(tmp, port, upstream.port)]);
  try {
    for (const [name, make] of servers) {
      const port = await freePort();
      const server = await startServer(name, make(port), port);
      const idle = rssBytes(server.pid);
      // Fill: 100k distinct names once through, then resident memory.
      await measure('fill-100k', server, port, fill, { maxRuns: 1, seconds: 60 });
      await sleep(500);
      const filled = rssBytes(server.pid);
      rows[rows.length - 1]!.rssMB = Number((filled / 2 ** 20).toFixed(1));
      notes.push(`${name}: RSS idle ${(idle / 2 ** 20).toFixed(1)} MB, with ${CACHE_FILL} cached entries ${(filled / 2 ** 20).toFixed(1)} MB`);
      // Warm the hit set, then measure at full speed and at a fixed rate.
      await measure('warm', server, port, hit, { maxRuns: 2, seconds: 30, keep: false });
      await measure('cache-hit', server, port, hit, { seconds: 1, keep: false, client: 'batch' });
      await measure('cache-hit', server, port, hit, { client: 'batch' });
      await measure(`hit-fixed-${FIXED_QPS / 1000}k-qps`, server, port, hit, { qps: FIXED_QPS });
      await measure('cache-miss', server, port, miss, { maxRuns: 1 });
      await server.stop();
    }
  } finally {
    await upstream.server.stop();
  }
}

/** Measures DoH with the bounded Node client (clients/doh-load.ts) pinned to the client core. */
async function measureDoh(scenario: string, server: Pinned, port: number, queryFile: string, secs: number, keep: boolean): Promise<void> {
  const cpu0 = cpuMicros(server.pid);
  const t0 = performance.now();
  const args = ['--import', 'tsx', join(here, 'clients/doh-load.ts'), `https://127.0.0.1:${port}/dns-query`, queryFile, String(secs), '4', '32'];
  const argv =
    spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status === 0
      ? ['taskset', '-c', String(CLIENT_CORE), process.execPath, ...args]
      : [process.execPath, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: (secs + 30) * 1000 });
  const cpu1 = cpuMicros(server.pid);
  const wallUs = (performance.now() - t0) * 1000;
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let res: ClientReport & {
    clientCpuUsPerQuery: number | null;
    clientCpuPercent: number;
  };
  try {
    res = JSON.parse(line);
  } catch {
    throw new Error(`doh-load failed (${r.status}): ${r.stderr.slice(0, 2000)}`);
  }
  if (!keep) return;
  const row: Row = {
    ...resultRow(scenario, server, res, cpu1 - cpu0, { rcodes: res.rcodes }),
    // The client process's wall time includes tsx start-up: the share is of that whole time (a slight under-estimate).
    serverCpuPercent: Math.round(((cpu1 - cpu0) / wallUs) * 100),
    clientCpuUsPerQuery: res.clientCpuUsPerQuery === null ? null : Number(res.clientCpuUsPerQuery.toFixed(2)),
    clientCpuPercent: Math.round(res.clientCpuPercent),
  };
  rows.push(row);
  console.log(
    `  ${scenario.padEnd(22)} ${server.name.padEnd(16)} ${String(row.qps).padStart(7)} qps  avg ${row.avgUs} µs  p99 ${row.p99Us} µs  lost ${row.lost}  cpu ${row.cpuUsPerQuery} µs/q  rss ${row.rssMB} MB  server core ${row.serverCpuPercent} %  client ${row.clientCpuUsPerQuery} µs/q, core ${row.clientCpuPercent} %`,
  );
  notes.push(
    `${scenario} (${server.name}): server ${row.cpuUsPerQuery} µs CPU/query, ${row.serverCpuPercent} % of its core; DoH client ${row.clientCpuUsPerQuery} µs CPU/query, ${row.clientCpuPercent} % of its core (${row.clientCpuPercent! >= 90 ? 'the client is the bottleneck' : row.serverCpuPercent! >= 90 ? 'the server is the bottleneck' : 'neither core saturated'})`,
  );
}

/** A self-signed EC pair for the encrypted listeners (openssl). */
function benchCertificate(): { cert: string; key: string } {
  return selfSignedCertificate(tmp, { name: 'bench' });
}

async function scenarioEncrypted(): Promise<void> {
  console.log('encrypted: cache hits over DoT and DoH, reused connections (issue 13)');
  const upstream = await startUpstream();
  const hit = await nameFile(join(tmp, 'hit-enc.txt'), 'hit', HIT_NAMES);
  const { cert, key } = benchCertificate();
  const dot = { mode: 'dot' as const, clients: 16 };
  notes.push(
    'encrypted: DoT with dnsperf -m dot, 16 connections kept for the run, 200 outstanding; DoH with clients/doh-load.ts (Node http2, pinned with the client core: 4 sessions × 32 streams of POST; dnsperf 2.10 cannot keep queries in flight on a DoH session), so the DoH row may be client-bound — compare its server CPU µs/query; TLS 1.3, P-256 ECDSA; heimdall: cache → upstream (node --conditions=source), tls/https listeners with default settings (padding on); unbound: 1 thread, tls-port',
  );
  try {
    // Heimdall: UDP (probe, warm-up), DoT and DoH in one process.
    const [port, dotPort, dohPort] = [await freePort(), await freePort(), await freePort()];
    const heimdall = await startServer(
      'heimdall',
      {
        command: process.execPath,
        args: [
          '--conditions=source',
          '--import',
          'tsx',
          join(here, 'servers/encrypted.ts'),
          String(port),
          String(dotPort),
          String(dohPort),
          String(upstream.port),
          cert,
          key,
        ],
        env: { TSX_TSCONFIG_PATH: join(repo, 'tsconfig.base.json'), ...(profileDoh ? { HEIMDALL_PROFILE_DIR: resolve(profileDoh) } : {}) },
      },
      port,
    );
    if (profileDoh) {
      // Profile mode: DoH alone (its 1 s warm-up fills the cache), then the profile's top frames.
      mkdirSync(profileDoh, { recursive: true });
      const before = new Set(readdirSync(profileDoh));
      let file: string | undefined;
      try {
        await measureDoh('doh-cache-hit', heimdall, dohPort, hit, 1, false);
        // The client's start-up (tsx) falls inside the profile too; it is idle time on the server.
        heimdall.child.kill('SIGUSR2');
        await measureDoh('doh-cache-hit', heimdall, dohPort, hit, seconds, true);
        heimdall.child.kill('SIGUSR2');
        for (let i = 0; i < 300 && file === undefined; i++) {
          await sleep(100);
          file = readdirSync(profileDoh).find((f) => f.endsWith('.cpuprofile') && !before.has(f));
        }
      } finally {
        await heimdall.stop();
      }
      if (file === undefined) throw new Error(`no .cpuprofile written to ${profileDoh}`);
      console.log(`\n${join(profileDoh, file)}\n${summarizeProfile(join(profileDoh, file), 30).join('\n')}`);
      return;
    }
    try {
      await measure('warm', heimdall, port, hit, { maxRuns: 2, seconds: 30, keep: false });
      await measure('dot-cache-hit', heimdall, dotPort, hit, { ...dot, seconds: 1, keep: false });
      await measure('dot-cache-hit', heimdall, dotPort, hit, dot);
      await measureDoh('doh-cache-hit', heimdall, dohPort, hit, 1, false);
      await measureDoh('doh-cache-hit', heimdall, dohPort, hit, seconds, true);
      await measure('udp-cache-hit', heimdall, port, hit);
    } finally {
      await heimdall.stop();
    }
    if (hasBinary('unbound')) {
      const [uport, udot] = [await freePort(), await freePort()];
      const unbound = await startServer('unbound', unboundDot(tmp, uport, udot, upstream.port, cert, key), uport);
      try {
        await measure('warm', unbound, uport, hit, { maxRuns: 2, seconds: 30, keep: false });
        await measure('dot-cache-hit', unbound, udot, hit, { ...dot, seconds: 1, keep: false });
        await measure('dot-cache-hit', unbound, udot, hit, dot);
        await measure('udp-cache-hit', unbound, uport, hit);
      } finally {
        await unbound.stop();
      }
    }
  } finally {
    await upstream.server.stop();
  }
}

function versionOf(cmd: string, args: string[], re: RegExp): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const m = re.exec(`${r.stdout}${r.stderr}`);
  return m ? m[1]! : null;
}

function fmt(n: number | null | undefined): string {
  return n === null || n === undefined || Number.isNaN(n) ? '–' : String(n);
}

/** CPU-based ratio: b's CPU µs/query over a's (what the QPS ratio would be if both servers were CPU-bound). */
function cpuRatio(scenario: string, a: string, b: string, scenarioB = scenario): number | null {
  const ra = rows.find((r) => r.scenario === scenario && r.server === a);
  const rb = rows.find((r) => r.scenario === scenarioB && r.server === b);
  return ra && rb && ra.cpuUsPerQuery > 0 ? Number((rb.cpuUsPerQuery / ra.cpuUsPerQuery).toFixed(3)) : null;
}

function ratio(scenario: string, a: string, b: string, scenarioB = scenario): number | null {
  const ra = rows.find((r) => r.scenario === scenario && r.server === a);
  const rb = rows.find((r) => r.scenario === scenarioB && r.server === b);
  return ra && rb && rb.qps > 0 ? Number((ra.qps / rb.qps).toFixed(3)) : null;
}

async function main(): Promise<void> {
  const missing = ensureTools(['dnsperf', 'dnsmasq', 'unbound']);
  if (missing.includes('dnsperf')) throw new Error('dnsperf is required and could not be installed');
  for (const m of missing) notes.push(`${m} missing: its rows are absent`);
  setUpBatchClient();
  const started = Date.now();
  if (only.has('pipeline')) await scenarioPipeline();
  if (only.has('forward')) await scenarioForward();
  if (only.has('app')) await scenarioApp();
  if (only.has('encrypted')) await scenarioEncrypted();

  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
  };
  const versions = {
    dnsperf: versionOf('dnsperf', ['-h'], /Version (\S+)/),
    dnsmasq: hasBinary('dnsmasq') ? versionOf('dnsmasq', ['--version'], /version (\S+)/) : null,
    unbound: hasBinary('unbound') ? versionOf('unbound', ['-V'], /Version (\S+)/) : null,
  };
  const ratios = {
    'pipeline: heimdall-sync / raw-dgram (target ≥ 0.9)': ratio('pipeline', 'heimdall-sync', 'raw-dgram'),
    'forward: heimdall-forward / dnsmasq-nocache (target ≥ 0.7)': ratio('forward', 'heimdall-forward', 'dnsmasq-nocache'),
    'cache-hit: heimdall / dnsmasq (target ≥ 0.75)': ratio('cache-hit', 'heimdall', 'dnsmasq'),
    'cache-hit: heimdall / unbound': ratio('cache-hit', 'heimdall', 'unbound'),
    // Issue 7: the full app's cache hits against the raw dgram server of the pipeline scenario (same run).
    'cache-hit: heimdall / raw-dgram (target ≥ 0.9)': ratio('cache-hit', 'heimdall', 'raw-dgram', 'pipeline'),
    'cache-hit by CPU µs/query: raw-dgram / heimdall': cpuRatio('cache-hit', 'heimdall', 'raw-dgram', 'pipeline'),
    'cache-miss: heimdall / dnsmasq': ratio('cache-miss', 'heimdall', 'dnsmasq'),
    'pipeline by CPU µs/query: raw-dgram / heimdall-sync': cpuRatio('pipeline', 'heimdall-sync', 'raw-dgram'),
    'forward by CPU µs/query: dnsmasq-nocache / heimdall-forward': cpuRatio('forward', 'heimdall-forward', 'dnsmasq-nocache'),
    'cache-hit by CPU µs/query: dnsmasq / heimdall': cpuRatio('cache-hit', 'heimdall', 'dnsmasq'),
    'cache-hit by CPU µs/query: unbound / heimdall': cpuRatio('cache-hit', 'heimdall', 'unbound'),
    'dot-cache-hit: heimdall / unbound (target ≥ 0.8)': ratio('dot-cache-hit', 'heimdall', 'unbound'),
    'dot-cache-hit by CPU µs/query: unbound / heimdall': cpuRatio('dot-cache-hit', 'heimdall', 'unbound'),
    'doh-cache-hit: heimdall doh / unbound dot': ratio('doh-cache-hit', 'heimdall', 'unbound', 'dot-cache-hit'),
  };
  const date = new Date().toISOString();
  const result = {
    date,
    machine,
    versions,
    secondsPerRun: seconds,
    serverCore: SERVER_CORE,
    clientCore: CLIENT_CORE,
    rows,
    ratios,
    notes,
    elapsedSeconds: Math.round((Date.now() - started) / 1000),
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'load.json'), `${JSON.stringify(result, null, 2)}\n`);

  let md = `Load test, ${date.slice(0, 10)}: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGB} GB, Linux ${machine.kernel}, Node ${machine.node}, dnsperf ${versions.dnsperf}, dnsmasq ${versions.dnsmasq ?? '–'}, unbound ${versions.unbound ?? '–'}. `;
  md += `Each server pinned to CPU ${SERVER_CORE}, dnsperf (and the local upstream) to CPU ${CLIENT_CORE}; ${seconds} s per run; UDP over loopback (the dot-/doh- rows: DNS over TLS / HTTPS, connections kept for the run).\n\n`;
  md += '| scenario | server | QPS | avg µs | p50 µs | p99 µs | lost | server CPU µs/query | RSS MB |\n';
  md += '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n';
  for (const r of rows) {
    md += `| ${r.scenario} | ${r.server} | ${r.qps} | ${fmt(r.avgUs)} | ${fmt(r.p50Us)} | ${fmt(r.p99Us)} | ${r.lost} | ${fmt(r.cpuUsPerQuery)} | ${fmt(r.rssMB)} |\n`;
  }
  md += '\n';
  md +=
    'QPS ratios (same run); "by CPU µs/query" is the ratio the QPS would have if both servers were CPU-bound, robust when the client or a noisy machine is the bottleneck:\n\n';
  for (const [k, v] of Object.entries(ratios)) if (v !== null) md += `- ${k}: **${v}**\n`;
  for (const n of notes) md += `- ${n}\n`;
  writeFileSync(join(outDir, 'load.md'), md);
  console.log(`\n${md}\nwritten ${join(outDir, 'load.json')} and load.md`);
  // A full run with the default output also refreshes the table in the root README (between its markers).
  const readme = join(repo, 'README.md');
  if (only.size === SCENARIOS.split(',').length && outDir === resolve(join(repo, 'bench/results')) && existsSync(readme)) {
    const text = readFileSync(readme, 'utf8');
    const start = '<!-- load-table:start -->';
    const end = '<!-- load-table:end -->';
    const a = text.indexOf(start);
    const b = text.indexOf(end);
    if (a >= 0 && b > a) {
      writeFileSync(readme, `${text.slice(0, a + start.length)}\n${md}${text.slice(b)}`);
      console.log('README.md load table updated');
    }
  }
}

runMain(main);
