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
 * The primary runs the admin HTTP server (started before the workers, so a
 * taken admin port fails the start at once): `/metrics` aggregates every
 * worker's registry with prom-client's `AggregatorRegistry` (counters and
 * histograms summed) plus the primary's own worker metrics; the admin
 * actions are whatever the workers' chains contribute (each worker sends its
 * catalogue when ready); a call is sent to every serving worker over IPC and
 * the answers merged by the action's `combine`.
 *
 * Signals: SIGTERM/SIGINT → every worker drains and exits, then the primary;
 * SIGHUP → the primary re-reads the config file, every worker runs its
 * chain's `reload` actions (and takes a new log level).
 *
 * A worker that dies is restarted at once up to 5 times a minute; past that,
 * restarts back off exponentially (1 s, 2 s, 4 s … at most 30 s; back to
 * immediate after a minute without a death) while the healthy workers keep
 * serving: `/ready` says `degraded` (200) while at least one worker serves,
 * and `heimdall_cluster_worker_restarts_total` /
 * `heimdall_cluster_worker_restart_backoff_seconds` show it.
 */
import process from 'node:process';
import cluster, { type Worker } from 'node:cluster';
import type http from 'node:http';
import os from 'node:os';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import type { Logger } from 'pino';
import { type ActionInfo, combineResults } from './actions.js';
import { type AdminBackend, adminUrl, HttpError, startAdmin } from './admin.js';
import { type RunningApp, startApp } from './app.js';
import { dashboardLine } from './dashboard.js';
import { parseHostPort, type ReloadPlan, type ResolvedConfig } from './config.js';
import { installSignalHandlers } from './signals.js';

const CONFIG_ENV = 'HEIMDALL_WORKER_CONFIG';

/** Restarts in a minute that happen at once; further ones back off. */
const FREE_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
const BACKOFF_BASE_MS = 1000;
const BACKOFF_CAP_MS = 30_000;
const ASK_TIMEOUT_MS = 30_000;

/** A worker could not start (its own error is printed by the worker). */
export class WorkerStartError extends Error {
  readonly code = 'WORKER_START';
  override readonly name = 'WorkerStartError';
}

interface ActionRequest {
  type: 'heimdall:admin';
  id: number;
  plugin: string;
  action: string;
  args: Record<string, unknown>;
}
interface ReloadRequest {
  type: 'heimdall:reload';
  id: number;
  logLevel?: string;
}
interface WorkerReply {
  type: 'heimdall:admin:res';
  id: number;
  ok: boolean;
  result?: unknown;
  error?: { name: string; message: string; code?: string; statusCode?: number };
}
interface ReadyMessage {
  type: 'heimdall:ready';
  actions: ActionInfo[];
}

/** Number of workers for a config value. */
export function workerCount(workers: number | 'auto'): number {
  return workers === 'auto' ? Math.max(1, os.availableParallelism?.() ?? os.cpus().length) : workers;
}

/** Whether this process is a cluster worker started by {@link runPrimary}. */
export function isWorker(): boolean {
  return cluster.isWorker && process.env[CONFIG_ENV] !== undefined;
}

/** Worker side: start the resolver, answer the primary's requests, drain on shutdown. */
export async function runWorker(logger: Logger): Promise<void> {
  const config = JSON.parse(process.env[CONFIG_ENV]!) as ResolvedConfig;
  const wlog = logger.child({ worker: cluster.worker?.id });
  // Answers the primary's metrics requests from the start (empty until the resolver runs).
  new AggregatorRegistry();
  let app: RunningApp | undefined;
  let exiting = false;
  const shutdown = async (): Promise<void> => {
    if (exiting) return;
    exiting = true;
    if (app) await app.stop();
    process.exit(0);
  };
  const signals = installSignalHandlers();
  signals.logger = wlog;
  // SIGHUP: the primary forwards reloads.
  signals.handle({ stop: () => void shutdown(), reload: () => undefined });
  process.on('message', async (msg: ActionRequest | ReloadRequest | { type: 'heimdall:shutdown' }) => {
    if (msg?.type === 'heimdall:shutdown') return shutdown();
    if (msg?.type !== 'heimdall:admin' && msg?.type !== 'heimdall:reload') return;
    const reply = (r: Omit<WorkerReply, 'type' | 'id'>): void => {
      process.send?.({ type: 'heimdall:admin:res', id: msg.id, ...r } satisfies WorkerReply);
    };
    try {
      if (app === undefined) throw new Error('worker is starting');
      if (msg.type === 'heimdall:reload') {
        if (msg.logLevel) {
          logger.level = msg.logLevel;
          wlog.level = msg.logLevel;
        }
        await app.reload();
        reply({ ok: true });
      } else reply({ ok: true, result: await app.actions.run(msg.plugin, msg.action, msg.args) });
    } catch (err) {
      const e = err as { name?: string; message?: string; code?: unknown; statusCode?: unknown };
      reply({
        ok: false,
        error: {
          name: String(e?.name ?? 'Error'),
          message: String(e?.message ?? err),
          ...(typeof e?.code === 'string' ? { code: e.code } : {}),
          ...(typeof e?.statusCode === 'number' ? { statusCode: e.statusCode } : {}),
        },
      });
    }
  });
  // Worker 1 is the first started (restarts get new ids): the deployment's start lines are logged once.
  app = await startApp(config, { logger: wlog, withAdmin: false, worker: true, announce: cluster.worker?.id === 1 });
  if (exiting) {
    await app.stop();
    process.exit(0);
  }
  AggregatorRegistry.setRegistries([app.registry]);
  process.send?.({ type: 'heimdall:ready', actions: [...app.actions.list] } satisfies ReadyMessage);
}

