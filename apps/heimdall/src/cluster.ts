/**
 * `--workers N`: N processes serving the same addresses with node:cluster.
 *
 * Port sharing. Node 20 has no `reusePort` for dgram or net (it arrived in
 * Node 22.12 / 23.1), so the workers share sockets through cluster:
 * - UDP: a worker's `bind` is handed to the primary, which creates one socket
 *   and passes the same handle to every worker; the kernel wakes one of the
 *   processes blocked on it per datagram, so load spreads across workers.
 * - TCP: cluster's default round-robin: the primary accepts and hands each
 *   connection to the next worker.
 * On Node ≥ 22.12 / 23.1 the workers' listeners set `reusePort`
 * (core's `reusePortSupported`): each worker binds its own UDP socket and TCP
 * listener with SO_REUSEPORT and the kernel balances datagrams and
 * connections across them, with no hop through the primary.
 *
 * The primary runs the admin HTTP server: `/metrics` aggregates every
 * worker's registry with prom-client's `AggregatorRegistry` (counters and
 * histograms summed), and admin actions are sent to every worker over IPC
 * (cache flush counts are summed; status comes from the first worker).
 * Signals: SIGTERM/SIGINT → every worker drains and exits, then the primary;
 * SIGHUP → the primary re-reads the config file, every worker reloads its
 * block lists (and takes a new log level). A worker that dies
 * unexpectedly is restarted (at most 5 times a minute).
 */
import cluster, { type Worker } from 'node:cluster';
import type http from 'node:http';
import os from 'node:os';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from 'pino';
import { type ActionArgs, type ActionName, BadRequest, NotAvailable } from './actions.js';
import { adminUrl, startAdmin } from './admin.js';
import { startApp } from './app.js';
import { parseHostPort, type ReloadPlan, type ResolvedConfig } from './config.js';

const CONFIG_ENV = 'HEIMDALL_WORKER_CONFIG';

/** A worker could not start (its own error is printed by the worker). */
export class WorkerStartError extends Error {
  readonly code = 'WORKER_START';
  override readonly name = 'WorkerStartError';
}

interface AdminRequest {
  type: 'heimdall:admin';
  id: number;
  action: ActionName | 'reload';
  /** Action arguments; for `reload`, an optional new log level. */
  args: ActionArgs & { logLevel?: string };
}
interface AdminResponse {
  type: 'heimdall:admin:res';
  id: number;
  ok: boolean;
  result?: unknown;
  error?: { name: string; message: string };
}

/** Number of workers for a config value. */
export function workerCount(workers: number | 'auto'): number {
  return workers === 'auto' ? Math.max(1, os.availableParallelism?.() ?? os.cpus().length) : workers;
}

/** Whether this process is a cluster worker started by {@link runPrimary}. */
export function isWorker(): boolean {
  return cluster.isWorker && process.env[CONFIG_ENV] !== undefined;
}

/** Worker side: start the resolver, answer the primary's admin requests, drain on shutdown. */
export async function runWorker(logger: Logger): Promise<void> {
  const config = JSON.parse(process.env[CONFIG_ENV]!) as ResolvedConfig;
  const wlog = logger.child({ worker: cluster.worker?.id });
  const app = await startApp(config, { logger: wlog, withAdmin: false, worker: true });
  // Constructing one installs prom-client's worker-side listener that answers the primary's metrics requests.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([app.registry]);
  let exiting = false;
  const shutdown = async (): Promise<void> => {
    if (exiting) return;
    exiting = true;
    await app.stop();
    process.exit(0);
  };
  process.on('message', async (msg: AdminRequest | { type: 'heimdall:shutdown' }) => {
    if (msg?.type === 'heimdall:shutdown') return shutdown();
    if (msg?.type !== 'heimdall:admin') return;
    const reply = (r: Omit<AdminResponse, 'type' | 'id'>): void => {
      process.send?.({ type: 'heimdall:admin:res', id: msg.id, ...r });
    };
    try {
      if (msg.action === 'reload') {
        const level = msg.args.logLevel;
        if (level) {
          logger.level = level;
          wlog.level = level;
        }
        await app.reload();
        reply({ ok: true });
      } else reply({ ok: true, result: await app.action(msg.action, msg.args) });
    } catch (err) {
      reply({ ok: false, error: { name: (err as Error).name, message: (err as Error).message } });
    }
  });
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.on('SIGHUP', () => undefined); // the primary forwards reloads
  process.send?.({ type: 'heimdall:ready' });
}

