/**
 * `@heimdall/core/di` — inversify, re-exported so that third-party plugins
 * bind and inject with the resolver's own copy (two copies of inversify do
 * not share metadata), plus core's DI extras.
 */
import 'reflect-metadata';

export { Container, ContainerModule, type ContainerModuleLoadOptions, inject, injectable, multiInject, optional, type ServiceIdentifier } from 'inversify';
export { CORE_METRICS, RESOLVER } from './resolver.js';
export { MULTI_TOKENS } from './tokens.js';
export { metricsPrefix, PluginMetrics } from './plugin/metrics.js';
