/**
 * @heimdall/app — the reference resolver as a library: load and validate a
 * configuration, build its plugin chain, run it with the admin server.
 * The `heimdall` command (`dist/cli.js`) is a thin layer over these.
 *
 * @example
 * const config = resolveConfig('./heimdall.yaml');
 * const app = await startApp(config, { logger });
 * await app.stop();
 */
export type { AdminBackend, AdminOptions, ReadyState } from './admin.js';
export { type RunningApp, type StartAppOptions, startApp } from './app.js';
export {
  type AppConfig,
  appConfigSchema,
  type HeimdallConfig,
  type PluginEntry,
  type ResolvedConfig,
  readConfigFile,
  resolveConfig,
  validateConfig,
} from './config.js';
export { type MetricsOptions, metrics } from './plugins/metrics.js';
export { type QueryLogLine, type QueryLogOptions, queryLog } from './plugins/query-log.js';
export { buildPlugins, checkPlugins } from './plugins/registry.js';
export { type StatsOptions, stats } from './plugins/stats.js';
export { publishedSchema } from './schema.js';
