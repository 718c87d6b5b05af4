import { buildTable, parseCode } from './code-table.js';

/** Extended DNS Error info codes (RFC 8914 §4 and the IANA registry). */
export const EdeCode = {
  OTHER: 0,
  UNSUPPORTED_DNSKEY_ALGORITHM: 1,
  UNSUPPORTED_DS_DIGEST_TYPE: 2,
  STALE_ANSWER: 3,
  FORGED_ANSWER: 4,
  DNSSEC_INDETERMINATE: 5,
  DNSSEC_BOGUS: 6,
  SIGNATURE_EXPIRED: 7,
  SIGNATURE_NOT_YET_VALID: 8,
  DNSKEY_MISSING: 9,
  RRSIGS_MISSING: 10,
  NO_ZONE_KEY_BIT_SET: 11,
  NSEC_MISSING: 12,
  CACHED_ERROR: 13,
  NOT_READY: 14,
  BLOCKED: 15,
  CENSORED: 16,
  FILTERED: 17,
  PROHIBITED: 18,
  STALE_NXDOMAIN_ANSWER: 19,
  NOT_AUTHORITATIVE: 20,
  NOT_SUPPORTED: 21,
  NO_REACHABLE_AUTHORITY: 22,
  NETWORK_ERROR: 23,
  INVALID_DATA: 24,
  SIGNATURE_EXPIRED_BEFORE_VALID: 25,
  TOO_EARLY: 26,
  UNSUPPORTED_NSEC3_ITERATIONS: 27,
  UNABLE_TO_CONFORM_TO_POLICY: 28,
  SYNTHESIZED: 29,
  INVALID_QUERY_TYPE: 30,
} as const satisfies Record<string, number>;

const edeTable = buildTable(EdeCode);

/** Mnemonic of an EDE info code, or `EDE<n>` when unknown. */
export function edeCodeToString(code: number): string {
  return edeTable.toName.get(code) ?? `EDE${code}`;
}

/** Number of an EDE info code from its mnemonic or `EDE<n>`; `undefined` if neither matches. */
export function edeCodeFromString(name: string): number | undefined {
  return parseCode(edeTable.fromName, name, 'EDE', 0xffff);
}
