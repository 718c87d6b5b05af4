/**
 * The compiled block/allow state of every group, and the builder that makes
 * it from parsed list lines.
 *
 * One {@link DomainTable} holds every listed name of every group. Its value
 * is an index into a small *palette*: each palette entry says, per group
 * (bitmask, up to 32 groups), whether the name blocks/allows itself and/or its
 * subdomains and whether the block is `$important`. Distinct combinations are
 * few (hundreds), so the palette costs nothing, a name listed by several
 * groups is stored once, and a lookup costs one probe per label of the query
 * whatever the number of groups.
 */
import { performance } from 'node:perf_hooks';
import { getDomain } from 'tldts';
import { buildFilter, DomainTable, DomainTableBuilder, FULL_NAME, MAX_VALUE } from './domain-table.js';
import type { HashSeed } from './hash.js';
import { emptyCounts, type ParseCounts, type ParseOptions, parseText, RULE_ALLOW, RULE_CHILDREN, RULE_EXACT, RULE_IMPORTANT, RULE_PLAIN } from './parser.js';

/** Most groups one configuration may declare (they are bits of a 32-bit mask). */
export const MAX_GROUPS = 32;
/** Most sources across all groups (source ids are 16-bit in the palette). */
export const MAX_SOURCES = 0xfffe;
/** Palette stride: blockExact, blockChild, allowExact, allowChild, importantExact, importantChild, sources. */
export const PALETTE_STRIDE = 7;
const NO_SOURCE = 0xffff;

/** How one source's entries are interpreted. */
export interface SourceSpec {
  /** Index in the global source list (reasons and per-source counters). */
  readonly id: number;
  /** Group bit index (0…31). */
  readonly group: number;
  /** Entries of an allow list allow instead of block (regardless of `@@`). */
  readonly allow: boolean;
  /** Hosts/plain-domain entries match the name only, not its subdomains. */
  readonly exact: boolean;
  /** Widen every entry to its registrable domain (tldts `getDomain`). */
  readonly registrable: boolean;
  /** Most entries (domains + regexes) taken from this source; the rest are counted as dropped. */
  readonly maxEntries: number;
}

/** Counters for one source after a build. */
export interface SourceCounts extends ParseCounts {
  /** Entries refused because they are public suffixes (`co.uk`, `github.io`). */
  refusedPublicSuffix: number;
  /** Entries dropped because the source exceeded `maxEntries`. */
  dropped: number;
  /** A few of the refused/invalid lines, for the log. */
  samples: string[];
}

/** A compiled regex rule. */
export interface RegexRule {
  readonly source: string;
  readonly flags: number;
  groupMask: number;
  readonly sourceId: number;
}

/** The transferable result of a build (what a worker sends back). */
export interface BuildOutput {
  slots: Uint32Array;
  /** Prefilter of the table (see `buildFilter`). */
  filter: Uint32Array;
  size: number;
  seed: HashSeed;
  palette: Uint32Array;
  regexes: RegexRule[];
  counts: SourceCounts[];
  buildMs: number;
}

const TLDTS_OPTIONS = {
  allowPrivateDomains: true,
  extractHostname: false,
  validateHostname: false,
  detectIp: false,
  mixedInputs: false,
} as const;

/** True when `name` is itself a public suffix (ICANN or private section), i.e. has no registrable domain. */
export function isPublicSuffix(name: string): boolean {
  return getDomain(name, TLDTS_OPTIONS) === null;
}

/**
 * Accumulates sources into one table + palette. Single use: add every source
 * with {@link addSource} and the returned sink, then call {@link finish}.
 */
export class EngineBuilder {
  readonly #table: DomainTableBuilder;
  readonly #palette: number[] = [];
  /** The same palette entries as arrays, by id (no slicing per insert). */
  readonly #vectors: number[][] = [];
  readonly #paletteIndex = new Map<string, number>();
  readonly #freshCache = new Map<number, number>();
  readonly #mergeCache = new Map<number, number>();
  readonly #regexes = new Map<string, RegexRule>();
  readonly #counts: SourceCounts[] = [];
  readonly #seed: HashSeed;
  #addKey = 0;
  #addVec: number[] = [];
  readonly #merge = (existing: number, _incoming: number): number => this.#mergeValue(existing);

  constructor(seed: HashSeed, expectedEntries = 1024) {
    this.#seed = seed;
    this.#table = new DomainTableBuilder(seed, expectedEntries);
  }

