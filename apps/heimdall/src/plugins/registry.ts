/**
 * Turns the config's `plugins` list into plugin instances, in order.
 *
 * Built-in names map to the workspace plugin packages (imported lazily, so a
 * chain without blocking never loads it) or to the app's own plugins
 * (`metrics`, `query-log`, `stats`); anything else goes through core's `loadPlugin`
 * (package name or path, resolved from the config file's directory). Every
 * factory gets `{ name, path: 'plugins[i].options' }`, so its errors name
 * the config field (`plugins[2].options.maxTtl: must be an integer in 0..604800`).
 */
import { ConfigError, type HeimdallPlugin, loadPlugin, type PluginFactory } from '@heimdall/core';
import { shareHostPackages } from '@heimdall/core/pipeline';
import type { PluginEntry } from '../config.js';

/** A built-in plugin: its package and how to import it. */
export interface BuiltinPlugin {
  /** Package that holds it (`@heimdall/plugin-cache`; `@heimdall/app` for the app's own). */
  readonly pkg: string;
  /** Imports the module; its default export (or `plugin`) is the factory. */
  load(): Promise<Record<string, unknown>>;
}

type Module = Record<string, unknown>;

/** Built-in plugin name → its package. The order is the docs' and the published schema's. */
export const BUILTIN_PLUGINS: Readonly<Record<string, BuiltinPlugin>> = {
  metrics: { pkg: '@heimdall/app', load: () => import('./metrics.js') as Promise<Module> },
  'query-log': { pkg: '@heimdall/app', load: () => import('./query-log.js') as Promise<Module> },
  stats: { pkg: '@heimdall/app', load: () => import('./stats.js') as Promise<Module> },
  acl: { pkg: '@heimdall/plugin-acl', load: () => import('@heimdall/plugin-acl') as Promise<Module> },
  ratelimit: { pkg: '@heimdall/plugin-ratelimit', load: () => import('@heimdall/plugin-ratelimit') as Promise<Module> },
  rrl: { pkg: '@heimdall/plugin-rrl', load: () => import('@heimdall/plugin-rrl') as Promise<Module> },
  'special-use': { pkg: '@heimdall/plugin-special-use', load: () => import('@heimdall/plugin-special-use') as Promise<Module> },
  blocking: { pkg: '@heimdall/plugin-blocking', load: () => import('@heimdall/plugin-blocking') as Promise<Module> },
  cache: { pkg: '@heimdall/plugin-cache', load: () => import('@heimdall/plugin-cache') as Promise<Module> },
  persistence: { pkg: '@heimdall/plugin-persistence', load: () => import('@heimdall/plugin-persistence') as Promise<Module> },
  redis: { pkg: '@heimdall/plugin-redis', load: () => import('@heimdall/plugin-redis') as Promise<Module> },
  dedup: { pkg: '@heimdall/plugin-dedup', load: () => import('@heimdall/plugin-dedup') as Promise<Module> },
  upstream: { pkg: '@heimdall/plugin-upstream', load: () => import('@heimdall/plugin-upstream') as Promise<Module> },
  rewrite: { pkg: '@heimdall/plugin-rewrite', load: () => import('@heimdall/plugin-rewrite') as Promise<Module> },
};

/** The factory a plugin module exports (default export, or named `plugin`), if any. */
export function factoryOf(mod: Module): PluginFactory | undefined {
  const f = typeof mod.default === 'function' ? mod.default : mod.plugin;
  return typeof f === 'function' ? (f as PluginFactory) : undefined;
}

/**
 * Core's `loadPlugin` for a plugin this app does not ship, which imports the
 * app's own `@heimdall/core`: the host's packages are shared first
 * (`shareHostPackages`). On the first such plugin, not at every start: Node
 * runs module hooks in a thread of its own for the rest of the process (its
 * own heap and garbage collections, on the resolver's cores), which a chain
 * of built-ins does not need.
 */
export function loadThirdParty(...args: Parameters<typeof loadPlugin>): ReturnType<typeof loadPlugin> {
  shareHostPackages(import.meta.url);
  return loadPlugin(...args);
}

