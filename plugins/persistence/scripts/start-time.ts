/**
 * Target: with 1,000,000 entries, starting the plugin takes no longer than
 * with an empty directory (nothing is read at start), and the first lookup
 * is answered from disk.
 *
 *   cd plugins/persistence && node --conditions=source --import tsx scripts/start-time.ts [DIR]
 *
 * Fills DIR (default: a temporary directory, removed at the end) with 1M
 * entries of 150 bytes once (about a minute), then, alternately, starts a
 * resolver holding `persistence` on the full directory and on an empty one
 * (ROUNDS times each, in fresh child processes so that nothing is cached in
 * the process), timing `start()` and the first `get` of a random key.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CACHE_TIERS, type CacheTier } from '@heimdall/core';
import { systemClock } from '@heimdall/core/pipeline';
import { testResolver } from '@heimdall/testing';
import { persistence } from '../src/plugin.js';
import type { DiskTier } from '../src/tier.js';

const N = 1_000_000;
const ROUNDS = 5;
const MAX_SIZE_MB = 1024;
const keyOf = (i: number): Buffer => Buffer.from(`\x04host${String(i).padStart(7, '0')}\x07example\x03net\x00\x00\x01\x00\x011`, 'latin1');

async function open(dir: string) {
  const r = testResolver([persistence({ dir, maxSizeMb: MAX_SIZE_MB, batchSize: 20_000, maxPendingWrites: 40_000 })], { clock: systemClock });
  const t0 = performance.now();
  await r.start();
  const startMs = performance.now() - t0;
  return { r, tier: r.container.getAll<CacheTier>(CACHE_TIERS)[0] as DiskTier, startMs };
}

if (process.argv[2] === '--child') {
  // One measurement in a fresh process: start, then the first lookup.
  const dir = process.argv[3]!;
  const key = Number(process.argv[4]);
  const { r, tier, startMs } = await open(dir);
  const t1 = performance.now();
  const v = tier.get(keyOf(key));
  const getUs = (performance.now() - t1) * 1000;
  process.stdout.write(JSON.stringify({ startMs, firstGetUs: getUs, found: v !== undefined && v.length === 150 }));
  await r.stop();
  process.exit(0);
}

const own = process.argv[2] === undefined;
const full = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'heimdall-persistence-1m-'));
const empty = mkdtempSync(join(tmpdir(), 'heimdall-persistence-empty-'));
try {
  if (!existsSync(join(full, 'data.mdb')) || statSync(join(full, 'data.mdb')).size < 100_000_000) {
    const t0 = performance.now();
    const { r, tier } = await open(full);
    const value = Buffer.alloc(150, 7);
    const expiresAt = Date.now() + 7 * 86_400_000;
    for (let i = 0; i < N; i += 20_000) {
      for (let j = i; j < i + 20_000; j++) tier.set(keyOf(j), value, expiresAt);
      await tier.drain();
    }
    await r.stop();
    process.stderr.write(
      `filled ${N} entries in ${((performance.now() - t0) / 1000).toFixed(1)} s, data.mdb ${(statSync(join(full, 'data.mdb')).size / 1e6).toFixed(0)} MB\n`,
    );
  }
  const rows: Array<{ dir: string; startMs: number; firstGetUs: number; found: boolean }> = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, dir] of [
      ['full (1M)', full],
      ['empty', empty],
    ] as const) {
      const key = Math.floor(Math.random() * N);
      const out = execFileSync(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, '--child', dir, String(key)], { encoding: 'utf8' });
      rows.push({ dir: name, ...(JSON.parse(out) as { startMs: number; firstGetUs: number; found: boolean }) });
    }
  }
  console.table(rows);
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1]!;
  for (const name of ['full (1M)', 'empty']) {
    const rs = rows.filter((r) => r.dir === name);
    console.log(
      `${name}: start median ${median(rs.map((r) => r.startMs)).toFixed(2)} ms, first get median ${median(rs.map((r) => r.firstGetUs)).toFixed(1)} µs, answered from disk ${rs.filter((r) => r.found).length}/${rs.length}`,
    );
  }
} finally {
  if (own) rmSync(full, { recursive: true, force: true });
  rmSync(empty, { recursive: true, force: true });
}
