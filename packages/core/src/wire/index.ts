/**
 * `@heimdall/core/wire` — the one wire toolkit: name skipping and comparison,
 * the cache/dedup question key, ID/TTL patching, IP and CIDR handling.
 */
export { skipName, wireNamesEqual, nameToWire } from '../packet/name.js';
