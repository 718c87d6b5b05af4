/**
 * `npm run load:native -w @heimdall/bench` (issue 14): the batched native UDP
 * path measured with the batched client (client/batchperf.c: sendmmsg/recvmmsg,
 * 4000 queries in flight, 4 sockets, built with cc at bench time).
 *
 * All servers are started at once, pinned to CPU 0 (an idle one costs
 * nothing), and measured in turn in `--rounds` interleaved rounds (A B C …
 * A B C …), the client (and the local upstream) on CPU 1:
 * - `raw-dgram`: the bare node:dgram server replying with precomputed bytes;
 * - `raw-mmsg`: the same in C with recvmmsg/sendmmsg (servers/raw-mmsg.c):
 *   the floor, what the kernel alone costs per query on this machine;
 * - `raw-native`: the same from JavaScript on `@heimdall/udp`
 *   (servers/raw-native.ts): what the addon, Node-API and the event loop
 *   add before any DNS work;
 * - `heimdall`: the reference app, full default chain (the app's default
 *   `localOnly` acl, metrics, stats, special-use, blocking with a 100k-entry
 *   list, cache, dedup, upstream), `udp.native` auto (the addon when built);
 * - `heimdall-dgram`: the same with `udp: { native: false }` (the pure-JS fallback);
 * - `heimdall-dgram-release-chain`: the fallback with the previous release's
 *   chain, and with `--release REF` (e.g. `bd76898`) that release itself,
 *   built in a git worktree under the run's temp dir: "the fallback does not
 *   get slower", measured in the same rounds;
 * - `dnsmasq` (2.90) as a caching forwarder.
 * Per round: cache hits at full speed, then p99 at a fixed 10,000 QPS, each
 * after 2 s of the same load that is not measured (the server was stopped
 * meanwhile: it catches up on timers, GC and dropped pages first). Then
 * `heimdall --workers 1` and `--workers 2`, both up, unpinned with the
 * client unpinned too, alternated per round: on this 2-core machine client
 * and server share the cores, so besides QPS the run reports the CPU µs per
 * query of the whole process tree (primary + workers).
 *
 * Output: bench/results/load-native.json and load-native.md (and the README
 * table between `<!-- load-native:start -->` / `<!-- load-native:end -->`
 * when written to the default place), every ratio once per round. Flags:
 * `--seconds N` (default 8), `--rounds N` (default 3), `--release REF`,
 * `--out DIR`, `--skip-workers`, `--skip-single` (only the workers part),
 * `--workers-udp-buffer BYTES`. Take the machine's load lock around it:
 * `flock /tmp/heimdall-load.lock npm run load:native -w @heimdall/bench -- --release bd76898`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildRawMmsg, runBatchperf, treeCpuMicros } from './lib/batchperf.js';
import { appConfig, CLIENT_CORE, defaultChain, flag, type LoadRow, resultRow, SERVER_CORE, startServer } from './lib/harness.js';
import { ensureTools, hasBinary } from './lib/packages.js';
import { type Command, dnsmasqForwarder, dnsmasqUpstream } from './lib/peers.js';
import { cpuMicros, freePort, type Pinned, sleep, runMain, sysCpuMicros } from './lib/proc.js';
import { blocklistFile, nameFile } from './lib/queries.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const seconds = Number(flag('seconds', '8'));
const rounds = Number(flag('rounds', '3'));
const releaseRef = flag('release', '');
const outDir = resolve(flag('out', join(repo, 'bench/results')));
const skipWorkers = process.argv.includes('--skip-workers');
/**
 * `--workers-udp-buffer BYTES` (default 4 MiB, 0: the OS default):
 * `udp.recvBufferSize` and `sendBufferSize` of both workers servers. With
 * the OS default (208 KB here) a saturated server drops queries, each holds
 * one of the client's 4000 slots for its 1 s timeout, and the client keeps
 * only a few hundred real queries in flight: `--workers 1` and `--workers 2`
 * then level out at the same QPS (about 240k on 2026-12-01, as `raw-native`
 * did), which measures the client, not the workers. With 4 MiB nothing is
 * lost and `--workers 1` is bound by its core.
 */
const workersUdpBuffer = Number(flag('workers-udp-buffer', String(4 << 20)));
const skipSingle = process.argv.includes('--skip-single');
const FIXED_QPS = 10_000;
/** Seconds of the same load, not measured, before each measurement of a server resumed from SIGSTOP. */
const WARMUP_SECONDS = 2;
const FIXED = `fixed-${FIXED_QPS / 1000}k-qps`;

