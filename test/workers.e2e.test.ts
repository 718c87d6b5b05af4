/**
 * `--workers 2`: two processes share the DNS ports through node:cluster; the
 * primary serves admin with metrics aggregated over the workers (and the
 * stats plugin's overview per worker, as the dashboard merges it), learns the
 * chain's admin actions from them (a third-party plugin's too) and fans
 * calls out to them, combining the answers; SIGTERM stops everything with
 * exit 0.
 */
import { rmSync } from 'node:fs';
import { FakeUpstream, record } from '@heimdall/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pluginDir, writeCounterPlugin } from './fixture-plugins.js';
import { type AppProcess, admin, dig, startServing } from './helpers.js';

let up: FakeUpstream;
let app: AppProcess;
const dir = pluginDir();
const counter = writeCounterPlugin(dir);
const POST = { method: 'POST', headers: { 'content-type': 'application/json' } };

beforeAll(async () => {
  up = await FakeUpstream.start({ fallback: (q) => [record(q.name, 'A', '192.0.2.77', 60)] });
  app = await startServing(
    [{ use: 'metrics' }, { use: 'stats' }, { use: counter }, { use: 'cache' }, { use: 'upstream', options: { servers: [`127.0.0.1:${up.port}`] } }],
    ['--workers', '2'],
  );
}, 30_000);

afterAll(async () => {
  if (app) expect(await app.stop()).toBe(0);
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('cluster workers', () => {
  it('answers over UDP and TCP from several workers with aggregated metrics', async () => {
    expect(app.output()).toMatch(/"workers":2[^\n]*cluster ready/);
    const pids = new Set([...app.output().matchAll(/"pid":(\d+)[^\n]*"msg":"listening"/g)].map((m) => m[1]));
    expect(pids.size).toBe(2);
    // The deployment's start lines come once, not once per worker.
    expect(app.output().match(/not an open resolver/g)).toHaveLength(1);
    for (let i = 0; i < 10; i++) {
      const r = await dig(app.port, [i % 2 ? '+tcp' : '+notcp', `w${i}.example.com`]);
      expect(r.status).toBe('NOERROR');
      expect(r.answers[0]?.data).toBe('192.0.2.77');
    }
    const ready = await admin(app.adminUrl!, '/ready');
    expect(ready.status).toBe(200);
    const m = await admin(app.adminUrl!, '/metrics');
    const total = [...m.text.matchAll(/^heimdall_requests_total\{[^}]*\} (\d+)/gm)].reduce((s, x) => s + Number(x[1]), 0);
    expect(total).toBe(10);
    // A gauge of one thing each worker sees (the upstream's health) is not summed over the workers: 1, not 2.
    const upGauge = [...m.text.matchAll(/^heimdall_upstream_up\{[^}]*\} (\S+)/gm)].map((x) => Number(x[1]));
    expect(upGauge).toEqual([1]);
    // The dashboard's numbers: stats/overview answers once per worker (combine all); the totals add up to the queries sent.
    const deadline = Date.now() + 5000;
    let answers: Array<{ worker: number; result: { lifetime: { queries: number } } }> = [];
    let sum = 0;
    do {
      answers = (await admin(app.adminUrl!, '/stats/overview')).json() as typeof answers;
      sum = answers.reduce((s, a) => s + a.result.lifetime.queries, 0);
      if (sum < 10) await new Promise((r) => setTimeout(r, 50));
    } while (sum < 10 && Date.now() < deadline);
    expect(answers).toHaveLength(2);
    expect(new Set(answers.map((a) => a.worker)).size).toBe(2);
    expect(sum).toBe(10);
  }, 30_000);

  it("serves a third-party plugin's actions, asking every worker and combining by the action", async () => {
    const base = app.adminUrl!;
    const list = (await admin(base, '/actions')).json() as { endpoints: Array<{ path: string; method: string }> };
    expect(list.endpoints).toContainEqual(expect.objectContaining({ method: 'POST', path: '/counter/bump' }));
    // sum: every worker bumped its own counter by 3.
    const bump = await admin(base, '/counter/bump?by=3', POST);
    expect(bump.status).toBe(200);
    expect(bump.json()).toEqual({ hits: 6, by: 6, workers: 2 });
    expect((await admin(base, '/counter/stats')).json()).toEqual({ hits: 6, reloads: 0, workers: 2 });
    // all: one answer per worker, tagged with its id.
    const who = (await admin(base, '/counter/whoami')).json() as Array<{ worker: number; result: { pid: number } }>;
    expect(who).toHaveLength(2);
    expect(new Set(who.map((w) => w.worker)).size).toBe(2);
    const workerPids = new Set([...app.output().matchAll(/"pid":(\d+)[^\n]*"msg":"listening"/g)].map((m) => Number(m[1])));
    expect(new Set(who.map((w) => w.result.pid))).toEqual(workerPids);
    // Validation happens where the action lives; the error comes back as a 400.
    const bad = await admin(base, '/counter/bump?by=5000', POST);
    expect(bad.status).toBe(400);
    expect(bad.json()).toEqual({ error: 'counter/bump.by: must be an integer in 1..1000' });
    expect((await admin(base, '/counter/bump', { method: 'POST' })).status).toBe(403);
    // SIGHUP: every worker runs its reload actions.
    app.child.kill('SIGHUP');
    const deadline = Date.now() + 5000;
    let reloads = 0;
    while (reloads < 2 && Date.now() < deadline) {
      reloads = ((await admin(base, '/counter/stats')).json() as { reloads: number }).reloads;
      if (reloads < 2) await new Promise((r) => setTimeout(r, 50));
    }
    expect(reloads).toBe(2);
  }, 30_000);

  it("fans a cache flush out to every worker (the cache plugin's `cache/flush`, combine sum)", async () => {
    const flushed = (await admin(app.adminUrl!, '/cache/flush', POST)).json() as { removed: number; workers: number };
    expect(flushed.workers).toBe(2);
    expect(flushed.removed).toBe(10);
  });
});
