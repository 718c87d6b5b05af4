/**
 * Domain-name normalisation for list entries: lowercase, trailing dot removed,
 * internationalised names converted to punycode (`url.domainToASCII`), label
 * and name lengths validated (RFC 1035 §2.3.4: labels ≤ 63 octets, names ≤ 255
 * octets on the wire, i.e. ≤ 253 characters in presentation form).
 */
import { domainToASCII } from 'node:url';

/** Longest name in presentation form without the trailing dot. */
export const MAX_NAME_LENGTH = 253;
/** Longest label. */
export const MAX_LABEL_LENGTH = 63;

/**
 * Normalises a list entry to the form the domain set stores. Returns `null`
 * when the text is not a usable domain name (empty labels, bad characters,
 * too long, a numeric top-level label such as an IPv4 address).
 *
 * Accepted characters after folding: `a-z 0-9 - _ .`. Underscores are allowed
 * because real names use them (`_dmarc`, tracking hosts such as
 * `ad_server.example`); anything else outside ASCII goes through IDNA.
 *
 * Cost: one pass over the string; no allocation for names that are already
 * lowercase ASCII without a trailing dot.
 */
export function normalizeDomain(input: string): string | null {
  let s = input;
  let len = s.length;
  if (len === 0 || len > 1024) return null;
  if (s.charCodeAt(len - 1) === 0x2e) {
    s = s.slice(0, len - 1);
    len--;
    if (len === 0) return null;
  }
  if (len > MAX_NAME_LENGTH) {
    // IDNA mapping can shorten a name (full-width characters, ignored code points): let it decide.
    for (let i = 0; i < len; i++) if (s.charCodeAt(i) >= 0x80) return normalizeIdn(s);
    return null;
  }
  // One pass: characters, label lengths, numeric last label.
  let upper = false;
  let labelStart = 0;
  let numeric = true;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) {
      numeric = false;
      continue;
    }
    if (c === 0x2e) {
      const l = i - labelStart;
      if (l === 0 || l > MAX_LABEL_LENGTH) return null;
      labelStart = i + 1;
      numeric = true;
      continue;
    }
    if (c >= 0x30 && c <= 0x39) continue;
    if (c === 0x2d || c === 0x5f) {
      numeric = false;
      continue;
    }
    if (c >= 0x41 && c <= 0x5a) {
      upper = true;
      numeric = false;
      continue;
    }
    if (c >= 0x80) return normalizeIdn(s);
    return null;
  }
  const last = len - labelStart;
  // No top-level domain is all digits: this rejects IPv4 literals (`0.0.0.0`).
  if (last === 0 || last > MAX_LABEL_LENGTH || numeric) return null;
  return upper ? s.toLowerCase() : s;
}

function normalizeIdn(s: string): string | null {
  // domainToASCII applies UTS #46 mapping (case folding, width folding) and
  // returns '' for names it cannot convert.
  const ascii = domainToASCII(s);
  if (ascii === '' || ascii.length > 1024) return null;
  const t = ascii.charCodeAt(ascii.length - 1) === 0x2e ? ascii.slice(0, -1) : ascii;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f) continue;
    return null;
  }
  return validateAscii(t) ? t : null;
}

/** Label/name length checks on a lowercase ASCII name without trailing dot. */
function validateAscii(s: string): boolean {
  const len = s.length;
  if (len === 0 || len > MAX_NAME_LENGTH) return false;
  let labelStart = 0;
  let lastLabelNumeric = true;
  for (let i = 0; i <= len; i++) {
    const c = i === len ? 0x2e : s.charCodeAt(i);
    if (c === 0x2e) {
      const l = i - labelStart;
      if (l === 0 || l > MAX_LABEL_LENGTH) return false;
      labelStart = i + 1;
      if (i < len) lastLabelNumeric = true;
    } else if (c < 0x30 || c > 0x39) {
      lastLabelNumeric = false;
    }
  }
  // No top-level domain is all digits: this rejects IPv4 literals (`0.0.0.0`).
  return !lastLabelNumeric;
}

/** True when `s` looks like an IPv4 or IPv6 address (first token of a hosts line). */
export function isIpLiteral(s: string): boolean {
  const len = s.length;
  if (len === 0 || len > 45) return false;
  let colon = false;
  let dots = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x3a) colon = true;
    else if (c === 0x2e) dots++;
    else if (c === 0x25)
      return colon; // zone id (fe80::1%lo0)
    else if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46))) return false;
  }
  if (colon) return true;
  if (dots !== 3) return false;
  // Dotted quad: four runs of 1–3 digits, each ≤ 255 (no allocation).
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= len; i++) {
    const c = i === len ? 0x2e : s.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || value > 255) return false;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (++digits > 3) return false;
      value = value * 10 + (c - 0x30);
    } else {
      return false;
    }
  }
  return true;
}

/** Names that hosts files map for the local machine; never blocked, counted as ignored. */
export function isHostsBoilerplate(name: string): boolean {
  switch (name) {
    case 'localhost':
    case 'localhost.localdomain':
    case 'local':
    case 'broadcasthost':
    case 'localdomain':
    case 'ip6-localhost':
    case 'ip6-loopback':
    case '0.0.0.0':
      return true;
  }
  return name.startsWith('ip6-');
}
