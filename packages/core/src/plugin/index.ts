/**
 * The plugin API: declaring plugins and their options, the plugin contract,
 * lifecycle and loading plugins by name.
 */
export { definePlugin, type PluginDefinition, type PluginParts } from './define.js';
export { ResolverLifecycle } from './lifecycle.js';
export { type LoadPluginOptions, loadPlugin, loadPlugins } from './load.js';
export { metricsPrefix, PluginMetrics } from './metrics.js';
export { type OptionsInput, options, parseOptions, type Static, type TSchema, toJsonSchema, Type } from './options.js';
export { type HeimdallPlugin, type InstanceOptions, isHeimdallPlugin, type PluginFactory, type PluginSpec, type Provision } from './types.js';
