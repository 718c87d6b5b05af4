/**
 * @heimdall/plugin-ratelimit — a token bucket per client prefix; excess
 * UDP queries get an empty TC=1 answer (clients retry over TCP) or nothing.
 */
export { ratelimit, ratelimit as default } from './plugin.js';
export type { RatelimitOptions } from './options.js';
export type { LimitedPrefix } from './table.js';
