/**
 * List sources: local files, inline text and HTTP(S) downloads with
 * conditional requests (ETag / If-Modified-Since), a byte bound, a timeout,
 * and on-disk last-good copies in the cache directory (so a restart without
 * network — or with a vanished file — still blocks).
 *
 * A refresh never replaces the last good copy directly: new content becomes
 * a *candidate* (a download streamed to `<dir>/<key>.<pid>.<id>.tmp`, or a
 * snapshot of a changed file copied there), the service builds with it, and
 * only when the build shows the candidate kept enough of the list
 * (`refresh.minRetainedRatio`) is it *promoted*: renamed to `<key>.list`, its
 * metadata (ETag, Last-Modified, file stamp, entry count) written to
 * `<key>.json`. A rejected candidate is deleted. `*.tmp` files left by a
 * killed process are swept at the next start (`sweepStaleTemp`).
 */
import process from 'node:process';
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildContent } from './build.js';
import type { ResolvedList } from './options.js';

/** New content of a list, waiting for the build's verdict. */
export interface Candidate {
  /** What the build reads (a temp file, or the inline text). */
  readonly content: BuildContent;
  readonly bytes: number;
  /** The temp file to promote or delete (null for inline text). */
  readonly tmp: string | null;
  readonly etag: string | null;
  readonly lastModified: string | null;
  /** File lists: size+mtime of the file the snapshot was taken from. */
  readonly stamp: string | null;
}

/** Validators of content that was rejected, so an unchanged bad copy is not fetched and judged again. */
export interface Rejected {
  readonly etag: string | null;
  readonly lastModified: string | null;
  readonly stamp: string | null;
}

/** What is known about one list between refreshes. */
export interface SourceState {
  readonly list: ResolvedList;
  /** The last good content; null when nothing good has ever been obtained. */
  content: BuildContent | null;
  /** Entries of the last good content (from its metadata or the last build), null when unknown. */
  goodEntries: number | null;
  /** New content awaiting the build's verdict. */
  candidate: Candidate | null;
  /** The last rejected content's validators (cleared when new content is accepted). */
  rejected: Rejected | null;
  /** Epoch ms of the last successful fetch/read (including 304). */
  lastRefresh: number | null;
  /** Epoch ms when the good content last changed. */
  lastChange: number | null;
  lastError: string | null;
  etag: string | null;
  lastModified: string | null;
  /** File sources: size+mtime of the file the good content came from. */
  fileStamp: string | null;
  /** Bytes of the good content. */
  bytes: number;
}

function looksLikeHtml(chunk: Uint8Array): boolean {
  for (let i = 0; i < chunk.length && i < 512; i++) {
    const c = chunk[i]!;
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0xef || c === 0xbb || c === 0xbf) continue;
    return c === 0x3c; // '<'
  }
  return false;
}

/** Result of one refresh of one source: `changed` means a candidate is waiting. */
export type RefreshResult = 'changed' | 'unchanged' | 'failed';

/** Fresh state for a list. */
export function initialState(list: ResolvedList): SourceState {
  const inline = list.kind === 'inline';
  return {
    list,
    content: null,
    goodEntries: null,
    candidate: inline
      ? { content: { kind: 'text', text: list.location }, bytes: Buffer.byteLength(list.location), tmp: null, etag: null, lastModified: null, stamp: null }
      : null,
    rejected: null,
    lastRefresh: null,
    lastChange: null,
    lastError: null,
    etag: null,
    lastModified: null,
    fileStamp: null,
    bytes: 0,
  };
}

/** On-disk metadata of a last-good copy. */
interface CacheMeta {
  /** The URL or file path the copy belongs to. */
  source: string;
  etag: string | null;
  lastModified: string | null;
  /** File lists: size+mtime of the file the copy was taken from. */
  stamp?: string | null;
  savedAt: number;
  bytes: number;
  /** Entries the copy gave in the build that accepted it. */
  entries?: number;
  /** Written by earlier versions (URL lists only). */
  url?: string;
  fetchedAt?: number;
}

