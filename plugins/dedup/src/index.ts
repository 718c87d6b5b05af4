/**
 * @heimdall/plugin-dedup — coalescing of identical in-flight questions.
 */
export { DEDUP_DEFAULTS, type DedupOptions, DedupStats, Deduplicator, type ResolvedDedupOptions, resolveDedupOptions } from './dedup.js';
export { DEDUP, dedup, dedup as default } from './plugin.js';