  /** Parses `text` as source `spec`. Can be called several times per source (chunks). */
  addText(spec: SourceSpec, text: string, options: ParseOptions = {}): SourceCounts {
    const counts = this.countsFor(spec);
    parseText(text, this.sinkFor(spec, counts), counts, this.#parseOptions(counts, options));
    return counts;
  }

  /** The counters of a source (created on first use). */
  countsFor(spec: SourceSpec): SourceCounts {
    let c = this.#counts[spec.id];
    if (c === undefined) {
      c = { ...emptyCounts(), refusedPublicSuffix: 0, dropped: 0, samples: [] };
      this.#counts[spec.id] = c;
    }
    return c;
  }

  #parseOptions(counts: SourceCounts, options: ParseOptions): ParseOptions {
    return {
      ...options,
      onInvalid: (line, why) => {
        if (counts.samples.length < 5) counts.samples.push(`${line.slice(0, 100)} (${why})`);
        options.onInvalid?.(line, why);
      },
    };
  }

  /** A parser sink that applies the source's options and adds to the table. */
  sinkFor(spec: SourceSpec, counts: SourceCounts) {
    const group = spec.group;
    if (group < 0 || group >= MAX_GROUPS) throw new RangeError(`group index ${group} out of range`);
    if (spec.id < 0 || spec.id >= MAX_SOURCES) throw new RangeError(`source id ${spec.id} out of range`);
    let taken = 0;
    return {
      domain: (name: string, flags: number): void => {
        if (taken >= spec.maxEntries) {
          counts.dropped++;
          return;
        }
        let f = flags;
        if (spec.allow) f = (f | RULE_ALLOW) & ~RULE_IMPORTANT;
        if (spec.exact && (f & RULE_PLAIN) !== 0) f &= ~RULE_CHILDREN;
        let n = name;
        const registrable = getDomain(n, TLDTS_OPTIONS);
        if (registrable === null) {
          counts.refusedPublicSuffix++;
          if (counts.samples.length < 5) counts.samples.push(`${name} (public suffix, refused)`);
          return;
        }
        if (spec.registrable && registrable !== n) {
          n = registrable;
          f |= RULE_EXACT | RULE_CHILDREN;
        }
        taken++;
        this.#addDomain(n, group, f, spec.id);
      },
      regex: (source: string, flags: number): void => {
        if (taken >= spec.maxEntries) {
          counts.dropped++;
          return;
        }
        taken++;
        let f = flags & (RULE_ALLOW | RULE_IMPORTANT);
        if (spec.allow) f = (f | RULE_ALLOW) & ~RULE_IMPORTANT;
        const key = `${f}/${source}`;
        const existing = this.#regexes.get(key);
        if (existing !== undefined) existing.groupMask |= 1 << group;
        else this.#regexes.set(key, { source, flags: f, groupMask: 1 << group, sourceId: spec.id });
      },
    };
  }

