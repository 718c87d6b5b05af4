#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=4
/**
 * `heimdall` — the reference resolver's command line. See `heimdall --help`
 * and docs/config.md.
 *
 * Exit codes: 0 after a clean shutdown (or --help/--version/--check),
 * 2 for a configuration error (the message names the field), 1 for any other
 * failure at start (e.g. an address already in use).
 *
 * The shebang (and `npm start`) run Node with `--max-semi-space-size=4`: a
 * 4 MB young generation instead of 16 MB keeps ~30 MB less resident under
 * load at the same CPU per query (measured with dnsperf, cache hits, 100k
 * cached entries). Cluster workers inherit the flag.
 *
 * They also set glibc's `MALLOC_MMAP_THRESHOLD_=131072`: a fixed threshold
 * (instead of glibc's dynamic one, which rises after the first big free)
 * keeps every native allocation of 128 KiB or more in its own mapping, so
 * the block-list build worker's large buffers go back to the OS when it
 * exits: about 11 MB less resident at idle with a 100k-entry list (measured:
 * 88.5 → 76.9 MB). Allocations on the query path are far below that size.
 *
 * However it is started, the process turns off V8's allocation-site
 * pretenuring first thing (see {@link tuneV8}).
 */
import process from 'node:process';
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { type Logger, pino } from 'pino';
import { parseCli, HELP } from './args.js';
import { AppConfigError, type Overrides, planReload, type ReloadPlan, type ResolvedConfig, resolveConfig } from './config.js';
import { startApp } from './app.js';
import { BUILTIN_PLUGINS, builtinAvailable, checkPlugins } from './plugins/registry.js';
import { isWorker, runPrimary, runWorker, workerCount } from './cluster.js';
import { configPluginInfo, renderSchema } from './schema.js';
import { installSignalHandlers } from './signals.js';

/**
 * SIGHUP: re-reads the config file (when there is one). A file that no
 * longer validates is reported and ignored; a new `logLevel` applies at
 * once; other changes are reported as needing a restart (listeners and the
 * chain cannot be swapped safely under load). The caller runs the chain's
 * `reload` admin actions either way.
 */
export function rereadConfig(file: string | undefined, overrides: Overrides, running: ResolvedConfig, logger: Logger): ReloadPlan {
  if (file === undefined) return { needsRestart: [] };
  try {
    const next = resolveConfig(file, overrides);
    const plan = planReload(running, next);
    if (plan.logLevel) {
      logger.info({ from: running.logLevel, to: plan.logLevel }, 'log level changed');
      running.logLevel = plan.logLevel;
    }
    if (plan.needsRestart.length > 0) logger.warn({ fields: plan.needsRestart }, 'config file changed in fields that need a restart; not applied');
    return plan;
  } catch (err) {
    logger.error({ error: (err as Error).message }, 'config file reload failed; keeping the running configuration');
    return { needsRestart: [] };
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * Turns off V8's allocation-site pretenuring. V8 watches how many objects
 * made by each object or array literal survive young-generation
 * collections; once most do, it allocates every later object of that
 * literal straight in the old generation, freed only by a full
 * mark-compact. A resolver's objects for a query sent upstream survive
 * (they wait on the network), and the same literals then keep allocating
 * their short-lived objects in the old generation. Measured with
 * `bench/load/gc-mix.ts` (20k QPS, one query in ten a cache miss, 5 s): the
 * heap grew 370 KB per scavenge with 3 mark-compacts of 5–6 ms, against
 * 153 KB and none without pretenuring; the cache-hit runs before and after
 * were unchanged. Set here rather than in the shebang so that `node
 * dist/cli.js`, the shebang and cluster workers all get it; the flag only
 * steers decisions V8 takes at each collection, so setting it after start
 * is safe.
 */
export function tuneV8(): void {
  v8.setFlagsFromString('--no-allocation-site-pretenuring');
}

async function main(): Promise<void> {
  tuneV8();
  // First: a signal during start must find a handler (SIGHUP's default would end the process).
  const signals = installSignalHandlers();
  if (isWorker()) {
    const config = JSON.parse(process.env.HEIMDALL_WORKER_CONFIG!) as { logLevel: string };
    await runWorker(pino({ name: 'heimdall', level: config.logLevel }));
    return;
  }
  const args = parseCli(process.argv.slice(2), process.env);
  if (args.help) {
    process.stdout.write(HELP);
    return;
  }
  if (args.version) {
    process.stdout.write(`heimdall ${version()} (node ${process.version})\n`);
    return;
  }
  const config = resolveConfig(args.config, args.overrides);
  if (args.printSchema) {
    // The published schema, plus a branch for each third-party plugin the config names (loaded as the app loads it).
    process.stdout.write(renderSchema(await configPluginInfo(config.plugins, config.baseDir)));
    return;
  }
  const logger = pino({ name: 'heimdall', level: args.check ? 'error' : config.logLevel });
  signals.logger = logger;
  if (args.config === undefined) {
    // The embedded default names every built-in; leave out one this build lacks rather than refuse to start.
    const kept = [];
    for (const entry of config.plugins) {
      if (BUILTIN_PLUGINS[entry.use] === undefined || (await builtinAvailable(entry.use))) kept.push(entry);
      else logger.warn({ plugin: entry.use }, 'built-in plugin not available in this build; left out of the default chain');
    }
    config.plugins = kept;
  }
  if (args.check) {
    // Every plugin validates its options against its schema, then runs its check() preflight; every problem is printed.
    const problems = await checkPlugins(config.plugins, config.baseDir);
    if (problems.length > 0) {
      process.stderr.write(problems.map((p) => `heimdall: config error: ${p}\n`).join(''));
      process.exitCode = 2;
      return;
    }
    process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    return;
  }
  if (workerCount(config.workers) > 1) {
    await runPrimary(config, logger, () => rereadConfig(args.config, args.overrides, config, logger));
    return;
  }
  const app = await startApp(config, { logger });
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: draining in-flight queries');
    try {
      await app.stop();
      logger.info('stopped');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'error while stopping');
      process.exit(1);
    }
  };
  signals.handle({
    stop: (signal) => void stop(signal),
    reload: () => {
      const plan = rereadConfig(args.config, args.overrides, config, logger);
      if (plan.logLevel) logger.level = plan.logLevel;
      app.reload().catch((err) => logger.error({ err }, 'reload failed'));
    },
  });
}

main().catch((err: unknown) => {
  if (err instanceof AppConfigError || (err as { code?: string })?.code === 'CONFIG') {
    process.stderr.write(`heimdall: config error: ${(err as Error).message}\n`);
    process.exit(2);
  }
  // Core's errors (ListenError, PluginLoadError, …) carry a stable code and a complete message; others get their stack.
  const known = typeof (err as { code?: unknown })?.code === 'string' && (err as Error).name !== 'Error';
  process.stderr.write(`heimdall: ${known ? `${(err as Error).name}: ${(err as Error).message}` : ((err as Error)?.stack ?? String(err))}\n`);
  process.exit(1);
});
