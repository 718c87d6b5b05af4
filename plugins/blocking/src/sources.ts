/**
 * List sources: local files, inline text and HTTP(S) downloads with
 * conditional requests (ETag / If-Modified-Since), a byte bound, a timeout,
 * and an on-disk copy of the last good download (so a restart without
 * network still blocks).
 *
 * Downloads stream to `<dir>/<sha1(url)>.list.tmp` and are renamed into place
 * only when complete and within bounds: a half-written or oversized download
 * never replaces the last good copy. Metadata (ETag, Last-Modified, time)
 * lives next to it in `<sha1(url)>.json`.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildContent } from './build.js';
import type { ResolvedList } from './options.js';

/** What is known about one list between refreshes. */
export interface SourceState {
  readonly list: ResolvedList;
  /** Content for the next build; null when nothing good has ever been obtained. */
  content: BuildContent | null;
  /** Epoch ms of the last successful fetch/read (including 304). */
  lastRefresh: number | null;
  /** Epoch ms when the content last changed. */
  lastChange: number | null;
  lastError: string | null;
  etag: string | null;
  lastModified: string | null;
  /** File sources: size+mtime of the last read, to detect changes. */
  fileStamp: string | null;
  /** Bytes of the current content. */
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

/** Result of one refresh of one source. */
export type RefreshResult = 'changed' | 'unchanged' | 'failed';

/** Fresh state for a list. */
export function initialState(list: ResolvedList): SourceState {
  return {
    list,
    content: list.kind === 'inline' ? { kind: 'text', text: list.location } : null,
    lastRefresh: null,
    lastChange: null,
    lastError: null,
    etag: null,
    lastModified: null,
    fileStamp: null,
    bytes: list.kind === 'inline' ? Buffer.byteLength(list.location) : 0,
  };
}

interface CacheMeta {
  url: string;
  etag: string | null;
  lastModified: string | null;
  fetchedAt: number;
  bytes: number;
}

function cacheBase(dir: string, url: string): string {
  return join(dir, createHash('sha1').update(url).digest('hex'));
}

/**
 * Loads the on-disk copy of a URL list left by a previous run, if any (the
 * offline-start path). Sets content and validators; does not touch the network.
 */
export async function loadFromDisk(state: SourceState, dir: string): Promise<boolean> {
  if (state.list.kind !== 'url') return false;
  const base = cacheBase(dir, state.list.location);
  try {
    const meta = JSON.parse(await readFile(`${base}.json`, 'utf8')) as CacheMeta;
    if (meta.url !== state.list.location) return false;
    const st = await stat(`${base}.list`);
    state.content = { kind: 'file', path: `${base}.list` };
    state.etag = meta.etag;
    state.lastModified = meta.lastModified;
    state.lastRefresh = meta.fetchedAt;
    state.lastChange = meta.fetchedAt;
    state.bytes = st.size;
    return true;
  } catch {
    return false;
  }
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
 * `state.lastError` and the previous content stays.
 */
export async function refreshSource(state: SourceState, s: FetchSettings): Promise<RefreshResult> {
  const list = state.list;
  try {
    if (list.kind === 'inline') {
      state.lastRefresh = s.now();
      if (state.lastChange === null) {
        state.lastChange = s.now();
        return 'changed';
      }
      return 'unchanged';
    }
    if (list.kind === 'file') return await refreshFile(state, s);
    return await refreshUrl(state, s);
  } catch (err) {
    state.lastError = err instanceof Error ? err.message : String(err);
    return 'failed';
  }
}

async function refreshFile(state: SourceState, s: FetchSettings): Promise<RefreshResult> {
  const st = await stat(state.list.location);
  if (!st.isFile()) throw new Error(`${state.list.location} is not a file`);
  if (st.size > s.maxBytes) throw new Error(`${state.list.location} is ${st.size} bytes, above refresh.maxBytes (${s.maxBytes})`);
  const stamp = `${st.size}:${st.mtimeMs}`;
  state.lastRefresh = s.now();
  state.lastError = null;
  if (stamp === state.fileStamp && state.content !== null) return 'unchanged';
  state.fileStamp = stamp;
  state.content = { kind: 'file', path: state.list.location };
  state.bytes = st.size;
  state.lastChange = s.now();
  return 'changed';
}

async function refreshUrl(state: SourceState, s: FetchSettings): Promise<RefreshResult> {
  const url = state.list.location;
  const headers: Record<string, string> = { 'user-agent': 'heimdall-blocking/0.1', accept: 'text/plain, */*' };
  if (state.content !== null) {
    if (state.etag) headers['if-none-match'] = state.etag;
    if (state.lastModified) headers['if-modified-since'] = state.lastModified;
  }
  const timeout = AbortSignal.timeout(s.timeoutMs);
  const signal = s.signal ? AbortSignal.any([timeout, s.signal]) : timeout;
  const res = await fetch(url, { headers, signal, redirect: 'follow' });
  if (res.status === 304 && state.content !== null) {
    await res.body?.cancel();
    state.lastRefresh = s.now();
    state.lastError = null;
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
  await mkdir(s.dir, { recursive: true });
  const base = cacheBase(s.dir, url);
  // Unique per list and process: the same URL may be listed twice and downloaded concurrently.
  const tmp = `${base}.list.${process.pid}.${state.list.id}.tmp`;
  let bytes = 0;
  const out = createWriteStream(tmp);
  const closed = new Promise<void>((resolve, reject) => {
    out.once('close', resolve);
    out.once('error', reject);
  });
  try {
    if (res.body === null) throw new Error(`GET ${url}: empty body`);
    const html = (res.headers.get('content-type') ?? '').includes('html');
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      if (bytes === 0 && html && looksLikeHtml(chunk)) {
        // A captive portal or an error page served with 200 must not replace a good list.
        throw new Error(`GET ${url}: got an HTML page, not a list`);
      }
      bytes += chunk.length;
      if (bytes > s.maxBytes) throw new Error(`GET ${url}: body above refresh.maxBytes (${s.maxBytes})`);
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', r));
    }
    out.end();
    await closed;
  } catch (err) {
    out.destroy();
    await closed.catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  await rename(tmp, `${base}.list`);
  const meta: CacheMeta = {
    url,
    etag: res.headers.get('etag'),
    lastModified: res.headers.get('last-modified'),
    fetchedAt: s.now(),
    bytes,
  };
  await writeFile(`${base}.json`, JSON.stringify(meta));
  state.content = { kind: 'file', path: `${base}.list` };
  state.etag = meta.etag;
  state.lastModified = meta.lastModified;
  state.bytes = bytes;
  state.lastRefresh = meta.fetchedAt;
  state.lastChange = meta.fetchedAt;
  state.lastError = null;
  return 'changed';
}