/** Imports a built-in plugin's factory. Throws `ConfigError` at `path` (`plugins[2].use`) when this build cannot. */
export async function builtinFactory(name: string, path = 'use'): Promise<PluginFactory> {
  const builtin = BUILTIN_PLUGINS[name];
  if (builtin === undefined) throw new ConfigError(path, `'${name}' is not a built-in plugin`, name);
  let mod: Module;
  try {
    mod = await builtin.load();
  } catch (err) {
    throw new ConfigError(path, `built-in plugin '${name}' (${builtin.pkg}) failed to load: ${(err as Error).message}`, name);
  }
  const factory = factoryOf(mod);
  if (factory === undefined) throw new ConfigError(path, `built-in plugin '${name}' is not available in this build (${builtin.pkg} exports no factory)`, name);
  return factory;
}

/** Whether a built-in plugin's package exports its factory in this build. */
export async function builtinAvailable(name: string): Promise<boolean> {
  try {
    await builtinFactory(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Errors from `definePlugin`'s validator already name the config field, and
 * so do the built-in plugins' own checks (their `setup` is given the config
 * path). Others name the plugin's own (`cache.maxTtl`): a third-party plugin
 * that builds its paths from its name, or a factory not declared with
 * `definePlugin`. Point those at the config field.
 */
function atConfigPath(err: ConfigError, path: string, names: readonly string[]): ConfigError {
  if (err.path.startsWith(path)) return err;
  for (const n of names) {
    if (err.path === n || err.path.startsWith(`${n}.`) || err.path.startsWith(`${n}[`))
      return new ConfigError(`${path}.options${err.path.slice(n.length)}`, err.reason, err.value);
  }
  return new ConfigError(`${path}.options`, err.message, err.value);
}

/** Builds one plugin from its entry (at `plugins[index]`). Throws `ConfigError` naming the field. */
export async function buildPlugin(entry: PluginEntry, index: number, baseDir: string): Promise<HeimdallPlugin> {
  const path = `plugins[${index}]`;
  let plugin: HeimdallPlugin;
  if (BUILTIN_PLUGINS[entry.use] === undefined) {
    try {
      plugin = await loadThirdParty({ use: entry.use, name: entry.name, options: entry.options }, { baseDir, path });
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      // PluginLoadError: the module is missing, fails to import or exports no factory. Its message starts with the path.
      const message = (err as Error).message;
      const prefix = `${path}.use: `;
      throw new ConfigError(`${path}.use`, message.startsWith(prefix) ? message.slice(prefix.length) : message.replace(/^plugins\[\d+\]: /, ''), entry.use);
    }
  } else {
    const factory = await builtinFactory(entry.use, `${path}.use`);
    try {
      plugin = factory(entry.options ?? {}, entry.name === undefined ? { path: `${path}.options` } : { name: entry.name, path: `${path}.options` });
    } catch (err) {
      if (err instanceof ConfigError) throw atConfigPath(err, path, [entry.name ?? entry.use, entry.use]);
      throw new ConfigError(path, `plugin '${entry.use}' rejected its options: ${(err as Error).message}`);
    }
  }
  if (entry.name !== undefined && plugin.name !== entry.name) {
    throw new ConfigError(`${path}.name`, `plugin '${entry.use}' does not take an instance name (it is not declared with definePlugin)`, entry.name);
  }
  CONFIG_PATHS.set(plugin, path);
  return plugin;
}

/** The error for a second plugin under an instance name already taken (at `plugins[first]`). */
function duplicateError(plugin: HeimdallPlugin, entry: PluginEntry, index: number, first: number): ConfigError {
  return new ConfigError(
    entry.name === undefined ? `plugins[${index}]` : `plugins[${index}].name`,
    `instance name '${plugin.name}' is already used by plugins[${first}]; give one of them another "name"`,
    plugin.name,
  );
}

/** Builds the chain (entries with `enabled: false` are skipped), in order. Instance names must be unique. */
export async function buildPlugins(entries: readonly PluginEntry[], baseDir: string): Promise<HeimdallPlugin[]> {
  const out: HeimdallPlugin[] = [];
  const names = new Map<string, number>();
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (entry.enabled === false) continue;
    const plugin = await buildPlugin(entry, i, baseDir);
    const first = names.get(plugin.name);
    if (first !== undefined) throw duplicateError(plugin, entry, i, first);
    names.set(plugin.name, i);
    out.push(plugin);
  }
  return out;
}

/**
 * A plugin's message that names its own option path (`blocking.groups.x…`,
 * from a `check()` problem or a `start()` failure of a plugin that names
 * its paths by instance name or kind, not by the config path it is given) → the config's
 * (`plugins[i].options.groups.x…`). Undefined when the message names neither.
 */
function atOptionPath(message: string, plugin: HeimdallPlugin, path: string): string | undefined {
  for (const n of new Set([plugin.name, plugin.kind ?? plugin.name])) {
    if (message.startsWith(`${n}.`)) return `${path}.options.${message.slice(n.length + 1)}`;
  }
  return undefined;
}

/** A `check()` problem at the config path: `plugins[i].options.groups.x: …`, else `plugins[i] (name): …`. */
function checkMessage(message: string, plugin: HeimdallPlugin, path: string): string {
  if (message.startsWith('plugins[')) return message;
  return atOptionPath(message, plugin, path) ?? `${path} (${plugin.name}): ${message}`;
}

/** Where each plugin built here came from (`plugins[2]`), for {@link startErrorAtConfigPath}. */
const CONFIG_PATHS = new WeakMap<HeimdallPlugin, string>();

/**
 * An error from starting the chain, naming the field as the config file
 * does, the way `heimdall --check` names it: a plugin's `start()` that
 * names its own option path (`blocking.groups.default.block[0]: required
 * list … could not be loaded`) → `plugins[1].options.groups.default.block[0]: …`.
 * The plugin is found by instance name (unique in a chain), else by kind
 * when one plugin of that kind has an entry. The error keeps its class and
 * code; other errors are returned as they are.
 */
export function startErrorAtConfigPath(err: unknown, plugins: readonly HeimdallPlugin[]): unknown {
  if (!(err instanceof Error) || err.message.startsWith('plugins[')) return err;
  const entries = plugins.flatMap((plugin) => {
    const path = CONFIG_PATHS.get(plugin);
    return path === undefined ? [] : [{ plugin, path }];
  });
  const named = entries.find(({ plugin }) => err.message.startsWith(`${plugin.name}.`));
  const byKind = entries.filter(({ plugin }) => err.message.startsWith(`${plugin.kind ?? plugin.name}.`));
  const at = named ?? (byKind.length === 1 ? byKind[0] : undefined);
  if (at === undefined) return err;
  const message = atOptionPath(err.message, at.plugin, at.path);
  if (message === undefined) return err;
  if (err instanceof ConfigError) {
    const path = atOptionPath(err.path, at.plugin, at.path);
    if (path !== undefined) return new ConfigError(path, err.reason, err.value);
  }
  if (typeof err.stack === 'string' && err.stack.includes(err.message)) err.stack = err.stack.replace(err.message, message);
  err.message = message;
  return err;
}

/**
 * `heimdall --check`: builds every enabled plugin (each validates its
 * options with its schema; third-party ones are loaded with core's
 * `loadPlugin`), then runs each plugin's `check()` preflight. Returns every
 * problem found, one message each (empty when the chain would start).
 */
export async function checkPlugins(entries: readonly PluginEntry[], baseDir: string): Promise<string[]> {
  const problems: string[] = [];
  const built: Array<{ plugin: HeimdallPlugin; path: string }> = [];
  const names = new Map<string, number>();
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (entry.enabled === false) continue;
    let plugin: HeimdallPlugin;
    try {
      plugin = await buildPlugin(entry, i, baseDir);
    } catch (err) {
      problems.push((err as Error).message);
      continue;
    }
    const first = names.get(plugin.name);
    if (first !== undefined) problems.push(duplicateError(plugin, entry, i, first).message);
    else names.set(plugin.name, i);
    built.push({ plugin, path: `plugins[${i}]` });
  }
  for (const { plugin, path } of built) {
    if (plugin.check === undefined) continue;
    try {
      for (const message of await plugin.check()) problems.push(checkMessage(message, plugin, path));
    } catch (err) {
      problems.push(`${path} (${plugin.name}): check failed: ${(err as Error).message}`);
    }
  }
  return problems;
}
