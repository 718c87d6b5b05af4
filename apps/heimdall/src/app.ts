/**
 * Running the reference resolver in this process: build the chain from the
 * config, start the resolver on every listen address (UDP and TCP), and
 * optionally the admin HTTP server.
 */
import process from 'node:process';
import type http from 'node:http';
import { createResolver, type HeimdallPlugin, type Resolver } from '@heimdall/core';
import { type ListenOptions, withCertificateFields } from '@heimdall/core/transport';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Logger } from 'pino';
import { ActionTable } from './actions.js';
import { adminUrl, assertAdminExposure, startAdmin } from './admin.js';
import { dashboardLine } from './dashboard.js';
import { OBSERVER_PLUGINS, parseHostPort, type ResolvedConfig, resolverSettings } from './config.js';
import { buildPlugins, builtinFactory, startErrorAtConfigPath } from './plugins/registry.js';

/** A started app (one process). */
export interface RunningApp {
  readonly resolver: Resolver;
  /** Admin server, when enabled and this process runs it. */
  readonly admin: http.Server | undefined;
  /** Prometheus registry of this process: the resolver's metrics (+ process metrics when enabled). */
  readonly registry: Registry;
  /** Whether the resolver serves (false before start and while draining). */
  ready(): boolean;
  /** The admin actions the chain contributes (core's `ADMIN_ACTIONS`), mounted by the admin server. */
  readonly actions: ActionTable;
  /** SIGHUP: runs every contributed admin action named `reload`, and re-reads the DoT/DoH certificate files. */
  reload(): Promise<void>;
  /** Graceful stop: admin closed, queries drained (bounded), plugins stopped. Idempotent. */
  stop(): Promise<void>;
}

const DOT_FIELDS = Object.freeze({ cert: 'dot.cert', key: 'dot.key' });
const DOH_FIELDS = Object.freeze({ cert: 'doh.cert', key: 'doh.key' });

/** Turns `listen` + `transports` + per-transport limits into core's listener options. */
export function listenOptions(config: ResolvedConfig, reuse = false): ListenOptions[] {
  const out: ListenOptions[] = [];
  config.listen.forEach((l, i) => {
    const { host, port } = parseHostPort(l, `listen[${i}]`);
    for (const t of config.transports) {
      // Cluster workers: SO_REUSEPORT where Node has it (each worker its own
      // socket, the kernel balances), else the primary's shared handle.
      if (t === 'udp') out.push({ transport: 'udp', address: host, port, ...config.udp, ...(reuse ? { reuseAddr: true, reusePort: true } : {}) });
      else out.push({ transport: 'tcp', address: host, port, ...config.tcp, ...(reuse ? { reusePort: true } : {}) });
    }
  });
  // Encrypted listeners (DoT, DoH): `dot.listen` / `doh.listen` with their sections' settings.
  // Certificate errors (at start and on reload) name the section's `cert`/`key`, not core's `listen[i]`.
  const { listen: dot, ...tlsSettings } = config.dot;
  dot.forEach((l, i) => {
    const { host, port } = parseHostPort(l, `dot.listen[${i}]`);
    out.push(withCertificateFields({ transport: 'tls', address: host, port, ...tlsSettings, ...(reuse ? { reusePort: true } : {}) }, DOT_FIELDS));
  });
  const { listen: doh, ...httpsSettings } = config.doh;
  doh.forEach((l, i) => {
    const { host, port } = parseHostPort(l, `doh.listen[${i}]`);
    out.push(withCertificateFields({ transport: 'https', address: host, port, ...httpsSettings, ...(reuse ? { reusePort: true } : {}) }, DOH_FIELDS));
  });
  return out;
}

/**
 * Not an open resolver by default (dnsmasq's local-service): unless
 * `openResolver` is set or the chain has an acl of its own, an `acl` with
 * the `localOnly` preset goes first after the observers (metrics,
 * query-log, stats). It logs at start that the resolver is not open.
 */
