/**
 * List-line parser. The format is detected per line, so one file may mix
 * hosts lines, plain domains, wildcards, adblock-style rules and regexes:
 *
 * | line                              | meaning                                      |
 * |-----------------------------------|----------------------------------------------|
 * | `# …`, `! …`, `[Adblock Plus 2.0]`| comment                                      |
 * | `0.0.0.0 a.example b.example # x` | hosts: every name after the address          |
 * | `ads.example`                     | the name and (unless exact-only) subdomains  |
 * | `*.ads.example`                   | subdomains of `ads.example`, not itself      |
 * | `\|\|ads.example^`                | the name and its subdomains                  |
 * | `\|ads.example^`                  | exactly the name                             |
 * | `@@\|\|ads.example^`              | exception (allow)                            |
 * | `\|\|ads.example^$important`      | block that beats exceptions                  |
 * | `/^ad[0-9]+\./`                   | regular expression over the lowercase name   |
 *
 * Cosmetic rules (`##`, `#@#`, `#$#`), URL-path rules and rules with modifiers
 * other than `$important` are counted as unsupported. Anything else that does
 * not parse is counted as invalid. Nothing throws.
 */
import { isHostsBoilerplate, isIpLiteral, normalizeDomain } from './normalize.js';
import { checkRegex, DEFAULT_REGEX_LIMITS, type RegexLimits } from './regex-guard.js';

/** The entry allows instead of blocking (`@@` exception or an allow list). */
export const RULE_ALLOW = 1;
/** `$important`: a block that wins over exceptions. */
export const RULE_IMPORTANT = 2;
/** The entry matches the listed name itself. */
export const RULE_EXACT = 4;
/** The entry matches strict subdomains of the listed name. */
export const RULE_CHILDREN = 8;
/** The entry came from a hosts or plain-domain line (subject to a list's exact-only switch). */
export const RULE_PLAIN = 16;

/** Where parsed rules go. The parser calls these; it never allocates a rule object. */
export interface RuleSink {
  /** A normalised domain (lowercase ASCII, no trailing dot) with `RULE_*` flags. */
  domain(name: string, flags: number): void;
  /** A regex source that passed the guard, with `RULE_ALLOW`/`RULE_IMPORTANT` flags. */
  regex(source: string, flags: number): void;
}

/** Per-source line counters. */
export interface ParseCounts {
  /** Lines read (including blank and comment lines). */
  lines: number;
  /** Domain rules emitted (a hosts line with three names counts three). */
  domains: number;
  /** Regex rules emitted. */
  regexes: number;
  /** Blank and comment lines. */
  comments: number;
  /** Lines (or names on a hosts line) that could not be parsed. */
  invalid: number;
  /** Well-formed rules this DNS filter cannot apply (cosmetic, URL paths, unknown modifiers). */
  unsupported: number;
  /** Hosts boilerplate (`localhost`, `broadcasthost`, `ip6-*` …) skipped on purpose. */
  ignored: number;
}

/** Fresh zeroed counters. */
export function emptyCounts(): ParseCounts {
  return { lines: 0, domains: 0, regexes: 0, comments: 0, invalid: 0, unsupported: 0, ignored: 0 };
}

/** Parser options. */
export interface ParseOptions {
  regex?: RegexLimits;
  /** Lines longer than this are invalid without being looked at. Default 4096. */
  maxLineLength?: number;
  /** Called with the first few invalid lines (for a warning log); bounded by the caller. */
  onInvalid?: (line: string, reason: string) => void;
}

const WS = (c: number) => c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0b || c === 0x0c;

/**
 * Parses one line and reports what it found to `sink`, updating `counts`.
 * Never throws for any input string.
 */