/** Primary side: serve admin, fork the workers, forward signals. Resolves once every worker serves. */
export async function runPrimary(config: ResolvedConfig, logger: Logger, reread: () => ReloadPlan = () => ({ needsRestart: [] })): Promise<void> {
  const count = workerCount(config.workers);
  const env = { [CONFIG_ENV]: JSON.stringify(config) };
  const workers = new Set<Worker>();
  /** Workers that have started and serve. */
  const serving = new Set<Worker>();
  let shuttingDown = false;
  let started = false;
  let catalogue: ActionInfo[] | undefined;
  let nextId = 1;
  const pending = new Map<number, { worker: Worker; resolve: (r: WorkerReply) => void; timer: NodeJS.Timeout }>();

  // Restarts: immediate up to FREE_RESTARTS in a minute, then exponential backoff.
  let deaths: number[] = [];
  let lastDeath = 0;
  let backoffLevel = 0;
  const restartTimers = new Set<NodeJS.Timeout>();
  let nextRestartAt = 0;
  const backoffMs = (): number =>
    backoffLevel === 0 || Date.now() - lastDeath > RESTART_WINDOW_MS ? 0 : Math.min(BACKOFF_BASE_MS * 2 ** (backoffLevel - 1), BACKOFF_CAP_MS);

  const registry = new Registry();
  const restartsTotal = new Counter({ name: 'heimdall_cluster_worker_restarts_total', help: 'Workers restarted after dying', registers: [registry] });
  new Gauge({
    name: 'heimdall_cluster_worker_restart_backoff_seconds',
    help: 'Delay before the next worker restart (0: restarts are immediate)',
    registers: [registry],
    collect() {
      this.set(backoffMs() / 1000);
    },
  });
  new Gauge({
    name: 'heimdall_cluster_workers',
    help: 'Workers by state: configured, serving',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.set({ state: 'configured' }, count);
      this.set({ state: 'serving' }, serving.size);
    },
  });

  const onReply = (r: WorkerReply): void => {
    const p = pending.get(r.id);
    if (p) {
      clearTimeout(p.timer);
      pending.delete(r.id);
      p.resolve(r);
    }
  };

  const scheduleRestart = (): void => {
    const now = Date.now();
    if (now - lastDeath > RESTART_WINDOW_MS) backoffLevel = 0;
    lastDeath = now;
    deaths = deaths.filter((t) => now - t < RESTART_WINDOW_MS);
    deaths.push(now);
    if (backoffLevel > 0 || deaths.length > FREE_RESTARTS) backoffLevel++;
    const delay = backoffMs();
    restartsTotal.inc();
    if (delay === 0) {
      fork().catch(() => undefined);
      return;
    }
    logger.warn({ restartInMs: delay, deathsLastMinute: deaths.length, serving: serving.size }, 'workers keep dying; restart backed off');
    nextRestartAt = Math.max(nextRestartAt, now + delay);
    const timer = setTimeout(() => {
      restartTimers.delete(timer);
      if (!shuttingDown) fork().catch(() => undefined);
    }, delay);
    restartTimers.add(timer);
  };

  const fork = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork(env);
      workers.add(w);
      w.on('message', (msg: { type?: string }) => {
        if (msg?.type === 'heimdall:ready') {
          catalogue = (msg as ReadyMessage).actions;
          serving.add(w);
          resolve();
        } else if (msg?.type === 'heimdall:admin:res') onReply(msg as WorkerReply);
      });
      w.once('exit', (code, signal) => {
        workers.delete(w);
        serving.delete(w);
        // Requests it will never answer fail now rather than at their timeout.
        for (const [id, p] of pending) {
          if (p.worker !== w) continue;
          clearTimeout(p.timer);
          pending.delete(id);
          p.resolve({ type: 'heimdall:admin:res', id, ok: false, error: { name: 'Error', message: `worker ${w.id} exited before answering` } });
        }
        if (shuttingDown) return;
        if (!started) {
          // A worker that cannot start (address in use, bad plugin) fails the whole start: no restarts.
          shuttingDown = true;
          for (const other of workers) other.process.kill('SIGTERM');
          reject(new WorkerStartError(`worker ${w.id} exited during start (code ${code ?? signal}); see its error above`));
          return;
        }
        logger.error({ worker: w.id, code, signal }, 'worker exited');
        scheduleRestart();
      });
    });

  /** Sends a request to every serving worker; resolves with each one's reply (a timeout is a failed reply). */
  const ask = (make: (id: number) => ActionRequest | ReloadRequest): Promise<Array<{ worker: number; reply: WorkerReply }>> =>
    Promise.all(
      [...serving].map(
        (w) =>
          new Promise<{ worker: number; reply: WorkerReply }>((resolve) => {
            const id = nextId++;
            const done = (reply: WorkerReply): void => resolve({ worker: w.id, reply });
            const timer = setTimeout(() => {
              pending.delete(id);
              done({
                type: 'heimdall:admin:res',
                id,
                ok: false,
                error: { name: 'Error', message: `worker ${w.id} did not answer in ${ASK_TIMEOUT_MS / 1000} s` },
              });
            }, ASK_TIMEOUT_MS);
            const fail = (message: string): void => {
              clearTimeout(timer);
              pending.delete(id);
              done({ type: 'heimdall:admin:res', id, ok: false, error: { name: 'Error', message } });
            };
            pending.set(id, { worker: w, resolve: done, timer });
            if (!w.isConnected()) return fail(`worker ${w.id} is disconnected`);
            w.send(make(id), undefined, (err) => {
              if (err && pending.has(id)) fail(`worker ${w.id}: ${err.message}`);
            });
          }),
      ),
    );

  const run = async (action: ActionInfo, args: Record<string, unknown>): Promise<unknown> => {
    if (serving.size === 0) throw new HttpError(503, 'no worker is serving right now');
    const replies = await ask((id) => ({ type: 'heimdall:admin', id, plugin: action.plugin, action: action.name, args }));
    const failed = replies.find((r) => !r.reply.ok);
    if (failed) {
      const e = failed.reply.error ?? { name: 'Error', message: 'failed' };
      const status = e.statusCode ?? 500;
      // Bad arguments or something absent: every worker says the same, pass it on. Otherwise a 500 (logged with the worker).
      throw Object.assign(new Error(status < 500 ? e.message : `${action.path} failed in worker ${failed.worker}: ${e.name}: ${e.message}`), {
        statusCode: status,
        ...(e.code ? { code: e.code } : {}),
      });
    }
    return combineResults(
      action.combine,
      replies.map((r) => ({ worker: r.worker, result: r.reply.result })),
    );
  };

  let admin: http.Server | undefined;
  const stopAll = async (code = 0): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    for (const t of restartTimers) clearTimeout(t);
    restartTimers.clear();
    logger.info({ workers: workers.size }, 'shutting down: draining workers');
    const exits = [...workers].map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    for (const w of workers) if (w.isConnected()) w.send({ type: 'heimdall:shutdown' }, undefined, () => undefined);
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
  const signals = installSignalHandlers();
  signals.logger = logger;
  signals.handle({
    stop: () => void stopAll(0),
    reload: () => {
      const plan = reread();
      if (plan.logLevel) logger.level = plan.logLevel;
      void ask((id) => ({ type: 'heimdall:reload', id, ...(plan.logLevel ? { logLevel: plan.logLevel } : {}) })).then((r) =>
        logger.info({ workers: r.length, failed: r.filter((x) => !x.reply.ok).length }, 'reload forwarded to workers'),
      );
    },
  });

  if (config.admin.enabled) {
    const aggregator = new AggregatorRegistry();
    const { host, port } = parseHostPort(config.admin.listen, 'admin.listen');
    const backend: AdminBackend = {
      metrics: async () => ({ contentType: aggregator.contentType, body: `${await aggregator.clusterMetrics()}\n${await registry.metrics()}` }),
      ready: () => {
        const workersState = { serving: serving.size, configured: count };
        const restart = restartTimers.size > 0 ? { restartInMs: Math.max(0, nextRestartAt - Date.now()) } : {};
        if (shuttingDown || !started || serving.size === 0) return { ok: false, body: { status: 'not ready', workers: workersState, ...restart } };
        if (serving.size < count) return { ok: true, body: { status: 'degraded', workers: workersState, ...restart } };
        return { ok: true, body: { status: 'ready', workers: workersState } };
      },
      actions: () => catalogue,
      run,
    };
    admin = await startAdmin(backend, { host, port, token: config.admin.token, allowedHosts: config.admin.allowedHosts, logger });
  }
  await Promise.all(Array.from({ length: count }, () => fork()));
  started = true;
  logger.info({ workers: count, listen: config.listen, admin: admin ? adminUrl(admin) : null, pid: process.pid }, 'cluster ready');
  if (admin) dashboardLine(logger, adminUrl(admin), config.admin.token !== undefined);
}