/**
 * A measured row, the round it belongs to, the batched client's own CPU µs
 * per answered query, and the share of the server's CPU spent in the kernel
 * (system time: its syscalls and, on loopback, the delivery of its answers
 * into the client's socket).
 */
export type NativeRow = LoadRow & { round: number; clientCpuUsPerQuery: number | null; kernelShare: number | null };
const rows: NativeRow[] = [];
const tmp = mkdtempSync(join(os.tmpdir(), 'heimdall-native-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

async function measure(
  scenario: string,
  server: Pinned,
  port: number,
  file: string,
  opts: { qps?: number; maxRuns?: number; seconds?: number; keep?: boolean; clientCore?: number | null; round?: number } = {},
): Promise<NativeRow> {
  const cpu0 = treeCpuMicros(server.pid, cpuMicros);
  const sys0 = treeCpuMicros(server.pid, sysCpuMicros);
  const r = await runBatchperf({
    port,
    queryFile: file,
    seconds: opts.seconds ?? seconds,
    maxRuns: opts.maxRuns,
    qps: opts.qps,
    core: opts.clientCore === undefined ? CLIENT_CORE : opts.clientCore,
    tmpDir: tmp,
  });
  const cpu1 = treeCpuMicros(server.pid, cpuMicros);
  const sys1 = treeCpuMicros(server.pid, sysCpuMicros);
  const kernelShare = cpu1 > cpu0 ? Number(((sys1 - sys0) / (cpu1 - cpu0)).toFixed(2)) : null;
  const clientCpu = (r as { clientCpuUs?: number }).clientCpuUs;
  const clientCpuUsPerQuery = clientCpu !== undefined && r.completed > 0 ? Number((clientCpu / r.completed).toFixed(2)) : null;
  const row: NativeRow = { round: opts.round ?? 0, ...resultRow(scenario, server, r, cpu1 - cpu0, { clientCpuUsPerQuery, kernelShare }) };
  if (opts.keep === false) return row;
  rows.push(row);
  console.log(
    `  ${scenario.padEnd(16)} ${server.name.padEnd(29)} ${String(row.qps).padStart(7)} qps  p50 ${row.p50Us} µs  p99 ${row.p99Us} µs  lost ${row.lost}  cpu ${row.cpuUsPerQuery} µs/q (kernel ${row.kernelShare === null ? '–' : `${Math.round(row.kernelShare * 100)} %`})  rss ${row.rssMB} MB`,
  );
  return row;
}

/**
 * The reference app's command with its config. `releaseChain`: the previous
 * release's chain (bench/results/load.json: no acl (openResolver), no stats);
 * `legacy`: a config an older build accepts (no udp/workers/openResolver keys).
 */
function appCommand(
  cli: string,
  port: number,
  blocklist: string,
  upstreamPort: number,
  extra: { udp?: object; workers?: number; releaseChain?: boolean; legacy?: boolean } = {},
): Command {
  const config = join(tmp, `heimdall-${port}.json`);
  writeFileSync(
    config,
    JSON.stringify(
      appConfig(port, {
        ...(extra.udp ? { udp: extra.udp } : {}),
        ...(extra.workers ? { workers: extra.workers } : {}),
        ...(extra.releaseChain && !extra.legacy ? { openResolver: true } : {}),
        plugins: defaultChain(blocklist, upstreamPort, !extra.releaseChain),
      }),
    ),
  );
  return { command: process.execPath, args: ['--max-semi-space-size=4', cli, '--config', config], env: { MALLOC_MMAP_THRESHOLD_: '131072' } };
}

const find = (scenario: string, server: string, round: number): NativeRow | undefined =>
  rows.find((r) => r.scenario === scenario && r.server === server && r.round === round);
const q = (n: number): number => Number(n.toFixed(3));
function qpsRatio(scenario: string, a: string, b: string, round: number): number | null {
  const ra = find(scenario, a, round);
  const rb = find(scenario, b, round);
  return ra && rb && rb.qps > 0 ? q(ra.qps / rb.qps) : null;
}
/** How many times less CPU per query `a` uses than `b` (higher is better for `a`). */
function cpuRatio(scenario: string, a: string, b: string, round: number): number | null {
  const ra = find(scenario, a, round);
  const rb = find(scenario, b, round);
  return ra && rb && ra.cpuUsPerQuery > 0 ? q(rb.cpuUsPerQuery / ra.cpuUsPerQuery) : null;
}
function p99Ratio(a: string, b: string, round: number): number | null {
  const ra = find(FIXED, a, round);
  const rb = find(FIXED, b, round);
  return ra?.p99Us && rb?.p99Us ? q(ra.p99Us / rb.p99Us) : null;
}

/** Builds the reference app at git ref `ref` in a worktree under the run's temp dir; returns its cli.js. */
function buildRelease(ref: string): { cli: string; remove: () => void } {
  const dir = join(tmp, 'release');
  const run = (cmd: string, args: string[], cwd: string) => {
    const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '' } });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}: ${(r.stderr || r.stdout).slice(-2000)}`);
  };
  console.log(`building the release at ${ref} in ${dir} (npm ci, build)`);
  run('git', ['worktree', 'add', '--detach', dir, ref], repo);
  const remove = () => spawnSync('git', ['worktree', 'remove', '--force', dir], { cwd: repo });
  try {
    run('npm', ['ci', '--no-audit', '--no-fund'], dir);
    run('npx', ['turbo', 'run', 'build', '--filter=@heimdall/app...', '--output-logs=errors-only'], dir);
  } catch (err) {
    remove();
    throw err;
  }
  return { cli: join(dir, 'apps/heimdall/dist/cli.js'), remove };
}

/** `values` as "a, b, c (median m)". */
function series(values: Array<number | null>): string {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  if (v.length === 0) return '–';
  const sorted = [...v].sort((x, y) => x - y);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return v.length === 1 ? String(v[0]) : `${v.join(', ')} (median ${median})`;
}

async function main(): Promise<void> {
  ensureTools(['dnsmasq']);
  if (!hasBinary('cc')) throw new Error('cc is required to build the batched client');
  const cli = join(repo, 'apps/heimdall/dist/cli.js');
  if (!existsSync(cli)) throw new Error('apps/heimdall/dist/cli.js is not built (npm run build)');
  const release = releaseRef ? buildRelease(releaseRef) : null;
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
  const defs: Array<[string, (port: number) => Command, string]> = [
    ['raw-dgram', (port) => ({ command: process.execPath, args: ['--import', 'tsx', join(here, 'servers/raw.ts'), String(port), 'www.example.com'] }), single],
    // The floor: C, recvmmsg/sendmmsg, precomputed answers (what the kernel alone costs per query here).
    ['raw-mmsg', (port) => ({ command: buildRawMmsg(tmp), args: [String(port), 'www.example.com'] }), single],
    // The floor of the native path from JavaScript: the addon answering precomputed bytes (no DNS work).
    [
      'raw-native',
      (port) => ({ command: process.execPath, args: ['--import', 'tsx', join(here, 'servers/raw-native.ts'), String(port), 'www.example.com'] }),
      single,
    ],
    ['heimdall', (port) => appCommand(cli, port, blocklist, upPort), hit],
    ['heimdall-dgram', (port) => appCommand(cli, port, blocklist, upPort, { udp: { native: false } }), hit],
    ['heimdall-dgram-release-chain', (port) => appCommand(cli, port, blocklist, upPort, { udp: { native: false }, releaseChain: true }), hit],
  ];
  if (release) defs.push(['release', (port) => appCommand(release.cli, port, blocklist, upPort, { releaseChain: true, legacy: true }), hit]);
  if (hasBinary('dnsmasq')) defs.push(['dnsmasq', (port) => dnsmasqForwarder(port, upPort, 150_000), hit]);
  const servers: Array<{ name: string; server: Pinned; port: number; file: string }> = [];
  try {
    // Every server up at once (pinned to the same core; an idle one costs nothing), so the rounds interleave them: A B C … A B C ….
    for (const [name, make, file] of skipSingle ? [] : defs) {
      const port = await freePort();
      servers.push({ name, server: await startServer(name, make(port), port), port, file });
    }
    for (const s of servers) {
      await measure('cache-hit', s.server, s.port, s.file, { maxRuns: 2, seconds: 30, keep: false });
      await measure('cache-hit', s.server, s.port, s.file, { seconds: 1, keep: false });
    }
    // Each measurement runs with every other server stopped (SIGSTOP): an idle Node server still
    // wakes for timers and idle-time garbage collection, on the measured server's core.
    const alone = async (s: (typeof servers)[number], fn: () => Promise<unknown>): Promise<void> => {
      const others = servers.filter((o) => o !== s).map((o) => o.server.child);
      for (const o of others) o.kill('SIGSTOP');
      try {
        await fn();
      } finally {
        for (const o of others) o.kill('SIGCONT');
      }
    };
    // Each measurement follows WARMUP_SECONDS of the same load, not measured. A server resumed after a
    // minute or more stopped first catches up: its overdue timers, V8's memory reducer (a mark-compact
    // once the allocation rate has been low for a while), and on this VM the file pages (the node binary's
    // code) that DAMON's page-out scheme dropped after 60 s unused. Measured without it, the app's p99 at
    // 10k QPS was 250–810 µs in load:native and 115–250 µs after a saturating run in p99-probe.
    const warmThenMeasure = async (s: (typeof servers)[number], scenario: string, opts: { qps?: number; seconds?: number }, round: number) => {
      await measure(scenario, s.server, s.port, s.file, { ...opts, seconds: WARMUP_SECONDS, keep: false });
      await measure(scenario, s.server, s.port, s.file, { ...opts, round });
    };
    for (let round = 1; round <= rounds; round++) {
      console.log(`round ${round} of ${rounds}`);
      for (const s of servers) await alone(s, () => warmThenMeasure(s, 'cache-hit', {}, round));
      for (const s of servers) {
        if (s.name === 'heimdall-dgram-release-chain' || s.name === 'release' || s.name === 'raw-mmsg') continue;
        await alone(s, () => warmThenMeasure(s, FIXED, { qps: FIXED_QPS, seconds: Math.min(seconds, 5) }, round));
      }
    }
  } finally {
    for (const s of servers) await s.server.stop();
  }
  try {
    if (!skipWorkers) {
      const workers: Array<{ server: Pinned; port: number }> = [];
      try {
        for (const n of [1, 2]) {
          const port = await freePort();
          const udp = workersUdpBuffer > 0 ? { recvBufferSize: workersUdpBuffer, sendBufferSize: workersUdpBuffer } : undefined;
          workers.push({ server: await startServer(`heimdall-w${n}`, appCommand(cli, port, blocklist, upPort, { workers: n, udp }), port, null), port });
        }
        await sleep(3000);
        for (const w of workers) await measure('workers-hit', w.server, w.port, hit, { maxRuns: 2, seconds: 30, keep: false, clientCore: null });
        for (let round = 1; round <= rounds; round++) for (const w of workers) await measure('workers-hit', w.server, w.port, hit, { clientCore: null, round });
      } finally {
        for (const w of workers) await w.server.stop();
      }
    }
  } finally {
    await upstream.stop();
    release?.remove();
  }
  const perRound = (f: (round: number) => number | null): Array<number | null> => Array.from({ length: rounds }, (_, i) => f(i + 1));
  const ratios: Record<string, Array<number | null>> = {
    'cache-hit: heimdall / raw-dgram, QPS (target ≥ 1.6)': perRound((r) => qpsRatio('cache-hit', 'heimdall', 'raw-dgram', r)),
    'cache-hit: heimdall / raw-dgram, by CPU µs/query (target ≥ 1.6)': perRound((r) => cpuRatio('cache-hit', 'heimdall', 'raw-dgram', r)),
    'cache-hit: raw-mmsg (C floor) / raw-dgram, by CPU µs/query (the most any server on these syscalls can reach)': perRound((r) =>
      cpuRatio('cache-hit', 'raw-mmsg', 'raw-dgram', r),
    ),
    'cache-hit: heimdall / raw-mmsg (C floor), by CPU µs/query': perRound((r) => cpuRatio('cache-hit', 'heimdall', 'raw-mmsg', r)),
    'cache-hit: raw-native (the addon answering precomputed bytes from JS) / raw-dgram, by CPU µs/query (the most a JS server on the addon reaches)': perRound(
      (r) => cpuRatio('cache-hit', 'raw-native', 'raw-dgram', r),
    ),
    'cache-hit: heimdall / raw-native, by CPU µs/query (what the default chain costs over the bare native path)': perRound((r) =>
      cpuRatio('cache-hit', 'heimdall', 'raw-native', r),
    ),
    'cache-hit: heimdall / dnsmasq, QPS (target ≥ 0.75)': perRound((r) => qpsRatio('cache-hit', 'heimdall', 'dnsmasq', r)),
    'cache-hit: heimdall / dnsmasq, by CPU µs/query (target ≥ 0.75)': perRound((r) => cpuRatio('cache-hit', 'heimdall', 'dnsmasq', r)),
    'cache-hit: heimdall (native) / heimdall-dgram (fallback), by CPU µs/query': perRound((r) => cpuRatio('cache-hit', 'heimdall', 'heimdall-dgram', r)),
    'cache-hit: heimdall-dgram (fallback) / raw-dgram, by CPU µs/query': perRound((r) => cpuRatio('cache-hit', 'heimdall-dgram', 'raw-dgram', r)),
    [`cache-hit: heimdall-dgram-release-chain (fallback) / release ${releaseRef || '(not run: --release REF)'}, by CPU µs/query (target ≥ 1: not slower)`]:
      perRound((r) => cpuRatio('cache-hit', 'heimdall-dgram-release-chain', 'release', r)),
    [`p99 at ${FIXED_QPS / 1000}k QPS: heimdall / dnsmasq (target ≤ 1.5)`]: perRound((r) => p99Ratio('heimdall', 'dnsmasq', r)),
    [`p99 at ${FIXED_QPS / 1000}k QPS: raw-dgram / dnsmasq (Node's own floor)`]: perRound((r) => p99Ratio('raw-dgram', 'dnsmasq', r)),
    [`p99 at ${FIXED_QPS / 1000}k QPS: raw-native / dnsmasq (the native path's floor from JavaScript)`]: perRound((r) => p99Ratio('raw-native', 'dnsmasq', r)),
    'workers-hit: w2 / w1, QPS with the client on the same 2 cores (target ≥ 1.7)': perRound((r) => qpsRatio('workers-hit', 'heimdall-w2', 'heimdall-w1', r)),
    'workers-hit: the most w2 / w1 can reach on these two cores: 2 cores ÷ (w2 tree + client CPU µs/query), ÷ w1 QPS': perRound((r) => {
      const w1 = find('workers-hit', 'heimdall-w1', r);
      const w2 = find('workers-hit', 'heimdall-w2', r);
      if (!w1 || !w2 || w2.clientCpuUsPerQuery === null || w1.qps === 0) return null;
      return q(2e6 / (w2.cpuUsPerQuery + w2.clientCpuUsPerQuery) / w1.qps);
    }),
    'workers-hit: w2 / w1, CPU µs/query of the process tree (1.0 = no per-query cost from the second worker)': perRound((r) =>
      cpuRatio('workers-hit', 'heimdall-w2', 'heimdall-w1', r),
    ),
  };
  const loadavg = { start: load0.map((l) => Number(l.toFixed(2))), end: os.loadavg().map((l) => Number(l.toFixed(2))) };
  const date = new Date().toISOString();
  const machine = { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, kernel: os.release(), node: process.version };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(
    join(outDir, 'load-native.json'),
    `${JSON.stringify({ date, machine, loadavg, secondsPerRun: seconds, rounds, release: releaseRef || null, rows, ratios, elapsedSeconds: Math.round((Date.now() - started) / 1000) }, null, 2)}\n`,
  );
  let md = `Batched native UDP (issue 14), ${date.slice(0, 10)}: ${machine.cpu}, ${machine.cores} cores, Linux ${machine.kernel}, Node ${machine.node}; load average at start ${loadavg.start.join(' ')}, at end ${loadavg.end.join(' ')}. `;
  md += `Client: batchperf (sendmmsg/recvmmsg, 4000 in flight, 4 sockets). All servers up at once, pinned to CPU ${SERVER_CORE}, measured in turn in ${rounds} interleaved rounds (A B C … A B C …), the others stopped (SIGSTOP) during each measurement, which follows ${WARMUP_SECONDS} s of the same load, not measured; client and upstream on CPU ${CLIENT_CORE}. workers-hit: server (primary + workers), client and upstream all unpinned on both cores, so compare the CPU µs/query of the server's process tree as well as QPS; UDP buffers ${workersUdpBuffer > 0 ? `${workersUdpBuffer} bytes` : 'the OS default'} for both. heimdall: the default chain (localOnly acl, metrics, stats, special-use, blocking with a 100k-entry list, cache, dedup, upstream); release chain: metrics, special-use, blocking, cache, dedup, upstream. ${seconds} s per run.\n\n`;
  md +=
    '| round | scenario | server | QPS | p50 µs | p99 µs | lost | server CPU µs/query | of it in the kernel | client CPU µs/query | RSS MB |\n| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n';
  for (const r of rows)
    md += `| ${r.round} | ${r.scenario} | ${r.server} | ${r.qps} | ${r.p50Us ?? '–'} | ${r.p99Us ?? '–'} | ${r.lost} | ${r.cpuUsPerQuery} | ${r.kernelShare === null || r.kernelShare === undefined ? '–' : `${Math.round(r.kernelShare * 100)} %`} | ${r.clientCpuUsPerQuery ?? '–'} | ${r.rssMB} |\n`;
  md += '\nRatios, one per round:\n\n';
  for (const [k, v] of Object.entries(ratios)) if (v.some((x) => x !== null)) md += `- ${k}: **${series(v)}**\n`;
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

runMain(main);