export function parseLine(raw: string, sink: RuleSink, counts: ParseCounts, options: ParseOptions = {}): void {
  counts.lines++;
  const maxLine = options.maxLineLength ?? 4096;
  if (raw.length > maxLine) {
    counts.invalid++;
    options.onInvalid?.(raw.slice(0, 80), 'line too long');
    return;
  }
  // Trim without allocating when there is nothing to trim.
  let start = 0;
  let end = raw.length;
  while (start < end && WS(raw.charCodeAt(start))) start++;
  while (end > start && WS(raw.charCodeAt(end - 1))) end--;
  if (start === end) {
    counts.comments++;
    return;
  }
  const c0 = raw.charCodeAt(start);
  if (c0 === 0x23 /* # */ || c0 === 0x21 /* ! */ || (c0 === 0x5b /* [ */ && raw.charCodeAt(end - 1) === 0x5d)) {
    counts.comments++;
    return;
  }
  const line = start === 0 && end === raw.length ? raw : raw.slice(start, end);
  if (c0 === 0x7c /* | */ || c0 === 0x40 /* @ */) {
    parseAdblock(line, sink, counts, options);
    return;
  }
  if (c0 === 0x2f /* / */) {
    parseRegex(line, 0, sink, counts, options);
    return;
  }
  // Cosmetic rules anywhere on the line: example.com##.banner, #@#, #$#, #?#
  const hashHash = line.indexOf('#');
  if (hashHash > 0) {
    const n = line.charCodeAt(hashHash + 1);
    if (n === 0x23 || n === 0x40 || n === 0x24 || n === 0x3f || n === 0x25) {
      counts.unsupported++;
      return;
    }
  }
  // Fast path for the usual hosts prefixes.
  if (c0 === 0x30 && line.startsWith('0.0.0.0') && WS(line.charCodeAt(7))) {
    if (parseHostsNames(line, 8, sink, counts, options) === 0) hostsWithoutName(line, counts, options);
    return;
  }
  if (c0 === 0x31 && line.startsWith('127.0.0.1') && WS(line.charCodeAt(9))) {
    if (parseHostsNames(line, 10, sink, counts, options) === 0) hostsWithoutName(line, counts, options);
    return;
  }
  // Find the first token.
  let i = 0;
  const len = line.length;
  while (i < len && !WS(line.charCodeAt(i)) && line.charCodeAt(i) !== 0x23) i++;
  const first = i === len ? line : line.slice(0, i);
  // Rest of the line up to an inline comment.
  while (i < len && WS(line.charCodeAt(i))) i++;
  const restEmpty = i >= len || line.charCodeAt(i) === 0x23;
  if (isIpLiteral(first)) {
    if (restEmpty) {
      counts.invalid++;
      options.onInvalid?.(line, 'hosts line without a name');
      return;
    }
    parseHostsNames(line, i, sink, counts, options);
    return;
  }
  if (!restEmpty) {
    counts.invalid++;
    options.onInvalid?.(line, 'unexpected text after the name');
    return;
  }
  emitName(first, RULE_EXACT | RULE_CHILDREN | RULE_PLAIN, sink, counts, options, false);
}

function hostsWithoutName(line: string, counts: ParseCounts, options: ParseOptions): void {
  counts.invalid++;
  options.onInvalid?.(line, 'hosts line without a name');
}

/** Emits every name after the address; returns how many tokens there were. */
function parseHostsNames(line: string, i: number, sink: RuleSink, counts: ParseCounts, options: ParseOptions): number {
  const len = line.length;
  let tokens = 0;
  while (i < len) {
    const c = line.charCodeAt(i);
    if (c === 0x23) return tokens; // inline comment
    if (WS(c)) {
      i++;
      continue;
    }
    let j = i;
    while (j < len && !WS(line.charCodeAt(j)) && line.charCodeAt(j) !== 0x23) j++;
    emitName(line.slice(i, j), RULE_EXACT | RULE_CHILDREN | RULE_PLAIN, sink, counts, options, true);
    tokens++;
    i = j;
  }
  return tokens;
}

function emitName(token: string, flags: number, sink: RuleSink, counts: ParseCounts, options: ParseOptions, hosts: boolean): void {
  let name = token;
  let f = flags;
  if (name.charCodeAt(0) === 0x2a /* * */) {
    if (name.charCodeAt(1) !== 0x2e || name.length < 3) {
      counts.invalid++;
      options.onInvalid?.(token, 'wildcard must be *.domain');
      return;
    }
    name = name.slice(2);
    f = (f & ~(RULE_EXACT | RULE_PLAIN)) | RULE_CHILDREN;
  }
  const n = normalizeDomain(name);
  if (n === null) {
    if (hosts && isIpLiteral(name)) {
      counts.ignored++;
      return;
    }
    counts.invalid++;
    options.onInvalid?.(token, 'not a valid domain name');
    return;
  }
  if (hosts && isHostsBoilerplate(n)) {
    counts.ignored++;
    return;
  }
  counts.domains++;
  sink.domain(n, f);
}

const SUPPORTED_MODIFIERS = new Set(['important']);