  #addDomain(name: string, group: number, flags: number, sourceId: number): void {
    const key = (sourceId * 32 + group) * 32 + (flags & 15);
    this.#addKey = key;
    let fresh = this.#freshCache.get(key);
    if (fresh === undefined) {
      this.#addVec = vectorFor(group, flags, sourceId);
      fresh = this.#intern(this.#addVec);
      this.#freshCache.set(key, fresh);
    } else {
      this.#addVec = this.#vectors[fresh]!;
    }
    this.#table.add(name, fresh + 1, this.#merge);
  }

  #mergeValue(existing: number): number {
    const id = existing - 1;
    const mkey = id * 2 ** 21 + this.#addKey;
    const cached = this.#mergeCache.get(mkey);
    if (cached !== undefined) return cached + 1;
    const base = id * PALETTE_STRIDE;
    const add = this.#addVec;
    const v: number[] = [];
    for (let k = 0; k < 6; k++) v.push((this.#palette[base + k]! | add[k]!) >>> 0);
    // Keep the first block source and the first allow source seen.
    const oldSrc = this.#palette[base + 6]!;
    const addSrc = add[6]!;
    const blockSrc = (oldSrc & 0xffff) !== NO_SOURCE ? oldSrc & 0xffff : addSrc & 0xffff;
    const allowSrc = oldSrc >>> 16 !== NO_SOURCE ? oldSrc >>> 16 : addSrc >>> 16;
    v.push(((allowSrc << 16) | blockSrc) >>> 0);
    const merged = this.#intern(v);
    this.#mergeCache.set(mkey, merged);
    return merged + 1;
  }

  #intern(v: number[]): number {
    const k = v.join(',');
    let id = this.#paletteIndex.get(k);
    if (id === undefined) {
      id = this.#palette.length / PALETTE_STRIDE;
      if (id + 1 > MAX_VALUE) throw new RangeError('palette overflow');
      for (const x of v) this.#palette.push(x);
      this.#vectors.push(v);
      this.#paletteIndex.set(k, id);
    }
    return id;
  }

  /** Completes the build; `compact` resizes the table to the target load (one rehash). */
  finish(started = performance.now(), compact = true): BuildOutput {
    const table = this.#table.finish(compact);
    return {
      slots: table.slots,
      filter: table.filter,
      size: table.size,
      seed: this.#seed,
      palette: Uint32Array.from(this.#palette),
      regexes: [...this.#regexes.values()],
      counts: this.#counts,
      buildMs: performance.now() - started,
    };
  }
}

function vectorFor(group: number, flags: number, sourceId: number): number[] {
  const bit = (1 << group) >>> 0;
  const exact = (flags & RULE_EXACT) !== 0 ? bit : 0;
  const child = (flags & RULE_CHILDREN) !== 0 ? bit : 0;
  if ((flags & RULE_ALLOW) !== 0) return [0, 0, exact, child, 0, 0, ((sourceId << 16) | NO_SOURCE) >>> 0];
  const imp = (flags & RULE_IMPORTANT) !== 0;
  return [exact, child, 0, 0, imp ? exact : 0, imp ? child : 0, ((NO_SOURCE << 16) | sourceId) >>> 0];
}

/**
 * What {@link Engine.decide} returns: ONE small integer (a V8 small integer:
 * no allocation) packing the decision, whether a regex decided, and the
 * source (list) id behind it.
 *
 * | bits | meaning |
 * |---|---|
 * | 0–1 | decision: {@link DECISION_NONE}, {@link DECISION_ALLOWED}, {@link DECISION_BLOCKED} (mask {@link DECISION_MASK}) |
 * | 2 | {@link RESULT_BY_REGEX}: a regex entry decided |
 * | 3–7 | the deciding group (the lowest of the client's groups whose entry decided) — {@link resultGroup} |
 * | 8… | source id + 1 (0: none) — {@link resultSource}. The palette keeps one block and one allow source per name, the first list that listed it: when several groups list one name, that list may belong to another group than {@link resultGroup}. |
 */
export const DECISION_NONE = 0;
/** An allow entry matched (and no `$important` block). */
export const DECISION_ALLOWED = 1;
/** A block entry matched. */
export const DECISION_BLOCKED = 2;
/** `result & DECISION_MASK` is the decision. */
export const DECISION_MASK = 3;
/** Set in a result when a regex entry decided. */
export const RESULT_BY_REGEX = 4;
const GROUP_SHIFT = 3;
const SOURCE_SHIFT = 8;

/** The source (list) id of a {@link Engine.decide} result, -1 when none. */
export function resultSource(result: number): number {
  return (result >>> SOURCE_SHIFT) - 1;
}

/** The group index (0…31) that decided a {@link Engine.decide} result (0 for DECISION_NONE). */
export function resultGroup(result: number): number {
  return (result >>> GROUP_SHIFT) & 31;
}

/** `groups`: the bits of the client's groups that matched (non-zero); the lowest is reported. */
function packed(decision: number, source: number, byRegex: boolean, groups: number): number {
  return decision | (byRegex ? RESULT_BY_REGEX : 0) | ((31 - Math.clz32(groups & -groups)) << GROUP_SHIFT) | ((source + 1) << SOURCE_SHIFT);
}

/** Question keys remembered per group mask by {@link Engine.remember} (about 1 MiB at most with their strings). */
export const MEMO_KEYS = 16384;
/** Group masks with a memo of their own ({@link Engine.remember}); clients in other combinations of groups are decided each time. */
export const MEMO_MASKS = 8;

/** A compiled regex with its group mask. */
interface CompiledRegex {
  readonly re: RegExp;
  readonly groupMask: number;
  readonly flags: number;
  readonly sourceId: number;
}

/**
 * The read side: answers "is this name blocked for a client in these
 * groups?" in one pass over the name. Immutable; a reload builds a new one
 * and swaps the reference.
 */
export class Engine {
  readonly table: DomainTable;
  readonly palette: Uint32Array;
  readonly counts: readonly SourceCounts[];
  readonly regexCount: number;
  readonly #regexes: CompiledRegex[];
  readonly #regexMask: number;
  readonly #buf = new Uint32Array(128);
  /** {@link remembered}: per group mask (at most {@link MEMO_MASKS}), question key → result. */
  readonly #memoMasks: number[] = [];
  readonly #memos: Map<string, number>[] = [];

  constructor(out: BuildOutput) {
    this.table = new DomainTable(out.slots, out.size, out.seed, out.filter);
    this.palette = out.palette;
    this.counts = out.counts;
    this.#regexes = out.regexes.map((r) => ({ re: new RegExp(r.source), groupMask: r.groupMask, flags: r.flags, sourceId: r.sourceId }));
    this.regexCount = this.#regexes.length;
    let m = 0;
    for (const r of this.#regexes) m |= r.groupMask;
    this.#regexMask = m;
  }

  /** An engine that matches nothing (before the first build). */
  static empty(seed: HashSeed): Engine {
    const slots = new Uint32Array(24);
    return new Engine({ slots, filter: buildFilter(slots, 0), size: 0, seed, palette: new Uint32Array(0), regexes: [], counts: [], buildMs: 0 });
  }

  /**
   * Decides for `name` (presentation form, no trailing dot, any letter case)
   * and a client in the groups of `groupMask`. Returns a packed result (see
   * {@link DECISION_NONE}): `result & DECISION_MASK` is the decision,
   * {@link resultGroup} the group and {@link resultSource} the list behind
   * it, `result & RESULT_BY_REGEX` says a regex decided. Allocation-free unless a regex has to run (then one
   * lowercase copy of the name).
   */
  decide(name: string, groupMask: number): number {
    const n = this.table.matchSuffixes(name, this.#buf);
    return this.#decideFound(n, groupMask, (this.#regexMask & groupMask) === 0 ? null : name);
  }

  /**
   * The result remembered for a question key (`ctx.questionKey()`) and a
   * client in the groups of `groupMask` by {@link remember}, or -1. A
   * repeated question (a cache hit, say) then costs one `Map` lookup — the
   * key is the same string object each time, so it compares by identity —
   * instead of a walk over its name. Correct for as long as this engine
   * lives: it is immutable, and a reload replaces it, memo and all.
   */
  remembered(key: string, groupMask: number): number {
    const masks = this.#memoMasks;
    for (let i = 0; i < masks.length; i++) {
      if (masks[i] === groupMask) return this.#memos[i]!.get(key) ?? -1;
    }
    return -1;
  }

  /**
   * Remembers `result` (from {@link decideWire} or {@link decide}) for the
   * question `key` and `groupMask`. Bounded: {@link MEMO_KEYS} keys per
   * mask (then that mask's keys are forgotten at once) and
   * {@link MEMO_MASKS} masks (more are not remembered).
   */
  remember(key: string, groupMask: number, result: number): void {
    const masks = this.#memoMasks;
    let i = 0;
    while (i < masks.length && masks[i] !== groupMask) i++;
    if (i === masks.length) {
      if (i === MEMO_MASKS) return;
      masks.push(groupMask);
      this.#memos.push(new Map());
    }
    const memo = this.#memos[i]!;
    if (memo.size >= MEMO_KEYS) memo.clear();
    memo.set(key, result);
  }

  /** Question keys remembered by {@link remember}, over all group masks (at most {@link MEMO_MASKS} × {@link MEMO_KEYS}). */
  get memoEntries(): number {
    let n = 0;
    for (const m of this.#memos) n += m.size;
    return n;
  }

  /** Whether {@link decideWire} can decide for a client in these groups (no regex entry applies to them). */
  wireDecides(groupMask: number): boolean {
    return (this.#regexMask & groupMask) === 0;
  }

  /**
   * {@link decide} for the name in DNS wire format at `offset` of `buf`
   * (compression followed, letters folded on the fly): the same result as
   * `decide(readName(buf, offset), groupMask)`, with no string built. Returns
   * -1 when it cannot decide that way: a regex entry applies to these groups
   * ({@link wireDecides} false: they need the presentation string), or the
   * name cannot be walked (where `readName` throws).
   */
  decideWire(buf: Uint8Array, offset: number, groupMask: number): number {
    if ((this.#regexMask & groupMask) !== 0) return -1;
    const n = this.table.matchSuffixesWire(buf, offset, this.#buf);
    return n < 0 ? -1 : this.#decideFound(n, groupMask, null);
  }

  /**
   * The decision from the `n` table values found (in `#buf`); `name` is null
   * for groups no regex entry applies to, else the name the regex entries
   * then see (after an important block, which no regex overrides).
   */
  #decideFound(n: number, groupMask: number, name: string | null): number {
    const buf = this.#buf;
    const pal = this.palette;
    let block = 0;
    let allow = 0;
    let src = -1;
    let allowSrc = -1;
    for (let k = 0; k < n; k++) {
      const v = buf[k]!;
      const base = ((v & MAX_VALUE) - 1) * PALETTE_STRIDE;
      const off = (v & FULL_NAME) !== 0 ? 0 : 1;
      const important = pal[base + 4 + off]! & groupMask;
      if (important !== 0) return packed(DECISION_BLOCKED, pal[base + 6]! & 0xffff, false, important);
      const a = pal[base + 2 + off]! & groupMask;
      if (a !== 0 && allow === 0) {
        allow = a;
        allowSrc = pal[base + 6]! >>> 16;
      }
      const b = pal[base + off]! & groupMask;
      if (b !== 0 && block === 0) {
        block = b;
        src = pal[base + 6]! & 0xffff;
      }
    }
    if (name !== null) return this.#decideRegex(name.toLowerCase(), groupMask, block, allow, src, allowSrc);
    if (allow !== 0) return packed(DECISION_ALLOWED, allowSrc, false, allow);
    return block !== 0 ? packed(DECISION_BLOCKED, src, false, block) : DECISION_NONE;
  }

  /**
   * The entry that blocked `name` for a client in `mask` (`result` from the
   * engine): the listed domain (the name itself or the suffix whose entry
   * covers it), or `/regex/`. Only called for a blocked query: one table probe
   * per label of the name, and the list's regexes again for a regex block.
   * Follows {@link decide}: the first `$important` entry wins, else the
   * shortest blocking suffix.
   */
  ruleFor(name: string, mask: number, result: number): string | undefined {
    if ((result & RESULT_BY_REGEX) !== 0) {
      const re = this.blockingRegex(name, mask, resultSource(result));
      return re === undefined ? undefined : `/${re}/`;
    }
    const lower = name.toLowerCase();
    const pal = this.palette;
    let block: string | undefined;
    // Suffixes of two labels or more, shortest first (single labels are never listed).
    let i = lower.lastIndexOf('.');
    if (i <= 0) i = -1;
    else i = lower.lastIndexOf('.', i - 1);
    for (;;) {
      const suffix = i < 0 ? lower : lower.slice(i + 1);
      const v = this.table.get(suffix);
      if (v !== 0) {
        const base = (v - 1) * PALETTE_STRIDE;
        const off = i < 0 ? 0 : 1;
        if ((pal[base + 4 + off]! & mask) !== 0) return suffix;
        if (block === undefined && (pal[base + off]! & mask) !== 0) block = suffix;
      }
      if (i < 0) return block;
      i = i === 0 ? -1 : lower.lastIndexOf('.', i - 1);
    }
  }

  /**
   * The source text of the first block regex of list `sourceId` that matches
   * `name` for a client in `groupMask` (what {@link decide} found when its
   * result has {@link RESULT_BY_REGEX}), or undefined. For explaining a block
   * after the fact: runs the regexes again, so call it only for blocked queries.
   */
  blockingRegex(name: string, groupMask: number, sourceId: number): string | undefined {
    const lower = name.toLowerCase();
    for (const r of this.#regexes) {
      if (r.sourceId !== sourceId || (r.groupMask & groupMask) === 0 || (r.flags & RULE_ALLOW) !== 0) continue;
      if (r.re.test(lower)) return r.re.source;
    }
    return undefined;
  }

  #decideRegex(lower: string, groupMask: number, block: number, allow: number, src: number, allowSrc: number): number {
    let blockRe = -1;
    let allowRe = -1;
    let blockReGroups = 0;
    let allowReGroups = 0;
    for (const r of this.#regexes) {
      const groups = r.groupMask & groupMask;
      if (groups === 0) continue;
      const isAllow = (r.flags & RULE_ALLOW) !== 0;
      // Skip what cannot change the outcome.
      if (isAllow ? allow !== 0 || allowRe >= 0 : (r.flags & RULE_IMPORTANT) === 0 && (block !== 0 || blockRe >= 0)) continue;
      if (!r.re.test(lower)) continue;
      if (!isAllow && (r.flags & RULE_IMPORTANT) !== 0) return packed(DECISION_BLOCKED, r.sourceId, true, groups);
      if (isAllow) {
        allowRe = r.sourceId;
        allowReGroups = groups;
      } else {
        blockRe = r.sourceId;
        blockReGroups = groups;
      }
    }
    if (allow !== 0) return packed(DECISION_ALLOWED, allowSrc, false, allow);
    if (allowRe >= 0) return packed(DECISION_ALLOWED, allowRe, true, allowReGroups);
    if (block !== 0) return packed(DECISION_BLOCKED, src, false, block);
    if (blockRe >= 0) return packed(DECISION_BLOCKED, blockRe, true, blockReGroups);
    return DECISION_NONE;
  }
}
