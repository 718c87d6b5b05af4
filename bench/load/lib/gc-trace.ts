/**
 * Reading V8's `--trace-gc` lines (one per collection, from every isolate of
 * the process): how often the young generation was scavenged, how much the
 * heap kept after each scavenge, and the mark-compacts with their pauses.
 */

/** What a stretch of `--trace-gc` output says. */
export interface GcSummary {
  scavenges: number;
  markCompacts: number;
  /** Mean growth of the heap (after collection) from one scavenge to the next, over the steps where it grew or held. */
  growthKBPerScavenge: number;
  /** The main-thread pause of each mark-compact, ms. */
  pausesMs: number[];
}

const LINE = /^\[\d+:(0x[0-9a-f]+)\]\s+[\d.]+ ms: (Scavenge|Mark-Compact)[^,]*?-> ([\d.]+) \([\d.]+\) MB, ([\d.]+) \//;

/**
 * Summarizes `--trace-gc` output. Only the isolate with the most lines is
 * read (the main thread's; worker threads print their own collections with
 * another isolate address).
 */
export function gcSummary(trace: string): GcSummary {
  const lines = trace
    .split('\n')
    .map((l) => LINE.exec(l))
    .filter((m) => m !== null);
  const byIsolate = new Map<string, number>();
  for (const m of lines) byIsolate.set(m[1]!, (byIsolate.get(m[1]!) ?? 0) + 1);
  const main = [...byIsolate].sort((a, b) => b[1] - a[1])[0]?.[0];
  const after: number[] = [];
  const pausesMs: number[] = [];
  for (const m of lines) {
    if (m[1] !== main) continue;
    if (m[2] === 'Mark-Compact') pausesMs.push(Number(m[4]));
    else after.push(Number(m[3]));
  }
  // A drop between two scavenges is a mark-compact's work, not growth: only the steps that grew or held count.
  let grew = 0;
  let steps = 0;
  for (let i = 1; i < after.length; i++) {
    const d = after[i]! - after[i - 1]!;
    if (d >= 0) {
      grew += d;
      steps++;
    }
  }
  return { scavenges: after.length, markCompacts: pausesMs.length, growthKBPerScavenge: steps === 0 ? 0 : (grew * 1024) / steps, pausesMs };
}
