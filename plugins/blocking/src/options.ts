/**
 * Options of the blocking plugin: ONE TypeBox schema (defaults, bounds,
 * descriptions; core's `parseOptions` validates it), and {@link compileOptions},
 * which derives the internal form (lists numbered and named, client rules as
 * group masks, URLs normalised). The few checks JSON Schema cannot state
 * (a client rule naming an unknown group, `source` xor `inline`, `custom`
 * mode without addresses, duplicate list names) throw `ConfigError` with the
 * exact field path.
 */
import process from 'node:process';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError, type OptionsInput, options, type Static, Type } from '@heimdall/core';
import { ipFamily, parseCidr } from '@heimdall/core/wire';
import { defaultCacheDir } from './cache-dir.js';
import { MAX_GROUPS, MAX_SOURCES } from './engine.js';
import type { ClientRule } from './groups.js';
import { DEFAULT_REGEX_LIMITS, type RegexLimits } from './regex-guard.js';

/** A DoH client id (core's `/dns-query/<client-id>`). */
const CLIENT_ID = /^[A-Za-z0-9._-]{1,64}$/;

const DAY = 86_400_000;
const PATH_OR_URL = '^(?=[\\s\\S]*\\S)(?![A-Za-z][A-Za-z0-9+.-]*://)[\\s\\S]+$|^[Hh][Tt][Tt][Pp][Ss]?://[^\\s/?#]+[^\\s]*$';
const PATH_OR_URL_MESSAGE = 'must be a path or an http(s) URL';
const IPV4 = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(?:\\.(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}';
const H = '[0-9A-Fa-f]{1,4}';
const IPV6 = [
  `(?:${H}:){7}${H}`,
  `(?:${H}:){1,7}:`,
  `(?:${H}:){1,6}:${H}`,
  `(?:${H}:){1,5}(?::${H}){1,2}`,
  `(?:${H}:){1,4}(?::${H}){1,3}`,
  `(?:${H}:){1,3}(?::${H}){1,4}`,
  `(?:${H}:){1,2}(?::${H}){1,5}`,
  `${H}:(?::${H}){1,6}`,
  `:(?:(?::${H}){1,7}|:)`,
  `(?:${H}:){6}${IPV4}`,
  // Compressed with an IPv4 tail: k groups before the `::` (k = 1 … 5) and at most 5 − k after it.
  ...[1, 2, 3, 4, 5].map((k) => `(?:${H}:){${k}}:(?:${H}:){0,${5 - k}}${IPV4}`),
  `::(?:${H}:){0,5}${IPV4}`,
].join('|');
/** Patterns of the address options (exported for their tests). */
export const IPV4_PATTERN = `^${IPV4}$`;
export const IPV6_PATTERN = `^(?:${IPV6})$`;

/** A section (nested options object): unknown keys rejected, defaults filled in when omitted. */
function section<P extends Parameters<typeof options>[0]>(properties: P, description: string) {
  return Type.Object(properties, { additionalProperties: false, default: {}, description });
}

const listObjectSchema = options(
  {
    source: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: PATH_OR_URL,
        errorMessage: PATH_OR_URL_MESSAGE,
        description: 'Path of a local file or an http:// / https:// URL. Exactly one of `source` and `inline`.',
      }),
    ),
    inline: Type.Optional(Type.String({ description: 'The list text itself, one entry per line.' })),
    name: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 512,
        description: "Name in status, metrics and logs. Default: the source (inline lists: '<group>.<block|allow>[i]').",
      }),
    ),
    // Optional although defaulted: core's validator does not fill defaults inside a union member that has
    // another error, and would then report "exact: is required" instead of the real mistake.
    exact: Type.Optional(Type.Boolean({ default: false, description: 'Hosts and plain-domain entries match the name only, not its subdomains.' })),
    registrable: Type.Optional(
      Type.Boolean({ default: false, description: 'Widen every entry to its registrable domain (a.ads.example.co.uk → example.co.uk).' }),
    ),
    maxEntries: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 50_000_000, description: 'Most entries taken from this list. Default: refresh.maxEntries.' }),
    ),
    required: Type.Optional(
      Type.Boolean({
        default: false,
        description: 'The resolver does not start without this list: a missing or unloadable list (no file, no download and no disk copy) fails start().',
      }),
    ),
  },
  { description: 'A list with per-list switches.' },
);

/** One list: a path or http(s) URL, or an object with per-list switches. */
const listSchema = Type.Union([Type.String({ minLength: 1, pattern: PATH_OR_URL, errorMessage: PATH_OR_URL_MESSAGE }), listObjectSchema], {
  description: 'A path, an http(s) URL, or { source | inline, name, exact, registrable, maxEntries, required }.',
});

