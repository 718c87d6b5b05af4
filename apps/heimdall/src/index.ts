/**
 * @heimdall/app — the reference resolver as a library: load and validate a
 * configuration, build its plugin chain, run it with the admin server.
 * The `heimdall` command (`dist/cli.js`) is a thin layer over these.
 */
export { type ActionArgs, type ActionName, BadRequest, BLOCKING_CONTROL_TOKEN, CACHE_STORE_TOKEN, NotAvailable, parseDuration, runAction } from './actions.js';
export { type AdminBackend, type AdminOptions, adminUrl, startAdmin } from './admin.js';
export { listenOptions, type RunningApp, type StartAppOptions, startApp } from './app.js';
export { type CliArgs, HELP, parseCli } from './args.js';
export {
  AppConfigError,
  applyOverrides,
  configSchema,
  DEFAULT_UPSTREAMS,
  defaultConfig,
  type HeimdallConfig,
  type Overrides,
  type PluginEntry,
  parseHostPort,
  pointerToPath,
  type ResolvedConfig,
  readConfigFile,
  resolveConfig,
  resolvePluginPaths,
  validateConfig,
} from './config.js';
export { DEFAULT_BUCKETS, type MetricsOptions, metrics } from './plugins/metrics.js';
export { type QueryLogOptions, queryLog } from './plugins/query-log.js';
export { BUILTIN_PLUGINS, buildPlugin, buildPlugins, builtinAvailable } from './plugins/registry.js';
