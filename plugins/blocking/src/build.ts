/**
 * Running a build: the same code in a `worker_threads` worker (default: the
 * main thread stays free for queries) or inline in chunks that yield to the
 * event loop.
 */
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { HeimdallError, registerErrorCodes } from '@heimdall/core/errors';
import { type BuildOutput, EngineBuilder, type SourceSpec } from './engine.js';
import type { HashSeed } from './hash.js';
import { parseStream, parseText } from './parser.js';
import type { RegexLimits } from './regex-guard.js';
import { sweepStaleTemp } from './temp-files.js';

/** Where a source's text comes from for one build. */
export type BuildContent = { readonly kind: 'text'; readonly text: string } | { readonly kind: 'file'; readonly path: string };

/** Everything a build needs (structured-cloneable). */
export interface BuildInput {
  readonly seed: HashSeed;
  readonly sources: readonly { readonly spec: SourceSpec; readonly content: BuildContent }[];
  readonly regex: RegexLimits;
  /** Expected total entries (pre-sizes the table). */
  readonly expected: number;
}

/**
 * Inline chunk size between yields: 16 KiB is ~500 hosts lines, well under a
 * millisecond of parsing, so queries wait at most that long.
 */
const CHUNK = 16 * 1024;

/**
 * Builds in the current thread. With `yieldEvery`, awaits a macrotask
 * between chunks so queries keep flowing (slower overall).
 */
export async function buildEngine(input: BuildInput, yieldEvery = false): Promise<BuildOutput> {
  const started = performance.now();
  const builder = new EngineBuilder(input.seed, Math.max(1024, input.expected));
  const pause = () => new Promise<void>((r) => setImmediate(r));
  for (const { spec, content } of input.sources) {
    const counts = builder.countsFor(spec);
    const sink = builder.sinkFor(spec, counts);
    const opts = {
      regex: input.regex,
      onInvalid: (line: string, why: string) => {
        if (counts.samples.length < 5) counts.samples.push(`${line.slice(0, 100)} (${why})`);
      },
    };
    if (content.kind === 'file') {
      await parseStream(createReadStream(content.path, { highWaterMark: yieldEvery ? CHUNK : 256 * 1024 }), sink, counts, opts);
    } else if (!yieldEvery || content.text.length <= CHUNK) {
      parseText(content.text, sink, counts, opts);
    } else {
      const text = content.text;
      let pos = 0;
      while (pos < text.length) {
        let end = Math.min(text.length, pos + CHUNK);
        if (end < text.length) {
          const nl = text.indexOf('\n', end);
          end = nl < 0 ? text.length : nl + 1;
        }
        parseText(text.slice(pos, end), sink, counts, opts);
        pos = end;
        await pause();
      }
    }
    if (yieldEvery) await pause();
  }
  // Inline: skip the compaction rehash (a long synchronous step); the table stays at its pre-sized capacity.
  return builder.finish(started, !yieldEvery);
}

/** The codes of {@link BuildError}, each with its registry description. */
const BUILD_ERROR_CODES = {
  WORKER_FAILED: 'the blocking list build worker could not run (the caller may build inline instead)',
  BUILD_FAILED: 'the blocking list build itself failed (e.g. a file vanished)',
  BUILD_TIMEOUT: 'the blocking list build did not finish in time',
} as const;
registerErrorCodes(BUILD_ERROR_CODES);

/**
 * Why a worker build failed: `WORKER_FAILED` (the thread could not run: the
 * caller may build inline instead), `BUILD_FAILED` (the build itself failed,
 * e.g. a file vanished), `BUILD_TIMEOUT`. Registered in core's error registry.
 */
export class BuildError extends HeimdallError {
  declare readonly code: keyof typeof BUILD_ERROR_CODES;
  constructor(code: BuildError['code'], message: string, cause?: unknown) {
    super(code, `plugin/blocking: ${message}`, cause === undefined ? undefined : { cause });
  }
}

let bundledWorker: Promise<string> | null = null;

/**
 * Path of the worker script. From the compiled package it is
 * `dist/build-worker.js`. When running from TypeScript sources (vitest), the
 * worker is bundled once with esbuild into a temp file: loader hooks such as
 * tsx do not reach worker threads on Node 20.
 */
function workerPath(): Promise<string> {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return Promise.resolve(fileURLToPath(new URL('./build-worker.js', here)));
  bundledWorker ??= (async () => {
    const esbuild = (await import('esbuild' as string)) as {
      build(o: Record<string, unknown>): Promise<unknown>;
    };
    // One stable file per checkout (no temp dirs piling up); written under a
    // per-process name and renamed, so parallel test processes never read a
    // half-written bundle. A process killed mid-write leaves its `.tmp`: swept here.
    const dir = join(tmpdir(), 'heimdall-blocking-worker');
    await mkdir(dir, { recursive: true });
    await sweepStaleTemp(dir);
    const key = createHash('sha1').update(here).digest('hex').slice(0, 12);
    const outfile = join(dir, `build-worker-${key}.mjs`);
    const tmp = `${outfile}.${process.pid}.tmp`;
    await esbuild.build({
      entryPoints: [fileURLToPath(new URL('./build-worker.ts', here))],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: tmp,
      logLevel: 'silent',
    });
    await rename(tmp, outfile);
    return outfile;
  })();
  return bundledWorker;
}

/** Builds in a fresh worker thread and transfers the typed arrays back. */
export async function buildInWorker(input: BuildInput, timeoutMs = 300_000): Promise<BuildOutput> {
  let worker: Worker;
  try {
    worker = new Worker(await workerPath(), {
      workerData: input,
      // The build allocates big typed arrays: give it room beyond the default heap.
      resourceLimits: { maxOldGenerationSizeMb: 1024 },
    });
  } catch (err) {
    throw new BuildError('WORKER_FAILED', `cannot start the list build worker: ${(err as Error).message}`, err);
  }
  return new Promise<BuildOutput>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      finish(new BuildError('BUILD_TIMEOUT', `list build timed out after ${timeoutMs} ms`));
      void worker.terminate();
    }, timeoutMs);
    const finish = (err: Error | null, out?: BuildOutput) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(out!);
    };
    worker.once('message', (msg: { ok: true; out: BuildOutput } | { ok: false; error: string }) => {
      if (msg.ok) finish(null, msg.out);
      else finish(new BuildError('BUILD_FAILED', msg.error));
      void worker.terminate();
    });
    worker.once('error', (err) => finish(new BuildError('WORKER_FAILED', `list build worker failed: ${err.message}`, err)));
    worker.once('exit', (code) => finish(new BuildError('WORKER_FAILED', `list build worker exited with code ${code}`)));
  });
}