// Optional although defaulted: a group is a Record value, and defaults inside Record values are not
// filled by every version of core's validator.
const groupSchema = section(
  {
    block: Type.Optional(Type.Array(listSchema, { default: [], maxItems: MAX_SOURCES, description: 'Lists whose entries block.' })),
    allow: Type.Optional(Type.Array(listSchema, { default: [], maxItems: MAX_SOURCES, description: 'Lists whose entries allow (even without @@).' })),
  },
  'Block and allow lists applied together to some clients.',
);

/** The schema of `blocking()`'s options. */
export const blockingOptionsSchema = options({
  groups: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), groupSchema, {
    minProperties: 1,
    maxProperties: MAX_GROUPS,
    additionalProperties: Type.Never({ errorMessage: 'group names use letters, digits, _ . - (1–64 characters)' }),
    errorMessage: `must be an object of 1 to ${MAX_GROUPS} groups`,
    description: `Named groups of lists (1–${MAX_GROUPS}; names: letters, digits, _ . -).`,
  }),
  clients: Type.Optional(
    Type.Record(Type.String(), Type.Array(Type.String({ minLength: 1 }), { maxItems: MAX_GROUPS }), {
      description:
        "Which groups apply to which clients: keys are an IP address, a CIDR, `id:<client-id>` (a DoH client id, from `/dns-query/<client-id>`; it wins over address rules) or 'default'; values are group names. The most specific prefix wins. Omitted: every client gets every group; given without 'default': unmatched clients are not filtered.",
    }),
  ),
  response: section(
    {
      mode: Type.Union([Type.Literal('nxdomain'), Type.Literal('nodata'), Type.Literal('zero'), Type.Literal('custom'), Type.Literal('refused')], {
        default: 'nxdomain',
        description: 'How a blocked query is answered.',
      }),
      ttl: Type.Integer({
        minimum: 0,
        maximum: 604_800,
        default: 10,
        description: 'TTL (s) of blocked answers and of the synthetic SOA (negative-caching time).',
      }),
      ipv4: Type.Array(Type.String({ pattern: IPV4_PATTERN, errorMessage: 'must be an IPv4 address' }), {
        default: [],
        maxItems: 16,
        description: "Addresses of A answers in mode 'custom'.",
      }),
      ipv6: Type.Array(Type.String({ pattern: IPV6_PATTERN, errorMessage: 'must be an IPv6 address' }), {
        default: [],
        maxItems: 16,
        description: "Addresses of AAAA answers in mode 'custom'.",
      }),
      ede: Type.Boolean({ default: true, description: 'Attach EDE 15 "Blocked" (RFC 8914) when the query has EDNS.' }),
    },
    'How blocked queries are answered.',
  ),
  cnameInspection: Type.Boolean({ default: true, description: 'Block responses whose CNAME chain passes through a blocked name.' }),
  enabled: Type.Boolean({ default: true, description: 'Start enabled.' }),
  refresh: section(
    {
      interval: Type.Union(
        [Type.Literal(0), Type.Integer({ minimum: 60_000, maximum: 30 * DAY, errorMessage: `must be 0 (never) or an integer in 60000..${30 * DAY} (ms)` })],
        { default: 4 * 3_600_000, description: 'Milliseconds between reloads of every list; 0 = never.' },
      ),
      retry: Type.Integer({ minimum: 1000, maximum: DAY, default: 300_000, description: 'Milliseconds before retrying after a failed or rejected refresh.' }),
      timeoutMs: Type.Integer({ minimum: 100, maximum: 600_000, default: 30_000, description: 'Per-download timeout (connect + body), ms.' }),
      maxBytes: Type.Integer({ minimum: 1, maximum: 1024 * 1024 * 1024, default: 64 * 1024 * 1024, description: 'Largest accepted list, in bytes.' }),
      maxEntries: Type.Integer({ minimum: 1, maximum: 50_000_000, default: 5_000_000, description: 'Most entries taken from one list.' }),
      concurrency: Type.Integer({ minimum: 1, maximum: 64, default: 4, description: 'Downloads in parallel.' }),
      minRetainedRatio: Type.Number({
        minimum: 0,
        maximum: 1,
        default: 0.5,
        description:
          'A refresh that keeps fewer than this fraction of the entries of the last good copy (an empty 200, garbage, a truncated file) is rejected as suspect: the last good copy stays, lastError is set. 0 accepts any refresh.',
      }),
    },
    'Background refresh of the lists.',
  ),
  cacheDir: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'Directory for downloaded lists and last-good copies (survives restarts). Default: $XDG_CACHE_HOME/heimdall/lists or ~/.cache/heimdall/lists.',
    }),
  ),
  build: Type.Union([Type.Literal('worker'), Type.Literal('inline')], {
    default: 'worker',
    description: "Build lists in a worker thread ('worker') or on the main thread in chunks that yield ('inline').",
  }),
  regex: section(
    {
      maxLength: Type.Integer({
        minimum: 1,
        maximum: 4096,
        default: DEFAULT_REGEX_LIMITS.maxLength,
        description: 'Longest accepted /regex/ entry, in characters.',
      }),
      maxUnbounded: Type.Integer({
        minimum: 0,
        maximum: 8,
        default: DEFAULT_REGEX_LIMITS.maxUnbounded,
        description: 'Most unbounded quantifiers in one /regex/ entry (an unanchored start counts as one).',
      }),
    },
    'Bounds for /regex/ entries.',
  ),
});