function parseAdblock(line: string, sink: RuleSink, counts: ParseCounts, options: ParseOptions): void {
  let i = 0;
  let flags = 0;
  if (line.startsWith('@@')) {
    flags |= RULE_ALLOW;
    i = 2;
  }
  if (line.charCodeAt(i) === 0x2f /* / */) {
    parseRegex(line, i, sink, counts, options, flags);
    return;
  }
  if (line.startsWith('||', i)) {
    flags |= RULE_EXACT | RULE_CHILDREN;
    i += 2;
  } else if (line.charCodeAt(i) === 0x7c) {
    flags |= RULE_EXACT;
    i += 1;
  } else {
    // `@@example.com` and other unanchored patterns match substrings of URLs.
    counts.unsupported++;
    return;
  }
  // Domain runs until ^, |, $ or the end.
  const len = line.length;
  let j = i;
  while (j < len) {
    const c = line.charCodeAt(j);
    if (c === 0x5e || c === 0x24 || c === 0x7c) break;
    if (c === 0x2f || c === 0x2a || c === 0x3a || c === 0x3f || c === 0x3d || c === 0x26) {
      // URL path, port, query or wildcard inside: not a DNS rule.
      counts.unsupported++;
      return;
    }
    j++;
  }
  const domain = line.slice(i, j);
  if (j < len && line.charCodeAt(j) === 0x5e) j++;
  if (j < len && line.charCodeAt(j) === 0x7c) j++;
  if (j < len) {
    if (line.charCodeAt(j) !== 0x24) {
      counts.unsupported++;
      return;
    }
    const mods = line.slice(j + 1).split(',');
    for (const m of mods) {
      const mod = m.trim().toLowerCase();
      if (!SUPPORTED_MODIFIERS.has(mod)) {
        counts.unsupported++;
        return;
      }
      if (mod === 'important') flags |= RULE_IMPORTANT;
    }
  }
  if ((flags & (RULE_ALLOW | RULE_IMPORTANT)) === (RULE_ALLOW | RULE_IMPORTANT)) {
    // `@@…$important` is meaningful in browsers (exception beating an important rule);
    // for DNS an important exception is just an exception.
    flags &= ~RULE_IMPORTANT;
  }
  if (domain.length === 0) {
    counts.invalid++;
    options.onInvalid?.(line, 'empty domain');
    return;
  }
  emitName(domain, flags, sink, counts, options, false);
}

function parseRegex(line: string, at: number, sink: RuleSink, counts: ParseCounts, options: ParseOptions, flags = 0): void {
  // /pattern/ optionally followed by $important
  let end = line.length;
  let f = flags;
  const dollar = line.lastIndexOf('/$');
  if (dollar > at) {
    const mods = line.slice(dollar + 2).split(',');
    for (const m of mods) {
      const mod = m.trim().toLowerCase();
      if (!SUPPORTED_MODIFIERS.has(mod)) {
        counts.unsupported++;
        return;
      }
      if (mod === 'important' && (f & RULE_ALLOW) === 0) f |= RULE_IMPORTANT;
    }
    end = dollar + 1;
  }
  if (end - at < 3 || line.charCodeAt(end - 1) !== 0x2f) {
    counts.invalid++;
    options.onInvalid?.(line, 'a regex rule is /pattern/');
    return;
  }
  const source = line.slice(at + 1, end - 1);
  const why = checkRegex(source, options.regex ?? DEFAULT_REGEX_LIMITS);
  if (why !== null) {
    counts.invalid++;
    options.onInvalid?.(line, why);
    return;
  }
  counts.regexes++;
  sink.regex(source, f);
}

/**
 * Parses a whole text (already decoded) line by line. Splits on `\n` with
 * `indexOf`, so it allocates one sliced string per line and nothing per
 * character.
 */
export function parseText(text: string, sink: RuleSink, counts: ParseCounts, options: ParseOptions = {}): void {
  let pos = 0;
  const len = text.length;
  // Skip a UTF-8 byte-order mark.
  if (len > 0 && text.charCodeAt(0) === 0xfeff) pos = 1;
  while (pos < len) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = len;
    parseLine(text.slice(pos, nl), sink, counts, options);
    pos = nl + 1;
  }
}

/**
 * Streams UTF-8 chunks (a file or HTTP body) through the parser, keeping only
 * the unfinished last line between chunks.
 */
export async function parseStream(chunks: AsyncIterable<Uint8Array | string>, sink: RuleSink, counts: ParseCounts, options: ParseOptions = {}): Promise<void> {
  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: false });
  let carry = '';
  for await (const chunk of chunks) {
    const text = carry + (typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    const lastNl = text.lastIndexOf('\n');
    if (lastNl < 0) {
      carry = text;
      if (carry.length > (options.maxLineLength ?? 4096) * 4) {
        // A "line" that never ends: count it once and drop it.
        counts.lines++;
        counts.invalid++;
        carry = '';
      }
      continue;
    }
    parseText(text.slice(0, lastNl), sink, counts, options);
    carry = text.slice(lastNl + 1);
  }
  carry += decoder.decode();
  if (carry.length > 0) parseText(carry, sink, counts, options);
}
