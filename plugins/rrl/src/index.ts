/**
 * @heimdall/plugin-rrl — response rate limiting with BIND's semantics
 * (per client prefix and response class, window, slip, log-only).
 */
export { type RrlLimited, rrl, rrl as default } from './plugin.js';
export type { RrlOptions } from './options.js';
