/**
 * `--workers 2 --cache-dir DIR`: the two workers share one disk cache tier
 * (LMDB, plugin persistence), so a name asked 20 times across both reaches
 * the upstream once; after a restart the cache is warm from disk.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeUpstream, record } from '@heimdall/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppProcess, admin, dig, startServing } from './helpers.js';

let up: FakeUpstream;
const cacheDir = mkdtempSync(join(tmpdir(), 'heimdall-e2e-cache-dir-'));
const apps: AppProcess[] = [];

async function start(): Promise<AppProcess> {
  const app = await startServing(
    [{ use: 'metrics' }, { use: 'cache' }, { use: 'upstream', options: { servers: [`127.0.0.1:${up.port}`] } }],
    ['--workers', '2', '--cache-dir', cacheDir],
  );
  apps.push(app);
  return app;
}

/** Sum of a metric over the workers (the primary aggregates). */
async function metric(app: AppProcess, name: string): Promise<number> {
  const m = await admin(app.adminUrl!, '/metrics');
  return [...m.text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'gm'))].reduce((s, x) => s + Number(x[1]), 0);
}

async function until(f: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error('not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  up = await FakeUpstream.start({ fallback: (q) => [record(q.name, 'A', '192.0.2.88', 3600)] });
}, 30_000);

afterAll(async () => {
  for (const app of apps) await app.stop();
  await up?.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

describe('--workers 2 --cache-dir DIR', () => {
  it('a name asked 20 times across both workers reaches the upstream once', async () => {
    const app = await start();
    expect(app.output()).toMatch(/"workers":2[^\n]*cluster ready/);
    const first = await dig(app.port, ['+notcp', 'shared.example.com']);
    expect(first.answers[0]?.data).toBe('192.0.2.88');
    // Written through to the disk tier: committed within flushIntervalMs.
    await until(async () => (await metric(app, 'heimdall_persistence_writes_total')) >= 1);
    for (let i = 1; i < 20; i++) {
      const r = await dig(app.port, [i % 2 ? '+tcp' : '+notcp', 'shared.example.com']);
      expect(r.status).toBe('NOERROR');
      expect(r.answers[0]?.data).toBe('192.0.2.88');
    }
    expect(up.count('shared.example.com', 'A')).toBe(1);
    // The other worker answered from the disk tier (promoted into its L1).
    expect(await metric(app, 'heimdall_cache_tier_hits_total')).toBeGreaterThanOrEqual(1);
    expect(await app.stop()).toBe(0);
  }, 60_000);

  it('after a restart the answer comes from disk, not the upstream', async () => {
    const app = await start();
    const r = await dig(app.port, ['+notcp', 'shared.example.com']);
    expect(r.answers[0]?.data).toBe('192.0.2.88');
    expect(r.answers[0]?.ttl).toBeLessThanOrEqual(3600);
    expect(up.count('shared.example.com', 'A')).toBe(1);
    expect(await app.stop()).toBe(0);
  }, 60_000);
});
