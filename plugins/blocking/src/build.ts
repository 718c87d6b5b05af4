/**
 * Running a build: the same code in a `worker_threads` worker (default: the
 * main thread stays free for queries) or inline in chunks that yield to the
 * event loop.
 */
import { createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type BuildOutput, EngineBuilder, type SourceSpec } from './engine.js';
import type { HashSeed } from './hash.js';
import { parseStream, parseText } from './parser.js';
import type { RegexLimits } from './regex-guard.js';

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

/** Inline chunk size: ~256 KiB of text is 1–3 ms of parsing. */
const CHUNK = 256 * 1024;

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
      await parseStream(createReadStream(content.path, { highWaterMark: 64 * 1024 }), sink, counts, opts);
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
  return builder.finish(started);
}

/** Builds in a fresh worker thread and transfers the typed arrays back. */
export function buildInWorker(input: BuildInput, timeoutMs = 300_000): Promise<BuildOutput> {
  const here = import.meta.url;
  // Under vitest the sources are TypeScript: run the .ts worker through tsx.
  const ts = here.endsWith('.ts');
  const url = new URL(ts ? './build-worker.ts' : './build-worker.js', here);
  return new Promise<BuildOutput>((resolve, reject) => {
    let settled = false;
    const worker = new Worker(fileURLToPath(url), {
      workerData: input,
      execArgv: ts ? ['--import', 'tsx'] : [],
      // The build allocates big typed arrays: give it room beyond the default young generation.
      resourceLimits: { maxOldGenerationSizeMb: 1024 },
    });
    const timer = setTimeout(() => {
      finish(new Error(`list build timed out after ${timeoutMs} ms`));
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
      else finish(new Error(msg.error));
      void worker.terminate();
    });
    worker.once('error', (err) => finish(err));
    worker.once('exit', (code) => finish(new Error(`list build worker exited with code ${code}`)));
  });
}
