/**
 * @heimdall/plugin-dedup — coalescing of identical in-flight questions.
 */
export type { DedupOptions } from './options.js';
export { dedup, dedup as default } from './plugin.js';
