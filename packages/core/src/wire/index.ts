/**
 * `@heimdall/core/wire` — the one wire toolkit: name skipping and comparison,
 * the cache/dedup question key, ID/TTL patching, IP and CIDR handling.
 * Byte-level, allocation-free on the hot paths, no module-level state
 * carrying hidden results: every second result is returned explicitly
 * (packed, or in a caller-owned object).
 */
export {
  checkOffset,
  copyNameLower,
  equalsIgnoreCase,
  LOWER,
  MAX_LABEL_LENGTH,
  MAX_NAME_LENGTH,
  MAX_POINTER_HOPS,
  plainNameEnd,
  skipName,
  trySkipName,
  wireNamesEqual,
} from './name.js';
export { NameCursor, nameBudget, nameToWire, readName } from '../packet/name.js';
export {
  type Cidr,
  cidrContains,
  formatIPv4,
  formatIPv6,
  ipFamily,
  ipToBytes,
  maskBytes,
  parseCidr,
  parseIPv4,
  parseIPv6,
} from './ip.js';
export {
  cacheKeyOf,
  KEY_CD,
  KEY_DO,
  KEY_EDNS,
  keyFlags,
  QuestionKeyInfo,
  queryKeyFlags,
  questionKey,
} from './key.js';
export { copyForQuery, copyWithId, readTtl, setId, writeTtls, writeTtlsAt } from './patch.js';
export { ipv4Value, PrefixKeyer } from './prefix.js';
