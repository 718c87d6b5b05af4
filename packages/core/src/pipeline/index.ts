/**
 * `@heimdall/core/pipeline` — the pieces a host (the reference app, an
 * embedder, the testing kit) needs beyond the root entry point: compose,
 * the response helpers, core's metrics, clock and logger helpers, schemas.
 */
export { type ComposedMiddleware, compose, errorOrigin, type NamedMiddleware } from './compose.js';
export { type ContextEnv, headerOnlyResponse, withEde } from './context.js';
export { CoreMetrics, type DropReason } from './metrics.js';
export { systemClock } from '../util/clock.js';
export { CoarseClock, TICK_MS } from '../util/coarse-clock.js';
export { Deadline, Deadlines } from '../util/deadlines.js';
export { LogThrottle } from '../util/log-throttle.js';
export { type LimiterActionsSource, type LimiterActionsText, limiterActions } from '../util/limiter-actions.js';
export { createLogger, silentLogger } from '../util/logger.js';
export { toJsonSchema } from '../plugin/options.js';
export { resolverSettingsSchema } from '../resolver.js';
export { isHeimdallPlugin } from '../plugin/types.js';
export { loadPlugins, shareHostPackages } from '../plugin/load.js';
export { ResolverLifecycle } from '../plugin/lifecycle.js';