/** Base path (`<dir>/<sha1>`) of a list's copy: URLs by their URL (shared by lists naming one URL), files by path. */
export function cacheBase(dir: string, list: ResolvedList): string {
  const key = list.kind === 'url' ? list.location : `file\0${list.location}`;
  return join(dir, createHash('sha1').update(key).digest('hex'));
}

function tempPath(dir: string, list: ResolvedList): string {
  return `${cacheBase(dir, list)}.${process.pid}.${list.id}.tmp`;
}

/**
 * Loads the last-good copy of a URL or file list left by a previous run, if
 * any (the offline-start path). Sets content, validators and the entry count;
 * does not touch the network or the list's file.
 */
export async function loadFromDisk(state: SourceState, dir: string): Promise<boolean> {
  if (state.list.kind === 'inline') return false;
  const base = cacheBase(dir, state.list);
  try {
    const meta = JSON.parse(await readFile(`${base}.json`, 'utf8')) as CacheMeta;
    if ((meta.source ?? meta.url) !== state.list.location) return false;
    const st = await stat(`${base}.list`);
    const at = meta.savedAt ?? meta.fetchedAt ?? null;
    state.content = { kind: 'file', path: `${base}.list` };
    state.etag = meta.etag;
    state.lastModified = meta.lastModified;
    state.fileStamp = meta.stamp ?? null;
    state.lastRefresh = at;
    state.lastChange = at;
    state.bytes = st.size;
    state.goodEntries = typeof meta.entries === 'number' ? meta.entries : null;
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes the candidate the good content: renames its temp file over the
 * list's copy and writes the metadata (atomically: temp + rename). `entries`
 * is what the accepting build counted.
 */
export async function promote(state: SourceState, dir: string, entries: number, now: number): Promise<void> {
  const c = state.candidate;
  if (c === null) return;
  state.candidate = null;
  state.rejected = null;
  state.goodEntries = entries;
  state.bytes = c.bytes;
  state.lastChange = now;
  if (c.tmp === null) {
    state.content = c.content;
    return;
  }
  const base = cacheBase(dir, state.list);
  await rename(c.tmp, `${base}.list`);
  state.content = { kind: 'file', path: `${base}.list` };
  state.etag = c.etag;
  state.lastModified = c.lastModified;
  state.fileStamp = c.stamp;
  const meta: CacheMeta = { source: state.list.location, etag: c.etag, lastModified: c.lastModified, stamp: c.stamp, savedAt: now, bytes: c.bytes, entries };
  const metaTmp = `${base}.json.${process.pid}.${state.list.id}.tmp`;
  await writeFile(metaTmp, JSON.stringify(meta));
  await rename(metaTmp, `${base}.json`);
}

/** Drops the candidate (rejected, or the plugin stopped): deletes its temp file, remembers its validators. */
export async function discard(state: SourceState, remember: boolean): Promise<void> {
  const c = state.candidate;
  if (c === null) return;
  state.candidate = null;
  if (remember) state.rejected = { etag: c.etag, lastModified: c.lastModified, stamp: c.stamp };
  if (c.tmp !== null) await rm(c.tmp, { force: true }).catch(() => {});
}

/** Bounds and location for {@link refreshSource}. */
export interface FetchSettings {
  readonly dir: string;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly now: () => number;
  /** Aborts in-flight downloads (plugin stop). */
  readonly signal?: AbortSignal;
}

/**
 * Refreshes one source. Never throws: failures are recorded in
 * `state.lastError` and the good content stays. New content is left in
 * `state.candidate` (result `changed`).
 */
export async function refreshSource(state: SourceState, s: FetchSettings): Promise<RefreshResult> {
  const list = state.list;
  try {
    if (list.kind === 'inline') {
      state.lastRefresh = s.now();
      return state.candidate !== null ? 'changed' : 'unchanged';
    }
    if (list.kind === 'file') return await refreshFile(state, s);
    return await refreshUrl(state, s);
  } catch (err) {
    state.lastError = err instanceof Error ? err.message : String(err);
    return 'failed';
  }
}

async function refreshFile(state: SourceState, s: FetchSettings): Promise<RefreshResult> {
  const path = state.list.location;
  const st = await stat(path);
  if (!st.isFile()) throw new Error(`${path} is not a file`);
  if (st.size > s.maxBytes) throw new Error(`${path} is ${st.size} bytes, above refresh.maxBytes (${s.maxBytes})`);
  const stamp = `${st.size}:${st.mtimeMs}`;
  state.lastRefresh = s.now();
  if (state.content !== null && stamp === state.fileStamp) {
    state.lastError = null;
    return 'unchanged';
  }
  // The same bad file as last time: still rejected, nothing to judge again.
  if (state.rejected !== null && stamp === state.rejected.stamp) return 'unchanged';
  // A snapshot, so the last good copy survives the file being truncated or edited later.
  await discard(state, false);
  await mkdir(s.dir, { recursive: true });
  const tmp = tempPath(s.dir, state.list);
  await copyFile(path, tmp);
  const bytes = (await stat(tmp)).size;
  state.candidate = { content: { kind: 'file', path: tmp }, bytes, tmp, etag: null, lastModified: null, stamp };
  state.lastError = null;
  return 'changed';
}

async function refreshUrl(state: SourceState, s: FetchSettings): Promise<RefreshResult> {
  const url = state.list.location;
  const headers: Record<string, string> = { 'user-agent': 'heimdall-blocking/0.1', accept: 'text/plain, */*' };
  // Ask "changed since the copy we know?": the rejected one when the last download was rejected.
  const known = state.rejected ?? (state.content !== null ? state : null);
  if (known !== null) {
    if (known.etag) headers['if-none-match'] = known.etag;
    if (known.lastModified) headers['if-modified-since'] = known.lastModified;
  }
  const timeout = AbortSignal.timeout(s.timeoutMs);
  const signal = s.signal ? AbortSignal.any([timeout, s.signal]) : timeout;
  const res = await fetch(url, { headers, signal, redirect: 'follow' });
  if (res.status === 304 && known !== null) {
    await res.body?.cancel();
    state.lastRefresh = s.now();
    if (state.rejected === null) state.lastError = null;
    return 'unchanged';
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`GET ${url}: HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  if (declared > s.maxBytes) {
    await res.body?.cancel();
    throw new Error(`GET ${url}: ${declared} bytes, above refresh.maxBytes (${s.maxBytes})`);
  }
  await discard(state, false);
  await mkdir(s.dir, { recursive: true });
  // Unique per list and process: the same URL may be listed twice and downloaded concurrently.
  const tmp = tempPath(s.dir, state.list);
  let bytes = 0;
  const out = createWriteStream(tmp);
  const closed = new Promise<void>((resolve, reject) => {
    out.once('close', resolve);
    out.once('error', reject);
  });
  try {
    const html = (res.headers.get('content-type') ?? '').includes('html');
    if (res.body !== null) {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        if (bytes === 0 && html && looksLikeHtml(chunk)) {
          // A captive portal or an error page served with 200 must not replace a good list.
          throw new Error(`GET ${url}: got an HTML page, not a list`);
        }
        bytes += chunk.length;
        if (bytes > s.maxBytes) throw new Error(`GET ${url}: body above refresh.maxBytes (${s.maxBytes})`);
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', r));
      }
    }
    out.end();
    await closed;
  } catch (err) {
    out.destroy();
    await closed.catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  state.candidate = {
    content: { kind: 'file', path: tmp },
    bytes,
    tmp,
    etag: res.headers.get('etag'),
    lastModified: res.headers.get('last-modified'),
    stamp: null,
  };
  state.lastRefresh = s.now();
  state.lastError = null;
  return 'changed';
}
