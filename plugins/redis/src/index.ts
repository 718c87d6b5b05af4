/**
 * @heimdall/plugin-redis — a shared Redis cache tier, shared cache flushes
 * and a shared state store.
 */
export type { RedisOptions } from './options.js';
export { redis, redis as default } from './plugin.js';
