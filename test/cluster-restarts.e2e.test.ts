/**
 * A cluster worker that keeps dying: restarts back off (instead of the
 * whole cluster stopping) while the healthy worker keeps serving, `/ready`
 * says `degraded` with 200, the metrics show the restarts and the backoff,
 * and the cluster heals once the cause is gone.
 */
import { rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pluginDir, waitFor, writeCrashPlugin } from './fixture-plugins.js';
import { type AppProcess, admin, dig, startServing } from './helpers.js';

const dir = pluginDir();
const crash = writeCrashPlugin(dir);
const marker = join(dir, 'crash-now');
let app: AppProcess | undefined;

afterAll(async () => {
  if (app) await app.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('cluster worker restarts', () => {
  it('backs off restarts of a crashing worker and keeps serving with the healthy one', async () => {
    app = await startServing([{ use: crash, options: { marker } }, { use: 'special-use' }], ['--workers', '2']);
    const base = app.adminUrl!;
    expect((await admin(base, '/ready')).json()).toEqual({ status: 'ready', workers: { serving: 2, configured: 2 } });
    const pids = [...app.output().matchAll(/"pid":(\d+)[^\n]*"msg":"listening"/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(2);

    // From now on every new worker dies 100 ms after starting; kill one of the two.
    writeFileSync(marker, '');
    process.kill(pids[0]!, 'SIGKILL');
    // Five restarts a minute are immediate; the sixth death backs off.
    await waitFor(() => /restart backed off/.test(app!.output()), 30_000, 'restart backoff');
    expect(app.child.exitCode).toBeNull();
    const ready = await admin(base, '/ready');
    expect(ready.status).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'degraded', workers: { serving: 1, configured: 2 } });
    expect((await dig(app.port, ['localhost'])).answers[0]?.data).toBe('127.0.0.1');
    const metrics = (await admin(base, '/metrics')).text;
    expect(Number(/^heimdall_cluster_worker_restarts_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(6);
    expect(Number(/^heimdall_cluster_worker_restart_backoff_seconds (\S+)/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).toMatch(/^heimdall_cluster_workers\{state="serving"\} 1$/m);

    // The cause goes away: the next (backed-off) restart succeeds.
    unlinkSync(marker);
    await waitFor(async () => ((await admin(base, '/ready')).json() as { status: string }).status === 'ready', 40_000, 'healed');
    expect(app.child.exitCode).toBeNull();
    expect(await app.stop()).toBe(0);
    app = undefined;
  }, 90_000);
});
