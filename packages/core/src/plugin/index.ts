/**
 * The plugin API: the plugin contract, lifecycle and loading plugins by name.
 */
export { ResolverLifecycle } from './lifecycle.js';
export { type LoadPluginOptions, loadPlugin, loadPlugins } from './load.js';
export { type HeimdallPlugin, isHeimdallPlugin, type PluginFactory, type PluginSpec } from './types.js';
