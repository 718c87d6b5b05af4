/**
 * Where the tail at a fixed rate comes from (issue 14's "p99 at 10k QPS"):
 * variants of the reference app beside dnsmasq and the bare `node:dgram`
 * server, all pinned to CPU 0 and measured alone (the others stopped) in
 * interleaved rounds at a fixed rate with the batched client on CPU 1.
 * Prints, per server and round, QPS and CPU µs/query of a saturating run
 * (cache hits, 4000 in flight), then p50/p99/p99.9 and CPU µs/query at the
 * fixed rate, and how the answers over `--slow-us` (default 100) cluster:
 * how many came while the client itself stalled, in how many bursts (one
 * server stall each), and the most common gaps between bursts (a period
 * points at its cause: 10 ms timers, scavenges every few hundred ms).
 *
 *   flock /tmp/heimdall-load.lock npx tsx bench/load/p99-probe.ts [--qps 10000] [--seconds 5] [--rounds 3] [--only app,dnsmasq] [--before DIR] [--saturate false] [--slow-us 100] [--attribute] [--stacks] [--keep-output DIR]
 *
 * `--keep-output DIR`: every server's output, per round, to files.
 *
 * `--before DIR`: adds `before`, the app built in another checkout (a git
 * worktree of an earlier commit, `npm ci && npx turbo run build` there), same
 * command as `app`: an A/B of a change in the same rounds.
 * Variants: `app` (the load harness's command: default chain, semi-space 4 MB),
 * `app-stgc` (`--single-threaded-gc`: no V8 GC helper threads),
 * `app-st` (`--single-threaded`: no V8 background tasks at all),
 * `app-min4` / `app-min8` (the young generation held at 4 / 8 MB from the
 * start: V8 otherwise grows it only as far as survival asks),
 * `app-semi16` (16 MB semi-space), `app-nostats` (no stats plugin),
 * `app-dgram` (udp.native false), `raw-dgram`, `raw-native` (the addon
 * answering precomputed bytes from JavaScript), `raw-mmsg` (the C floor),
 * `dnsmasq`.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildRawMmsg, runBatchperf, slowAnswers } from './lib/batchperf.js';
import { appConfig, CLIENT_CORE, defaultChain, flag, SERVER_CORE, startServer } from './lib/harness.js';
import { ensureTools } from './lib/packages.js';
import { type Command, dnsmasqForwarder, dnsmasqUpstream } from './lib/peers.js';
import { cpuMicros, freePort, type Pinned, rssBytes, threadCpu, waitForDns, runMain } from './lib/proc.js';
import { blocklistFile, nameFile } from './lib/queries.js';
import { attributeTail, canRecordSched, formatAttribution, formatLongRuns, longRuns, recordSched, threadsOf } from './lib/sched-trace.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const qps = Number(flag('qps', '10000'));
const seconds = Number(flag('seconds', '5'));
const rounds = Number(flag('rounds', '3'));
const only = flag('only', '');
/** `--saturate false`: skip the saturating run before each fixed-rate run (more rounds in the same time). */
const saturate = flag('saturate', 'true') !== 'false';
/** Answers slower than this (µs) are logged by the client and grouped into bursts (where the tail comes from). */
const slowThreshold = Number(flag('slow-us', '100'));
const tmp = mkdtempSync(join(os.tmpdir(), 'heimdall-p99-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const cli = join(repo, 'apps/heimdall/dist/cli.js');

const before = flag('before', '');
/**
 * Extra node flags for `app` (e.g. `--trace-gc`: its GC lines during the
 * fixed-rate runs are summarized; other output, such as `--trace-opt
 * --trace-deopt`, is counted by kind).
 */
const appFlags = flag('app-flags', '') === '' ? [] : flag('app-flags', '').split(' ');
/**
 * `--keep-output DIR`: after each fixed-rate run, writes the server's whole
 * output so far (stdout and stderr, from its start) to DIR/<server>-r<round>.log,
 * e.g. every `--trace-gc` line with `--app-flags '--trace-gc'` (the summary
 * above reads only the run's own lines).
 */
const keepOutput = flag('keep-output', '');
/**
 * `--attribute`: records the scheduler on the server's core during each
 * fixed-rate run (perf, CLOCK_MONOTONIC) and the V8 pauses of Node servers
 * (lib/gc-preload.mjs), and splits the slow answers' time by what the core
 * did meanwhile (lib/sched-trace.ts).
 */
const attribute = process.argv.includes('--attribute') || process.argv.includes('--stacks');
/**
 * `--stacks` (implies `--attribute`): also samples the server's core at
 * 10 kHz with call stacks and prints what the main thread ran in its long
 * on-CPU stretches (lib/sched-trace.ts `longRuns`); Node servers get
 * `--perf-basic-prof` so their JavaScript frames are named.
 */
const stacks = process.argv.includes('--stacks');
const gcDir = join(tmp, 'gc');
if (attribute) {
  mkdirSync(gcDir);
  process.env.HEIMDALL_GC_LOG_DIR = gcDir;
  process.env.NODE_OPTIONS =
    `${process.env.NODE_OPTIONS ?? ''} --import ${pathToFileURL(join(here, 'lib/gc-preload.mjs')).href}${stacks ? ' --perf-basic-prof' : ''}`.trim();
}

function app(port: number, blocklist: string, upPort: number, flags: string[], extra: object = {}, stats = true, cliPath = cli): Command {
  const config = join(tmp, `app-${port}.json`);
  writeFileSync(config, JSON.stringify(appConfig(port, { ...extra, plugins: defaultChain(blocklist, upPort, stats) })));
  return { command: process.execPath, args: [...flags, cliPath, '--config', config], env: { MALLOC_MMAP_THRESHOLD_: '131072' } };
}

async function main(): Promise<void> {
  ensureTools(['dnsmasq']);
  if (attribute && !canRecordSched()) throw new Error('--attribute needs perf with the sched:sched_switch tracepoint (linux-perf, root)');
  const upPort = await freePort();
  const upCmd = dnsmasqUpstream(upPort);
  const up = await startServer('upstream', upCmd, upPort, CLIENT_CORE).catch(async () => {
    await waitForDns(upPort);
    throw new Error('upstream');
  });
  const hit = await nameFile(join(tmp, 'hit.txt'), 'hit', 1000);
  const single = join(tmp, 'single.txt');
  writeFileSync(single, 'www.example.com A\n');
  const blocklist = await blocklistFile(join(tmp, 'blocklist.txt'), 100_000);
  const defs: Array<[string, (port: number) => Command, string]> = [
    ['app', (p) => app(p, blocklist, upPort, ['--max-semi-space-size=4', ...appFlags]), hit],
    ...(before === ''
      ? []
      : [
          [
            'before',
            (p: number) => app(p, blocklist, upPort, ['--max-semi-space-size=4'], {}, true, join(resolve(before), 'apps/heimdall/dist/cli.js')),
            hit,
          ] as [string, (port: number) => Command, string],
        ]),
    ['app-stgc', (p) => app(p, blocklist, upPort, ['--max-semi-space-size=4', '--single-threaded-gc', ...appFlags]), hit],
    ['app-st', (p) => app(p, blocklist, upPort, ['--max-semi-space-size=4', '--single-threaded', ...appFlags]), hit],
    ['app-min4', (p) => app(p, blocklist, upPort, ['--min-semi-space-size=4', '--max-semi-space-size=4', ...appFlags]), hit],
    ['app-min8', (p) => app(p, blocklist, upPort, ['--min-semi-space-size=8', '--max-semi-space-size=8', ...appFlags]), hit],
    ['app-semi16', (p) => app(p, blocklist, upPort, ['--max-semi-space-size=16']), hit],
    ['app-nostats', (p) => app(p, blocklist, upPort, ['--max-semi-space-size=4'], {}, false), hit],
    ['app-dgram', (p) => app(p, blocklist, upPort, ['--max-semi-space-size=4'], { udp: { native: false } }), hit],
    ['raw-dgram', (p) => ({ command: process.execPath, args: ['--import', 'tsx', join(here, 'servers/raw.ts'), String(p), 'www.example.com'] }), single],
    [
      'raw-native',
      (p) => ({ command: process.execPath, args: ['--import', 'tsx', join(here, 'servers/raw-native.ts'), String(p), 'www.example.com'] }),
      single,
    ],
    ['raw-mmsg', (p) => ({ command: buildRawMmsg(tmp), args: [String(p), 'www.example.com'] }), single],
    ['dnsmasq', (p) => dnsmasqForwarder(p, upPort, 150_000), hit],
  ];
  const wanted = only === '' ? defs : defs.filter(([n]) => only.split(',').includes(n));
  const servers: Array<{ name: string; server: Pinned; port: number; file: string }> = [];
  try {
    for (const [name, make, file] of wanted) {
      const port = await freePort();
      servers.push({ name, server: await startServer(name, make(port), port), port, file });
    }
    // Warm-up: 3 s saturating each (with `--saturate false` this is all the JIT gets before the first fixed-rate run).
    for (const s of servers) await runBatchperf({ port: s.port, queryFile: s.file, seconds: 3, core: CLIENT_CORE, tmpDir: tmp });
    console.log('round server | saturating: qps cpu-us/query | fixed rate: p50 p99 p99.9 qps cpu-us/query | rss MB after');
    /** p99 at the fixed rate, per server, one per round. */
    const p99s = new Map<string, number[]>(servers.map((s) => [s.name, []]));
    /** With `--attribute`: the same without the answers the platform's kdamond overlapped. */
    const p99Clean = new Map<string, number[]>(servers.map((s) => [s.name, []]));
    for (let round = 1; round <= rounds; round++) {
      for (const s of servers) {
        const others = servers.filter((o) => o !== s);
        for (const o of others) o.server.child.kill('SIGSTOP');
        try {
          // A saturating run first (the heap then is as the harness leaves it before its fixed-rate run).
          const s0 = cpuMicros(s.server.pid);
          const sat = saturate ? await runBatchperf({ port: s.port, queryFile: s.file, seconds, core: CLIENT_CORE, tmpDir: tmp }) : { qps: 0, completed: 1 };
          const s1 = cpuMicros(s.server.pid);
          let traced = '';
          const trace = (chunk: Buffer): void => {
            traced += chunk.toString('utf8');
          };
          s.server.child.stdout!.on('data', trace);
          const t0 = threadCpu(s.server.pid);
          const c0 = cpuMicros(s.server.pid);
          const slowLog = join(tmp, 'slow.log');
          const perfData = join(tmp, 'sched.data');
          const sched = attribute ? recordSched([SERVER_CORE, CLIENT_CORE], perfData, seconds + 1.5, stacks) : null;
          let r: Awaited<ReturnType<typeof runBatchperf>>;
          try {
            r = await runBatchperf({ port: s.port, queryFile: s.file, seconds, qps, core: CLIENT_CORE, tmpDir: tmp, slowLog, slowUs: slowThreshold });
          } catch (err) {
            sched?.child.kill('SIGINT'); // perf writes what it has and exits, instead of tracing on after a failed run
            throw err;
          }
          if (sched !== null) {
            await sched.done;
            const a = attributeTail(perfData, slowLog, r.completed, SERVER_CORE, s.server.pid, threadsOf(s.server.pid), join(gcDir, `${s.server.pid}.gc`));
            p99Clean.get(s.name)!.push(a.p99WithoutPlatformUs ?? Number.NaN);
            if (stacks)
              console.log(
                formatLongRuns(longRuns(perfData, SERVER_CORE, s.server.pid))
                  .map((l) => `  ${s.name} ${l}`)
                  .join('\n'),
              );
            console.log(
              formatAttribution(a)
                .map((l) => `  ${s.name} ${l}`)
                .join('\n'),
            );
          }
          const c1 = cpuMicros(s.server.pid);
          const t1 = threadCpu(s.server.pid);
          s.server.child.stdout!.off('data', trace);
          if (keepOutput !== '') {
            mkdirSync(keepOutput, { recursive: true });
            writeFileSync(join(keepOutput, `${s.name}-r${round}.log`), s.server.output());
          }
          const helpers = [...t1.byName]
            .filter(([name, us]) => name !== 'main' && us - (t0.byName.get(name) ?? 0) > 0)
            .map(([name, us]) => `${name} ${((us - (t0.byName.get(name) ?? 0)) / 1000).toFixed(0)} ms`);
          console.log(
            `  ${s.name} fixed-rate run: main thread ${(((t1.byName.get('main') ?? 0) - (t0.byName.get('main') ?? 0)) / 1000).toFixed(0)} ms CPU, preempted ${t1.preempted - t0.preempted}×; other threads: ${helpers.join(', ') || 'none'}`,
          );
          const gc = traced
            .split('\n')
            .map((l) => /(Scavenge|Mark-Compact|Mark-sweep)[^;]*? MB, ([\d.]+) \/ [\d.]+ ms/.exec(l))
            .filter((m) => m !== null);
          const otherTrace = traced.split('\n').filter((l) => l !== '' && !/Scavenge|Mark-Compact|Mark-sweep/.test(l));
          if (otherTrace.length > 0) {
            const kinds = new Map<string, number>();
            for (const l of otherTrace) {
              const k = /^\[(\w+(?: \w+)?)/.exec(l)?.[1] ?? l.slice(0, 40);
              kinds.set(k, (kinds.get(k) ?? 0) + 1);
            }
            console.log(`  ${s.name} other output during the fixed-rate run: ${[...kinds].map(([k, n]) => `${k} ×${n}`).join(', ')}`);
          }
          if (gc.length > 0)
            console.log(`  ${s.name} GC during the fixed-rate run: ${gc.length} pauses, ${gc.map((m) => `${m![1]![0]}${m![2]}`).join(' ')} ms`);
          p99s.get(s.name)!.push(r.p99Us ?? Number.NaN);
          const sa = slowAnswers(slowLog, seconds);
          console.log(
            `  ${s.name} answers over ${slowThreshold} µs: ${sa.slow} (${((100 * sa.slow) / Math.max(1, r.completed)).toFixed(2)} %), ${sa.duringClientStall} of them while the client itself stalled (${sa.clientStalls} stalls, ${(sa.clientStallUs / 1000).toFixed(1)} ms); ${sa.bursts} bursts (${sa.burstsPerSecond.toFixed(1)}/s, median ${sa.medianBurstSize} answers over ${sa.medianBurstUs} µs); gaps between bursts: ${sa.commonGaps}`,
          );
          console.log(
            round,
            s.name,
            '|',
            Math.round(sat.qps),
            ((s1 - s0) / sat.completed).toFixed(2),
            '|',
            r.p50Us,
            r.p99Us,
            r.p999Us,
            Math.round(r.qps),
            ((c1 - c0) / r.completed).toFixed(2),
            '| rss MB',
            (rssBytes(s.server.pid) / 1048576).toFixed(1),
          );
        } finally {
          for (const o of others) o.server.child.kill('SIGCONT');
        }
      }
    }
    // Per-round ratios to the peers measured in the same round (noise moves both), and their median.
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    console.log('\np99 at the fixed rate, one per round (median), and per-round ratio to each peer (median):');
    const table = (p99: Map<string, number[]>): void => {
      for (const [name, xs] of p99) {
        const ratios = ['dnsmasq', 'raw-native']
          .filter((peer) => peer !== name && p99.has(peer))
          .map((peer) => {
            const rs = xs.map((x, i) => x / p99.get(peer)![i]!);
            return `/ ${peer} ${rs.map((v) => v.toFixed(2)).join(' ')} (${median(rs).toFixed(2)})`;
          });
        console.log(`  ${name}: ${xs.join(' ')} µs (${median(xs)}) ${ratios.join('  ')}`);
      }
    };
    table(p99s);
    if (attribute) {
      console.log('\nthe same without the answers that a kdamond run (on either core) overlapped:');
      table(p99Clean);
    }
  } finally {
    for (const s of servers) await s.server.stop();
    await up.stop();
    // `--perf-basic-prof` also makes V8 write isolate-…-<pid>-v8.log files into the working directory.
    if (stacks) {
      const pids = new Set(servers.map((s) => String(s.server.pid)));
      for (const f of readdirSync('.')) if (/^isolate-0x[0-9a-f]+-(\d+)-v8\.log$/.test(f) && pids.has(f.split('-')[2]!)) rmSync(f, { force: true });
    }
  }
}

runMain(main);