export async function addDefaultAcl(plugins: HeimdallPlugin[], config: Pick<ResolvedConfig, 'openResolver'>, announce = true): Promise<void> {
  if (config.openResolver || plugins.some((p) => (p.kind ?? p.name) === 'acl')) return;
  let at = 0;
  while (at < plugins.length && OBSERVER_PLUGINS.has(plugins[at]!.kind ?? plugins[at]!.name)) at++;
  plugins.splice(at, 0, (await builtinFactory('acl'))({ preset: 'localOnly', announce }));
}

/** Options of {@link startApp}. */
export interface StartAppOptions {
  logger: Logger;
  /** Start the admin server here (false in cluster workers: the primary serves it). Default true. */
  withAdmin?: boolean;
  /** Cluster worker: share sockets. */
  worker?: boolean;
  /** Log the once-per-deployment start lines (that the resolver is not open). False in all cluster workers but the first. Default true. */
  announce?: boolean;
}

/** Builds and starts the resolver (and admin server) described by `config`. */
export async function startApp(config: ResolvedConfig, options: StartAppOptions): Promise<RunningApp> {
  const { logger } = options;
  const withAdmin = options.withAdmin !== false && config.admin.enabled;
  const adminAt = withAdmin ? parseHostPort(config.admin.listen, 'admin.listen') : undefined;
  if (adminAt) assertAdminExposure(adminAt.host, config.admin.token);
  const plugins = await buildPlugins(config.plugins, config.baseDir);
  await addDefaultAcl(plugins, config, options.announce !== false);
  const registry = new Registry();
  if (config.admin.collectDefaultMetrics) collectDefaultMetrics({ register: registry });
  const resolver = createResolver({
    plugins,
    listen: listenOptions(config, options.worker === true),
    logger,
    metrics: registry,
    ...resolverSettings(config), // queryTimeoutMs, drainTimeoutMs, ednsPayloadSize, onUnanswered, … as core declares them
  });
  let serving = false;
  let stopping: Promise<void> | undefined;
  const actions = ActionTable.of(resolver, logger);
  try {
    await resolver.start();
  } catch (err) {
    // A plugin's start error names the field as the config file does (`plugins[1].options.groups.default.block[0]`), as `--check` does.
    throw startErrorAtConfigPath(err, plugins);
  }
  serving = true;

  const app: RunningApp = {
    resolver,
    admin: undefined,
    registry,
    ready: () => serving,
    actions,
    reload: async () => {
      // A failed certificate reload keeps the current pair (and is logged by core).
      await Promise.all([actions.reloadAll(logger), resolver.reloadCertificates().catch(() => undefined)]);
    },
    stop() {
      stopping ??= (async () => {
        // /ready answers 503 while the resolver drains; the admin server closes last.
        serving = false;
        try {
          await resolver.stop();
        } finally {
          if (app.admin) {
            const closed = new Promise<void>((resolve) => app.admin!.close(() => resolve()));
            app.admin.closeAllConnections();
            await closed;
          }
        }
      })();
      return stopping;
    },
  };

  if (adminAt) {
    try {
      (app as { admin: http.Server | undefined }).admin = await startAdmin(
        {
          metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
          ready: () => ({ ok: serving, body: { status: serving ? 'ready' : 'not ready' } }),
          actions: () => actions.list,
          run: (action, args) => actions.run(action.plugin, action.name, args),
        },
        { ...adminAt, token: config.admin.token, allowedHosts: config.admin.allowedHosts, logger },
      );
    } catch (err) {
      await resolver.stop();
      throw err;
    }
  }
  logger.info(
    {
      addresses: resolver.addresses().map((a) => `${a.transport}://${a.family === 6 ? `[${a.address}]` : a.address}:${a.port}`),
      admin: app.admin ? adminUrl(app.admin) : null,
      chain: resolver.chain,
      pid: process.pid,
    },
    'listening',
  );
  if (app.admin) dashboardLine(logger, adminUrl(app.admin), config.admin.token !== undefined);
  return app;
}