/** Primary side: fork the workers, serve admin, forward signals. Resolves when everything has exited. */
export async function runPrimary(config: ResolvedConfig, logger: Logger, reread: () => ReloadPlan = () => ({ needsRestart: [] })): Promise<void> {
  const count = workerCount(config.workers);
  const env = { [CONFIG_ENV]: JSON.stringify(config) };
  const workers = new Set<Worker>();
  let shuttingDown = false;
  const restarts: number[] = [];
  let nextId = 1;
  const pending = new Map<number, { resolve: (r: AdminResponse) => void; timer: NodeJS.Timeout }>();
  let readyCount = 0;
  let started = false;

  const onMessage = (msg: AdminResponse | { type: string }): void => {
    if (msg?.type === 'heimdall:admin:res') {
      const r = msg as AdminResponse;
      const p = pending.get(r.id);
      if (p) {
        clearTimeout(p.timer);
        pending.delete(r.id);
        p.resolve(r);
      }
    }
  };

  const fork = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork(env);
      workers.add(w);
      w.on('message', (msg: { type?: string }) => {
        if (msg?.type === 'heimdall:ready') {
          readyCount++;
          resolve();
        } else onMessage(msg as AdminResponse);
      });
      w.once('exit', (code, signal) => {
        workers.delete(w);
        if (shuttingDown) return;
        if (!started) {
          // A worker that cannot start (address in use, bad plugin) fails the whole start: no restarts.
          shuttingDown = true;
          for (const other of workers) other.process.kill('SIGTERM');
          reject(new WorkerStartError(`worker ${w.id} exited during start (code ${code ?? signal}); see its error above`));
          return;
        }
        readyCount = Math.max(0, readyCount - 1);
        logger.error({ worker: w.id, code, signal }, 'worker exited');
        const now = Date.now();
        while (restarts.length && now - restarts[0]! > 60_000) restarts.shift();
        if (restarts.length >= 5) {
          logger.fatal('workers keep dying (5 restarts in a minute); stopping');
          void stopAll(1);
          return;
        }
        restarts.push(now);
        fork().catch(() => undefined);
      });
    });

  const ask = async (action: AdminRequest['action'], args: AdminRequest['args']): Promise<AdminResponse[]> => {
    const asks = [...workers].map(
      (w) =>
        new Promise<AdminResponse>((resolve) => {
          const id = nextId++;
          const timer = setTimeout(() => {
            pending.delete(id);
            resolve({ type: 'heimdall:admin:res', id, ok: false, error: { name: 'Error', message: `worker ${w.id} did not answer in 30 s` } });
          }, 30_000);
          pending.set(id, { resolve, timer });
          w.send({ type: 'heimdall:admin', id, action, args } satisfies AdminRequest);
        }),
    );
    return Promise.all(asks);
  };

  const action = async (name: ActionName, args: ActionArgs): Promise<unknown> => {
    const replies = await ask(name, args);
    const failed = replies.find((r) => !r.ok);
    if (failed?.error) {
      if (failed.error.name === 'NotAvailable') throw Object.assign(new NotAvailable(''), { message: failed.error.message });
      if (failed.error.name === 'BadRequest') throw new BadRequest(failed.error.message);
      throw new Error(failed.error.message);
    }
    if (name === 'cache.flush' || name === 'cache.stats') {
      const key = name === 'cache.flush' ? 'removed' : 'entries';
      let total = 0;
      for (const r of replies) total += Number((r.result as Record<string, number> | undefined)?.[key] ?? 0);
      return { [key]: total, workers: replies.length };
    }
    return replies[0]?.result;
  };

  let admin: http.Server | undefined;
  const stopAll = async (code = 0): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ workers: workers.size }, 'shutting down: draining workers');
    const exits = [...workers].map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    for (const w of workers) w.send({ type: 'heimdall:shutdown' });
    const bound = setTimeout(() => {
      for (const w of workers) w.process.kill('SIGKILL');
    }, config.drainTimeoutMs + 5000);
    await Promise.all(exits);
    clearTimeout(bound);
    // Admin stays up (with /ready → 503) until the workers have drained.
    if (admin) {
      const closed = new Promise<void>((resolve) => admin!.close(() => resolve()));
      admin.closeAllConnections();
      await closed;
    }
    logger.info('stopped');
    process.exit(code);
  };
  process.on('SIGTERM', () => void stopAll(0));
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGHUP', () => {
    const plan = reread();
    if (plan.logLevel) logger.level = plan.logLevel;
    void ask('reload', plan.logLevel ? { logLevel: plan.logLevel } : {}).then((r) =>
      logger.info({ workers: r.length, failed: r.filter((x) => !x.ok).length }, 'reload forwarded to workers'),
    );
  });

  await Promise.all(Array.from({ length: count }, () => fork()));
  started = true;
  if (config.admin.enabled) {
    const aggregator = new AggregatorRegistry();
    const { host, port } = parseHostPort(config.admin.listen, 'admin.listen');
    admin = await startAdmin(
      {
        metrics: async () => ({ contentType: aggregator.contentType, body: await aggregator.clusterMetrics() }),
        ready: () => !shuttingDown && readyCount === count,
        action,
      },
      { host, port, token: config.admin.token, logger },
    );
  }
  logger.info({ workers: count, listen: config.listen, admin: admin ? adminUrl(admin) : null, pid: process.pid }, 'cluster ready');
}
