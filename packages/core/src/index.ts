/**
 * @heimdall/core — build DNS resolvers out of middleware plugins.
 *
 * The root entry point holds what plugin authors and assemblers use every
 * day (≤ 30 runtime values); the rest lives under subpaths:
 * `@heimdall/core/packet` (codec and code tables), `/wire` (wire toolkit),
 * `/transport` (listeners), `/di` (inversify and DI extras), `/errors`
 * (every error class and the code registry), `/pipeline` (compose, logger
 * and clock helpers, schemas for hosts such as the app).
 */
import 'reflect-metadata';

export { createResolver, type Resolver, type ResolverOptions } from './resolver.js';
export { definePlugin, type PluginDefinition, type PluginParts } from './plugin/define.js';
export { loadPlugin, type LoadPluginOptions } from './plugin/load.js';
export { type OptionsInput, options, parseOptions, type Static, type TSchema, Type } from './plugin/options.js';
export type { HeimdallPlugin, InstanceOptions, PluginFactory, PluginSpec, Provision } from './plugin/types.js';
export type { PluginMetrics } from './plugin/metrics.js';
export { DnsContext, type ExtendedError, type QueryEdns, type ReplyInit } from './pipeline/context.js';
export { BLOCKED, type BlockedInfo, CACHE_RESULT, StateKey, UPSTREAM_USED } from './pipeline/state.js';
export type { ClientInfo, Middleware, Next, TransportKind } from './pipeline/types.js';
export { ConfigError, createError, type HeimdallError, type HeimdallErrorClass } from './errors.js';
export {
  ADMIN_ACTIONS,
  type AdminAction,
  type AdminActions,
  type AdminCombine,
  BLOCKING_CONTROL,
  type BlockingControl,
  type BlockingStatus,
  CACHE_CONTROL,
  CACHE_TIERS,
  type CacheControl,
  type CacheTier,
  CLOCK,
  type Clock,
  type ClockTimer,
  type FlushScope,
  LIFECYCLE,
  type Lifecycle,
  LOGGER,
  type Logger,
  METRICS,
  PLUGIN,
  PLUGIN_LOGGER,
  PLUGIN_METRICS,
  PLUGIN_OPTIONS,
  type PluginInfo,
  type Registry,
  STATE_STORE,
  type StateStore,
  UPSTREAM,
  type Upstream,
  type UpstreamResolveOptions,
} from './tokens.js';
export { EdeCode } from './packet/edecodes.js';
export { Rcode } from './packet/rcodes.js';
export { RecordType } from './packet/types.js';
export type { Message, MessageInit, Question, ResourceRecord, ResourceRecordInit } from './packet/message.js';
