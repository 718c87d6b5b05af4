/**
 * `--workers 2`: two processes share the DNS ports through node:cluster; the
 * primary serves admin with metrics aggregated over the workers and fans
 * admin actions out to them; SIGTERM stops everything with exit 0.
 */
import { FakeUpstream, record } from '@heimdall/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppProcess, admin, dig, freePort, startApp } from './helpers.js';

let up: FakeUpstream;
let app: AppProcess;

beforeAll(async () => {
  up = await FakeUpstream.start({ fallback: (q) => [record(q.name, 'A', '192.0.2.77', 60)] });
  const port = await freePort();
  const adminPort = await freePort();
  app = await startApp(
    {
      listen: [`127.0.0.1:${port}`],
      admin: { listen: `127.0.0.1:${adminPort}` },
      logLevel: 'info',
      plugins: [{ use: 'metrics' }, { use: 'cache' }, { use: 'upstream', options: { servers: [`127.0.0.1:${up.port}`] } }],
    },
    ['--workers', '2'],
  );
  // The first worker's `listening` line came; wait for the primary's `cluster ready`.
  const deadline = Date.now() + 15000;
  while (!/cluster ready/.test(app.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  (app as { adminUrl: string | null }).adminUrl = `http://127.0.0.1:${adminPort}`;
}, 30_000);

afterAll(async () => {
  if (app) expect(await app.stop()).toBe(0);
  await up?.close();
});

describe('cluster workers', () => {
  it('answers over UDP and TCP from several workers with aggregated metrics', async () => {
    expect(app.output()).toMatch(/"workers":2[^\n]*cluster ready/);
    const pids = new Set([...app.output().matchAll(/"pid":(\d+)[^\n]*"msg":"listening"/g)].map((m) => m[1]));
    expect(pids.size).toBe(2);
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
    const flushed = (await admin(app.adminUrl!, '/cache/flush', { method: 'POST' })).json() as { removed: number; workers: number };
    expect(flushed.workers).toBe(2);
    expect(flushed.removed).toBe(10);
  }, 30_000);
});
