/**
 * Old-generation growth under a mixed load (issue 14, the tail): the app
 * (default chain) pinned to CPU 0 with `--trace-gc`, first warmed with the
 * 1000 hit names, then a fixed-rate run of a file where every `--miss-every`th
 * query is a new name (a cache miss answered by the local upstream) and the
 * rest are the hit names. Prints, per run, the scavenges and mark-compacts
 * V8 reported and how much the heap grew after each scavenge: an allocation
 * site on the cache-hit path that V8 pretenured (allocates straight in the
 * old generation) shows as growth far beyond what misses keep alive.
 *
 *   flock /tmp/heimdall-load.lock npx tsx bench/load/gc-mix.ts [--qps 20000] [--seconds 5] [--miss-every 10] [--app DIR] [--app-flags '...']
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBatchperf } from './lib/batchperf.js';
import { appConfig, CLIENT_CORE, defaultChain, flag, startServer } from './lib/harness.js';
import { ensureTools } from './lib/packages.js';
import { dnsmasqUpstream } from './lib/peers.js';
import { freePort, runMain } from './lib/proc.js';
import { gcSummary } from './lib/gc-trace.js';
import { blocklistFile, nameFile, writeLines } from './lib/queries.js';

const here = dirname(fileURLToPath(import.meta.url));
const qps = Number(flag('qps', '20000'));
const seconds = Number(flag('seconds', '5'));
const missEvery = Number(flag('miss-every', '10'));
const appDir = resolve(flag('app', join(here, '../..')));
/** `--app-flags '--no-allocation-site-pretenuring'`: more node flags for the app. */
const appFlags = flag('app-flags', '') === '' ? [] : flag('app-flags', '').split(' ');

async function main(): Promise<void> {
  ensureTools(['dnsmasq']);
  const tmp = mkdtempSync(join(os.tmpdir(), 'heimdall-gcmix-'));
  process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
  const upPort = await freePort();
  const up = await startServer('upstream', dnsmasqUpstream(upPort), upPort, CLIENT_CORE);
  const hit = await nameFile(join(tmp, 'hit.txt'), 'hit', 1000);
  const blocklist = await blocklistFile(join(tmp, 'blocklist.txt'), 100_000);
  const total = qps * seconds;
  const mixed = await writeLines(join(tmp, 'mixed.txt'), total, (i) =>
    i % missEvery === 0 ? `m${i.toString(36)}.miss.bench.example A` : `n${(i % 1000).toString(36)}.hit.bench.example A`,
  );
  const port = await freePort();
  const config = join(tmp, 'app.json');
  writeFileSync(config, JSON.stringify(appConfig(port, { plugins: defaultChain(blocklist, upPort) })));
  const app = await startServer(
    'app',
    { command: process.execPath, args: ['--max-semi-space-size=4', '--trace-gc', ...appFlags, join(appDir, 'apps/heimdall/dist/cli.js'), '--config', config] },
    port,
  );
  try {
    await runBatchperf({ port, queryFile: hit, seconds: 3, qps, core: CLIENT_CORE, tmpDir: tmp });
    for (const [name, file] of [
      ['hits only', hit],
      [`1 miss in ${missEvery}`, mixed],
      ['hits only, after', hit],
    ] as const) {
      const before = app.output().length;
      const r = await runBatchperf({ port, queryFile: file, seconds, qps, core: CLIENT_CORE, tmpDir: tmp });
      const s = gcSummary(app.output().slice(before));
      console.log(
        `${name.padEnd(18)} ${r.qps.toFixed(0)} qps, p99 ${r.p99Us} µs: ${s.scavenges} scavenges, heap +${s.growthKBPerScavenge.toFixed(0)} KB per scavenge, ${s.markCompacts} mark-compacts ${s.pausesMs.map((p) => `${p} ms`).join(' ')}`,
      );
    }
  } finally {
    await app.stop();
    await up.stop();
  }
}

runMain(main);