/** Options of `blocking()` after validation, defaults filled in. */
export type BlockingOptions = Static<typeof blockingOptionsSchema>;
/** Options of `blocking()` as callers write them (defaults may be omitted). */
export type BlockingOptionsInput = OptionsInput<BlockingOptions>;
/** One list option as written (a string, or the object form). */
export type BlockingListOption = Static<typeof listSchema>;
/** How a blocked query is answered. */
export type BlockingResponseMode = BlockingOptions['response']['mode'];

/** A list after compilation. */
export interface ResolvedList {
  readonly id: number;
  readonly name: string;
  readonly group: string;
  readonly groupIndex: number;
  readonly allow: boolean;
  readonly kind: 'file' | 'url' | 'inline';
  /** Path (absolute), URL (normalised) or the inline text. */
  readonly location: string;
  readonly exact: boolean;
  readonly registrable: boolean;
  readonly maxEntries: number;
  readonly required: boolean;
  /**
   * Where the list is in the options, for errors and `--check`:
   * `blocking.groups.ads.block[1]` as a library,
   * `plugins[1].options.groups.ads.block[1]` from the app's config.
   */
  readonly path: string;
}

/** The compiled configuration the services use. */
export interface BlockingConfig {
  /** Instance name (state key `<instance>.disabledUntil`; metrics are prefixed by core by the same name). */
  readonly instance: string;
  /**
   * Where the options live (error and `--check` prefix): the config path the
   * plugin was given (`plugins[1].options`), else the instance name (`blocking`).
   */
  readonly path: string;
  readonly groups: readonly string[];
  readonly lists: readonly ResolvedList[];
  readonly clients: { readonly rules: readonly ClientRule[]; readonly defaultMask: number };
  readonly response: BlockingOptions['response'];
  readonly cnameInspection: boolean;
  readonly enabled: boolean;
  readonly refresh: BlockingOptions['refresh'];
  /** Absolute directory of downloads and last-good copies. */
  readonly cacheDir: string;
  readonly build: 'worker' | 'inline';
  readonly regex: RegexLimits;
}

const URL_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/**
 * Derives the internal configuration from validated options. `at` is the
 * instance: its name and where its options live (the error prefix: the
 * config path `plugins[1].options` from the app; as a library, the name). A
 * string is both. Throws `ConfigError` for what the schema cannot say.
 */
