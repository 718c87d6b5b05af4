/**
 * @heimdall/core — DNS packet codec, request pipeline, plugin API with
 * dependency injection, and transports.
 */
import 'reflect-metadata';

export * from './packet/index.js';
export * from './tokens.js';
export * from './pipeline/types.js';
export * from './errors.js';
export { compose, errorOrigin, type NamedMiddleware, type ComposedMiddleware } from './pipeline/compose.js';
export * from './plugin/index.js';
export { systemClock } from './util/clock.js';
export { createLogger, silentLogger } from './util/logger.js';
export { DnsContext, headerOnlyResponse, withEde, type ContextEnv, type ExtendedError, type QueryEdns, type ReplyInit } from './pipeline/context.js';
export { CoreMetrics, type DropReason } from './pipeline/metrics.js';
export * from './transport/index.js';
export { createResolver, CORE_METRICS, RESOLVER, type Resolver, type ResolverOptions } from './resolver.js';
/**
 * inversify, re-exported so that third-party plugins bind and inject with the
 * resolver's own copy (two copies of inversify do not share metadata).
 */
export { Container, ContainerModule, type ContainerModuleLoadOptions, inject, injectable, optional } from 'inversify';
export { type NumberBounds, OptionsReader } from './util/options.js';
