/**
 * @heimdall/plugin-blocking — block and allow lists at scale (hosts, domains,
 * wildcards, adblock-style, regex), safe with the public suffix list, per
 * client group, with runtime control.
 */
export { DomainTable, DomainTableBuilder, FULL_NAME, TARGET_LOAD } from './domain-table.js';
export {
  DECISION_ALLOWED,
  DECISION_BLOCKED,
  DECISION_NONE,
  type BuildOutput,
  Engine,
  EngineBuilder,
  isPublicSuffix,
  type SourceCounts,
  type SourceSpec,
} from './engine.js';
export { FIXED_SEED, type HashSeed, hashName, randomSeed } from './hash.js';
export { isHostsBoilerplate, isIpLiteral, normalizeDomain } from './normalize.js';
export {
  emptyCounts,
  type ParseCounts,
  type ParseOptions,
  parseLine,
  parseStream,
  parseText,
  RULE_ALLOW,
  RULE_CHILDREN,
  RULE_EXACT,
  RULE_IMPORTANT,
  RULE_PLAIN,
  type RuleSink,
} from './parser.js';
export { checkRegex, DEFAULT_REGEX_LIMITS, type RegexLimits } from './regex-guard.js';
export { NaiveSuffixSet, SortedDomainTable } from './sorted-table.js';
export { blocking, blocking as default } from './plugin.js';
export type { BlockingOptions, GroupOptions, ListOption, ResolvedOptions, ResponseMode } from './options.js';
export { resolveOptions } from './options.js';
export {
  BLOCKING_CONTROL,
  type BlockingControl,
  BlockingService,
  type BlockingStatus,
  type ListStatus,
  MAX_DISABLE_MS,
  type ReloadResult,
} from './service.js';
export { BLOCKING_STATE, type BlockedInfo, createBlockingMiddleware } from './middleware.js';
export { BlockingMetrics, type BlockReason } from './metrics.js';
export { ClientGroups, parseCidr, parseIp } from './groups.js';
export { type BuildContent, BuildError, type BuildInput, buildEngine, buildInWorker } from './build.js';
export { buildFilter } from './domain-table.js';