export function compileOptions(
  o: BlockingOptions,
  at: string | { readonly name: string; readonly path: string } = 'blocking',
  env: NodeJS.ProcessEnv = process.env,
): BlockingConfig {
  const { name: instance, path } = typeof at === 'string' ? { name: at, path: at } : at;
  const groupNames = Object.keys(o.groups);
  const lists: ResolvedList[] = [];
  const explicitName = new Set<number>();
  groupNames.forEach((group, groupIndex) => {
    const g = o.groups[group]!;
    for (const kind of ['block', 'allow'] as const) {
      (g[kind] ?? []).forEach((item, i) => {
        const lp = `${path}.groups.${group}.${kind}[${i}]`;
        if (typeof item === 'object' && item.name !== undefined) explicitName.add(lists.length);
        lists.push(compileList(lp, item, lists.length, group, groupIndex, kind === 'allow', o.refresh.maxEntries));
      });
    }
  });
  if (lists.length > MAX_SOURCES) throw new ConfigError(`${path}.groups`, `at most ${MAX_SOURCES} lists in total`, lists.length);
  // The same path/URL in several groups: default names get the group as a prefix.
  const seen = new Map<string, number>();
  for (const l of lists) seen.set(l.name, (seen.get(l.name) ?? 0) + 1);
  const named = lists.map((l) =>
    !explicitName.has(l.id) && seen.get(l.name)! > 1 ? { ...l, name: `${l.group}.${l.allow ? 'allow' : 'block'}:${l.name}` } : l,
  );
  const names = new Set<string>();
  for (const l of named) {
    if (names.has(l.name)) throw new ConfigError(`${l.path}.name`, `list name '${l.name}' is used twice: give one a distinct name`);
    names.add(l.name);
  }

  const allMask = groupNames.length === 32 ? 0xffffffff : ((1 << groupNames.length) - 1) >>> 0;
  const maskOf = (p: string, v: readonly string[]): number => {
    let m = 0;
    v.forEach((name, i) => {
      const idx = groupNames.indexOf(name);
      if (idx < 0) throw new ConfigError(`${p}[${i}]`, `unknown group (groups: ${groupNames.join(', ')})`, name);
      m |= 1 << idx;
    });
    return m >>> 0;
  };
  let clients: BlockingConfig['clients'] = { rules: [], defaultMask: allMask };
  if (o.clients !== undefined) {
    const rules: ClientRule[] = [];
    let defaultMask = 0;
    for (const [key, v] of Object.entries(o.clients)) {
      const cp = `${path}.clients${/^[A-Za-z_$][\w$-]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`}`;
      if (key === 'default') {
        defaultMask = maskOf(cp, v);
        continue;
      }
      if (key.startsWith('id:')) {
        const id = key.slice(3);
        if (!CLIENT_ID.test(id)) throw new ConfigError(cp, 'a client id uses letters, digits, . _ - (1–64 characters), as in /dns-query/<client-id>', key);
        rules.push({ id, mask: maskOf(cp, v) });
        continue;
      }
      const cidr = parseCidr(key.includes('/') ? key : `${key}/${ipFamily(key) === 6 ? 128 : 32}`);
      if (cidr === null) throw new ConfigError(cp, "the key must be an IP address, a CIDR, 'id:<client-id>' or 'default'", key);
      rules.push({ cidr, mask: maskOf(cp, v) });
    }
    clients = { rules, defaultMask };
  }
  if (o.response.mode === 'custom' && o.response.ipv4.length === 0 && o.response.ipv6.length === 0) {
    throw new ConfigError(`${path}.response.ipv4`, "mode 'custom' needs at least one address in ipv4 or ipv6");
  }
  return {
    instance,
    path,
    groups: groupNames,
    lists: named,
    clients,
    response: o.response,
    cnameInspection: o.cnameInspection,
    enabled: o.enabled,
    refresh: o.refresh,
    cacheDir: resolve(o.cacheDir ?? defaultCacheDir(env)),
    build: o.build,
    regex: { maxLength: o.regex.maxLength, maxUnbounded: o.regex.maxUnbounded },
  };
}

function compileList(path: string, item: BlockingListOption, id: number, group: string, groupIndex: number, allow: boolean, defaultMax: number): ResolvedList {
  const o = typeof item === 'string' ? { source: item } : item;
  const sourcePath = typeof item === 'string' ? path : `${path}.source`;
  let kind: ResolvedList['kind'];
  let location: string;
  if (o.inline !== undefined) {
    if (o.source !== undefined) throw new ConfigError(path, 'give either source or inline, not both');
    kind = 'inline';
    location = o.inline;
  } else if (o.source === undefined) {
    throw new ConfigError(path, 'needs source (a path or an http(s) URL) or inline (the list text)');
  } else if (URL_SCHEME.test(o.source)) {
    try {
      location = new URL(o.source).href;
    } catch {
      throw new ConfigError(sourcePath, PATH_OR_URL_MESSAGE, o.source);
    }
    kind = 'url';
  } else {
    kind = 'file';
    location = isAbsolute(o.source) ? o.source : resolve(o.source);
  }
  const name =
    o.name ??
    (kind === 'inline' ? `${group}.${allow ? 'allow' : 'block'}[${path.slice(path.lastIndexOf('[') + 1, -1)}]` : kind === 'url' ? location : o.source!);
  return {
    id,
    name,
    group,
    groupIndex,
    allow,
    kind,
    location,
    exact: o.exact ?? false,
    registrable: o.registrable ?? false,
    maxEntries: o.maxEntries ?? defaultMax,
    required: o.required ?? false,
    path,
  };
}
