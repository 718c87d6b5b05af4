/**
 * `npm run load:native -w @heimdall/bench` (issue 14): the batched native UDP
 * path measured with the batched client (client/batchperf.c: sendmmsg/recvmmsg,
 * 4000 queries in flight, 4 sockets, built with cc at bench time).
 *
 * In one run, every server pinned to CPU 0 and the client (and the local
 * upstream) to CPU 1:
 * - `raw-dgram`: the bare node:dgram server replying with precomputed bytes;
 * - `heimdall`: the reference app, full default chain (the app's default
 *   `localOnly` acl, metrics, stats, special-use, blocking with a 100k-entry
 *   list, cache, dedup, upstream), `udp.native` auto (the addon when built);
 * - `heimdall-dgram`: the same with `udp: { native: false }` (the pure-JS fallback);
 * - `dnsmasq` (2.90) as a caching forwarder.
 * Each: warm-up (2 passes over 1000 names), cache hits at full speed, p99 at a
 * fixed 10,000 QPS. Then `heimdall --workers 1` and `--workers 2`, both
 * unpinned with the client unpinned too: on this 2-core machine client and
 * server share the cores, so besides QPS the run reports the CPU µs per query
 * of the whole process tree (primary + workers).
 *
 * Output: bench/results/load-native.json and load-native.md (and the README
 * table between `<!-- load-native:start -->` / `<!-- load-native:end -->`
 * when written to the default place). Flags: `--seconds N` (default 8),
 * `--out DIR`, `--skip-workers`. Take the machine's load lock around it:
 * `flock /tmp/heimdall-load.lock npm run load:native -w @heimdall/bench`.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBatchperf, treeCpuMicros } from './lib/batchperf.js';
import { runDnsperf } from './lib/dnsperf.js';
import { ensureTools, hasBinary } from './lib/packages.js';
import { type Command, dnsmasqForwarder, dnsmasqUpstream } from './lib/peers.js';
import { cpuMicros, freePort, type Pinned, sleep } from './lib/proc.js';
import { appConfig, CLIENT_CORE, defaultChain, type LoadRow, flag, resultRow, SERVER_CORE, startServer } from './lib/harness.js';
import { blocklistFile, nameFile } from './lib/queries.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const seconds = Number(flag('seconds', '8'));
const outDir = resolve(flag('out', join(repo, 'bench/results')));
const skipWorkers = process.argv.includes('--skip-workers');
const FIXED_QPS = 10_000;

export type NativeRow = LoadRow;
const rows: NativeRow[] = [];
const notes: string[] = [];
const tmp = mkdtempSync(join(os.tmpdir(), 'heimdall-native-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

async function measure(
  scenario: string,
  server: Pinned,
  port: number,
  file: string,
  opts: { qps?: number; maxRuns?: number; seconds?: number; keep?: boolean; clientCore?: number | null; dnsperf?: boolean } = {},
): Promise<NativeRow> {
  const cpu0 = treeCpuMicros(server.pid, cpuMicros);
  const r = await (opts.dnsperf ? runDnsperf : runBatchperf)({
    port,
    queryFile: file,
    seconds: opts.seconds ?? seconds,
    maxRuns: opts.maxRuns,
    qps: opts.qps,
    core: opts.clientCore === undefined ? CLIENT_CORE : opts.clientCore,
    tmpDir: tmp,
  });
  const cpu1 = treeCpuMicros(server.pid, cpuMicros);
  const row: NativeRow = resultRow(scenario, server, r, cpu1 - cpu0, {});
  if (opts.keep === false) return row;
  rows.push(row);
  console.log(
    `  ${scenario.padEnd(22)} ${server.name.padEnd(15)} ${String(row.qps).padStart(7)} qps  p50 ${row.p50Us} µs  p99 ${row.p99Us} µs  lost ${row.lost}  cpu ${row.cpuUsPerQuery} µs/q  rss ${row.rssMB} MB`,
  );
  return row;
}

function appCommand(
  cli: string,
  port: number,
  blocklist: string,
  upstreamPort: number,
  extra: { udp?: object; workers?: number; releaseChain?: boolean } = {},
): Command {
  const config = join(tmp, `heimdall-${port}.json`);
  writeFileSync(
    config,
    JSON.stringify(
      appConfig(port, {
        ...(extra.udp ? { udp: extra.udp } : {}),
        ...(extra.workers ? { workers: extra.workers } : {}),
        // The previous release's chain (bench/results/load.json): no acl (openResolver), no stats.
        ...(extra.releaseChain ? { openResolver: true } : {}),
        plugins: defaultChain(blocklist, upstreamPort, !extra.releaseChain),
      }),
    ),
  );
  return { command: process.execPath, args: ['--max-semi-space-size=4', cli, '--config', config], env: { MALLOC_MMAP_THRESHOLD_: '131072' } };
}

const find = (scenario: string, server: string): NativeRow | undefined => rows.find((r) => r.scenario === scenario && r.server === server);
const q = (n: number): number => Number(n.toFixed(3));
function qpsRatio(scenario: string, a: string, b: string): number | null {
  const ra = find(scenario, a);
  const rb = find(scenario, b);
  return ra && rb && rb.qps > 0 ? q(ra.qps / rb.qps) : null;
}
function cpuRatio(scenario: string, a: string, b: string): number | null {
  const ra = find(scenario, a);
  const rb = find(scenario, b);
  return ra && rb && ra.cpuUsPerQuery > 0 ? q(rb.cpuUsPerQuery / ra.cpuUsPerQuery) : null;
}

async function main(): Promise<void> {
  const missingTools = ensureTools(['dnsmasq', 'dnsperf']);
  if (!hasBinary('cc')) throw new Error('cc is required to build the batched client');
  const cli = join(repo, 'apps/heimdall/dist/cli.js');
  if (!existsSync(cli)) throw new Error('apps/heimdall/dist/cli.js is not built (npm run build)');
  const load0 = os.loadavg();
  const started = Date.now();
  const upPort = await freePort();
  const upstream = await startServer(
    'upstream',
    hasBinary('dnsmasq')
      ? dnsmasqUpstream(upPort)
      : { command: process.execPath, args: ['--import', 'tsx', join(here, 'servers/upstream.ts'), String(upPort)] },
    upPort,
    CLIENT_CORE,
  );
  const hit = await nameFile(join(tmp, 'hit.txt'), 'hit', 1000);
  const blocklist = await blocklistFile(join(tmp, 'blocklist.txt'), 100_000);
  const single = join(tmp, 'single.txt');
  writeFileSync(single, 'www.example.com A\n');
  const servers: Array<[string, (port: number) => Command, string]> = [
    ['raw-dgram', (port) => ({ command: process.execPath, args: ['--import', 'tsx', join(here, 'servers/raw.ts'), String(port), 'www.example.com'] }), single],
    ['heimdall', (port) => appCommand(cli, port, blocklist, upPort), hit],
    ['heimdall-dgram', (port) => appCommand(cli, port, blocklist, upPort, { udp: { native: false } }), hit],
    ['heimdall-dgram-release-chain', (port) => appCommand(cli, port, blocklist, upPort, { udp: { native: false }, releaseChain: true }), hit],
  ];
  if (hasBinary('dnsmasq')) servers.push(['dnsmasq', (port) => dnsmasqForwarder(port, upPort, 150_000), hit]);
  try {
    for (const [name, make, file] of servers) {
      const port = await freePort();
      const server = await startServer(name, make(port), port);
      if (name === 'heimdall-dgram-release-chain') {
        // Only the fallback-vs-release comparison: dnsperf, cache hits, the previous release's chain.
        if (!missingTools.includes('dnsperf')) {
          await measure('cache-hit-dnsperf', server, port, file, { maxRuns: 2, seconds: 30, keep: false, dnsperf: true });
          await measure('cache-hit-dnsperf', server, port, file, { dnsperf: true });
        }
        await server.stop();
        continue;
      }
      await measure('cache-hit', server, port, file, { maxRuns: 2, seconds: 30, keep: false });
      await measure('cache-hit', server, port, file, { seconds: 1, keep: false });
      await measure('cache-hit', server, port, file);
      await measure(`fixed-${FIXED_QPS / 1000}k-qps`, server, port, file, { qps: FIXED_QPS, seconds: Math.min(seconds, 5) });
      // The pure-JS fallback against the previous release (bench/results/load.json: dnsperf, cache hits): the same client here.
      if ((name === 'raw-dgram' || name === 'heimdall-dgram') && !missingTools.includes('dnsperf'))
        await measure('cache-hit-dnsperf', server, port, file, { dnsperf: true });
      await server.stop();
    }
    if (!skipWorkers) {
      for (const workers of [1, 2]) {
        const port = await freePort();
        const server = await startServer(`heimdall-w${workers}`, appCommand(cli, port, blocklist, upPort, { workers }), port, null);
        await sleep(workers > 1 ? 3000 : 500);
        await measure('workers-hit', server, port, hit, { maxRuns: 2, seconds: 30, keep: false, clientCore: null });
        await measure('workers-hit', server, port, hit, { clientCore: null });
        await server.stop();
      }
    }
  } finally {
    await upstream.stop();
  }
  // The previous release's figures (bench/results/load.json at HEAD, dnsperf): heimdall cache-hit and raw-dgram.
  const release = (() => {
    try {
      const j = JSON.parse(readFileSync(join(repo, 'bench/results/load.json'), 'utf8')) as {
        date: string;
        rows: Array<{ scenario: string; server: string; cpuUsPerQuery: number }>;
      };
      const cpu = (sc: string, sv: string) => j.rows.find((r) => r.scenario === sc && r.server === sv)?.cpuUsPerQuery ?? null;
      return { date: j.date, app: cpu('cache-hit', 'heimdall'), raw: cpu('pipeline', 'raw-dgram') };
    } catch {
      return null;
    }
  })();
  const fallback = find('cache-hit-dnsperf', 'heimdall-dgram-release-chain') ?? find('cache-hit-dnsperf', 'heimdall-dgram');
  const rawDnsperf = find('cache-hit-dnsperf', 'raw-dgram');
  if (release?.app && fallback) {
    notes.push(
      `pure-JS fallback (udp.native false, ${fallback.server}) vs the previous release (load.json ${release.date.slice(0, 10)}, dnsperf, same chain: no acl, no stats): ${fallback.cpuUsPerQuery} vs ${release.app} µs CPU/query` +
        (release.raw && rawDnsperf
          ? `; relative to raw-dgram in the same run: ${q(fallback.cpuUsPerQuery / rawDnsperf.cpuUsPerQuery)} vs ${q(release.app / release.raw)} then`
          : ''),
    );
  }
  const ratios: Record<string, number | null> = {
    'cache-hit: heimdall / raw-dgram, QPS (target ≥ 1.6)': qpsRatio('cache-hit', 'heimdall', 'raw-dgram'),
    'cache-hit: heimdall / raw-dgram, by CPU µs/query (target ≥ 1.6)': cpuRatio('cache-hit', 'heimdall', 'raw-dgram'),
    'cache-hit: heimdall / dnsmasq, QPS (target ≥ 0.75)': qpsRatio('cache-hit', 'heimdall', 'dnsmasq'),
    'cache-hit: heimdall / dnsmasq, by CPU µs/query (target ≥ 0.75)': cpuRatio('cache-hit', 'heimdall', 'dnsmasq'),
    'cache-hit: heimdall-dgram (fallback) / raw-dgram, QPS (issue 7 before: 0.93)': qpsRatio('cache-hit', 'heimdall-dgram', 'raw-dgram'),
    'cache-hit: heimdall-dgram (fallback) / raw-dgram, by CPU µs/query': cpuRatio('cache-hit', 'heimdall-dgram', 'raw-dgram'),
    'cache-hit: heimdall (native) / heimdall-dgram, by CPU µs/query': cpuRatio('cache-hit', 'heimdall', 'heimdall-dgram'),
    'cache-hit-dnsperf: heimdall-dgram (fallback) / raw-dgram, by CPU µs/query (dnsperf, as the previous release was measured)': cpuRatio(
      'cache-hit-dnsperf',
      'heimdall-dgram',
      'raw-dgram',
    ),
    'cache-hit-dnsperf: heimdall-dgram-release-chain (fallback, the release chain) / raw-dgram, by CPU µs/query (release: 0.931)': cpuRatio(
      'cache-hit-dnsperf',
      'heimdall-dgram-release-chain',
      'raw-dgram',
    ),
    'p99 at 10k QPS: heimdall / dnsmasq (target ≤ 1.5)': (() => {
      const a = find(`fixed-${FIXED_QPS / 1000}k-qps`, 'heimdall');
      const b = find(`fixed-${FIXED_QPS / 1000}k-qps`, 'dnsmasq');
      return a?.p99Us && b?.p99Us ? q(a.p99Us / b.p99Us) : null;
    })(),
    'workers-hit: w2 / w1, QPS with the client on the same 2 cores (target ≥ 1.7)': qpsRatio('workers-hit', 'heimdall-w2', 'heimdall-w1'),
    'workers-hit: w2 / w1, CPU µs/query of the process tree (1.0 = no per-query cost from the second worker)': cpuRatio(
      'workers-hit',
      'heimdall-w2',
      'heimdall-w1',
    ),
  };
  const loadavg = { start: load0.map((l) => Number(l.toFixed(2))), end: os.loadavg().map((l) => Number(l.toFixed(2))) };
  const date = new Date().toISOString();
  const machine = { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, kernel: os.release(), node: process.version };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(
    join(outDir, 'load-native.json'),
    `${JSON.stringify({ date, machine, loadavg, secondsPerRun: seconds, rows, ratios, notes, elapsedSeconds: Math.round((Date.now() - started) / 1000) }, null, 2)}\n`,
  );
  let md = `Batched native UDP (issue 14), ${date.slice(0, 10)}: ${machine.cpu}, ${machine.cores} cores, Linux ${machine.kernel}, Node ${machine.node}; load average at start ${loadavg.start.join(' ')} (the machine is shared). `;
  md += `Client: batchperf (sendmmsg/recvmmsg, 4000 in flight, 4 sockets). Servers pinned to CPU ${SERVER_CORE}, client and upstream to CPU ${CLIENT_CORE}; workers-hit: server (primary + workers), client and upstream all unpinned on both cores, so compare the CPU µs/query of the server's process tree as well as QPS. heimdall: the default chain (localOnly acl, metrics, stats, special-use, blocking with a 100k-entry list, cache, dedup, upstream). ${seconds} s per run.\n\n`;
  md += '| scenario | server | QPS | p50 µs | p99 µs | lost | server CPU µs/query | RSS MB |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n';
  for (const r of rows)
    md += `| ${r.scenario} | ${r.server} | ${r.qps} | ${r.p50Us ?? '–'} | ${r.p99Us ?? '–'} | ${r.lost} | ${r.cpuUsPerQuery} | ${r.rssMB} |\n`;
  md += '\n';
  for (const [k, v] of Object.entries(ratios)) if (v !== null) md += `- ${k}: **${v}**\n`;
  for (const n of notes) md += `- ${n}\n`;
  writeFileSync(join(outDir, 'load-native.md'), md);
  console.log(`\n${md}`);
  const readme = join(repo, 'README.md');
  if (outDir === resolve(join(repo, 'bench/results')) && existsSync(readme)) {
    const text = readFileSync(readme, 'utf8');
    const a = text.indexOf('<!-- load-native:start -->');
    const b = text.indexOf('<!-- load-native:end -->');
    if (a >= 0 && b > a) writeFileSync(readme, `${text.slice(0, a + '<!-- load-native:start -->'.length)}\n${md}${text.slice(b)}`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
