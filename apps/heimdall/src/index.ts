/**
 * @heimdall/app — the reference resolver as a library: load and validate a
 * configuration, build its plugin chain, run it with the admin server.
 * The `heimdall` command (`dist/cli.js`) is a thin layer over these.
 */
export { type ActionInfo, ActionTable, combineResults, type WorkerResult } from './actions.js';
export { type AdminBackend, type AdminOptions, adminUrl, assertAdminExposure, isLoopback, type ReadyState, startAdmin } from './admin.js';
export { listenOptions, type RunningApp, type StartAppOptions, startApp } from './app.js';
export { type CliArgs, HELP, parseCli } from './args.js';
export {
  type AppConfig,
  AppConfigError,
  appConfigSchema,
  applyOverrides,
  configSchema,
  DEFAULT_UPSTREAMS,
  defaultConfig,
  type HeimdallConfig,
  type Overrides,
  type PluginEntry,
  parseHostPort,
  pluginEntrySchema,
  type ResolvedConfig,
  readConfigFile,
  resolveConfig,
  resolvePluginPaths,
  resolverSettings,
  validateConfig,
} from './config.js';
export { DEFAULT_BUCKETS, type MetricsOptions, metrics, metricsOptionsSchema } from './plugins/metrics.js';
export { type QueryLogLine, type QueryLogOptions, queryLog, queryLogLine, queryLogOptionsSchema } from './plugins/query-log.js';
export { BUILTIN_PLUGINS, type BuiltinPlugin, buildPlugin, buildPlugins, builtinAvailable, builtinFactory, checkPlugins } from './plugins/registry.js';
export { builtinPluginInfo, type PluginSchemaInfo, publishedSchema } from './schema.js';
