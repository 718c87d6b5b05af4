/**
 * Turns the config's `plugins` list into plugin instances, in order.
 *
 * Built-in names map to the workspace plugin packages (imported lazily, so a
 * chain without blocking never loads it) or to the app's own plugins
 * (`metrics`, `query-log`); anything else goes through core's `loadPlugin`
 * (package name or path, resolved from the config file's directory).
 */
import { ConfigError, type HeimdallPlugin, loadPlugin, type PluginFactory } from '@heimdall/core';
import { AppConfigError, type PluginEntry } from '../config.js';

type ModuleLoader = () => Promise<Record<string, unknown>>;

/** Built-in plugin name → its module and the export holding the factory. */
export const BUILTIN_PLUGINS: Record<string, { load: ModuleLoader; exportName: string; pkg: string }> = {
  metrics: { load: () => import('./metrics.js') as Promise<Record<string, unknown>>, exportName: 'metrics', pkg: '@heimdall/app' },
  'query-log': { load: () => import('./query-log.js') as Promise<Record<string, unknown>>, exportName: 'queryLog', pkg: '@heimdall/app' },
  'special-use': { load: () => import('@heimdall/plugin-special-use') as Promise<Record<string, unknown>>, exportName: 'specialUse', pkg: '@heimdall/plugin-special-use' },
  blocking: { load: () => import('@heimdall/plugin-blocking') as Promise<Record<string, unknown>>, exportName: 'blocking', pkg: '@heimdall/plugin-blocking' },
  cache: { load: () => import('@heimdall/plugin-cache') as Promise<Record<string, unknown>>, exportName: 'cache', pkg: '@heimdall/plugin-cache' },
  dedup: { load: () => import('@heimdall/plugin-dedup') as Promise<Record<string, unknown>>, exportName: 'dedup', pkg: '@heimdall/plugin-dedup' },
  upstream: { load: () => import('@heimdall/plugin-upstream') as Promise<Record<string, unknown>>, exportName: 'upstream', pkg: '@heimdall/plugin-upstream' },
};

/** Whether a built-in plugin's package exports its factory in this build. */
export async function builtinAvailable(name: string): Promise<boolean> {
  const b = BUILTIN_PLUGINS[name];
  if (!b) return false;
  try {
    const mod = await b.load();
    return typeof (mod.default ?? mod[b.exportName]) === 'function';
  } catch {
    return false;
  }
}

/** Builds one plugin from its entry. Errors name `plugins[i]`. */
export async function buildPlugin(entry: PluginEntry, index: number, baseDir: string): Promise<HeimdallPlugin> {
  const path = `plugins[${index}]`;
  const builtin = BUILTIN_PLUGINS[entry.use];
  if (builtin === undefined) {
    try {
      return await loadPlugin({ use: entry.use, options: entry.options }, { baseDir, path });
    } catch (err) {
      if (err instanceof ConfigError) throw new AppConfigError(err.path, err.message.startsWith(`${err.path}: `) ? err.message.slice(err.path.length + 2) : err.message);
      throw new AppConfigError(`${path}.use`, (err as Error).message.replace(`${path}.use: `, ''));
    }
  }
  let mod: Record<string, unknown>;
  try {
    mod = await builtin.load();
  } catch (err) {
    throw new AppConfigError(`${path}.use`, `built-in plugin '${entry.use}' (${builtin.pkg}) failed to load: ${(err as Error).message}`);
  }
  const factory = (typeof mod[builtin.exportName] === 'function' ? mod[builtin.exportName] : mod.default) as PluginFactory | undefined;
  if (typeof factory !== 'function') {
    throw new AppConfigError(`${path}.use`, `built-in plugin '${entry.use}' is not available in this build (${builtin.pkg} exports no factory yet)`);
  }
  try {
    return factory(entry.options ?? {});
  } catch (err) {
    if (err instanceof ConfigError) {
      // Plugin paths are `cache.maxTtl`; point at the config field: plugins[2].options.maxTtl.
      const inner = err.path.includes('.') ? err.path.slice(err.path.indexOf('.') + 1) : '';
      const reason = err.message.startsWith(`${err.path}: `) ? err.message.slice(err.path.length + 2) : err.message;
      throw new AppConfigError(inner ? `${path}.options.${inner}` : `${path}.options`, reason);
    }
    throw new AppConfigError(path, `plugin '${entry.use}' rejected its options: ${(err as Error).message}`);
  }
}

/** Builds the chain (entries with `enabled: false` are skipped), in order. */
export async function buildPlugins(entries: readonly PluginEntry[], baseDir: string): Promise<HeimdallPlugin[]> {
  const out: HeimdallPlugin[] = [];
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (entry.enabled === false) continue;
    out.push(await buildPlugin(entry, i, baseDir));
  }
  return out;
}
