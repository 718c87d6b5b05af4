/**
 * Where the slow answers of a fixed-rate run spent their time, seen from the
 * server's core: `perf record -k CLOCK_MONOTONIC -C <core> -e
 * sched:sched_switch` records what ran on that core and when, batchperf's
 * slow log (`-L`, first line `t <start µs>`) gives each slow answer's send
 * and receive times on the same clock, and lib/gc-preload.mjs gives the V8
 * pauses of Node servers. For every slow answer the window from send to
 * receive is split into what the core did meanwhile:
 *
 * - `server main, GC` / `server main, other`: the server's main thread ran
 *   (a V8 pause, or its own work: JavaScript, syscalls, the queries queued
 *   behind the one measured);
 * - `server thread <name/tid>`: one of the server's other threads (V8
 *   helpers, libuv's pool) ran on the core the main thread needs;
 * - `idle`: nothing ran on the core while the answer was outstanding (the
 *   datagram was on its way, the wake-up was late, or the hypervisor did not
 *   run this virtual CPU: a guest cannot see that last one, it shows as
 *   whatever the guest thought was running);
 * - other processes by name (the machine's services, kernel threads).
 *
 * The same split over the whole run is printed beside it: a share much
 * larger inside slow windows than over the run points at the cause.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/**
 * Starts recording the scheduler's switches on `cores` for `seconds`; resolves
 * when perf has written `file`. With `stacks`, also samples those cores at
 * 10 kHz with call stacks (for {@link longRuns}; Node servers need
 * `--perf-basic-prof` for their JavaScript frames to have names). `child`:
 * the perf process, for the caller to stop early (SIGINT) when its run fails.
 */
export function recordSched(cores: number[], file: string, seconds: number, stacks = false): { done: Promise<void>; child: ChildProcess } {
  const sampling = stacks ? ['-e', 'cpu-clock/freq=10000/', '-g'] : [];
  const child = spawn(
    'perf',
    ['record', '-q', '-k', 'CLOCK_MONOTONIC', '-C', cores.join(','), '-e', 'sched:sched_switch', ...sampling, '-o', file, '--', 'sleep', String(seconds)],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`perf record exited ${code}: ${err.slice(0, 1000)}`))));
  });
  return { done, child };
}

/** Whether `perf record -e sched:sched_switch` can run here (perf installed, tracepoints readable). */
export function canRecordSched(): boolean {
  const r = spawnSync('perf', ['record', '-q', '-k', 'CLOCK_MONOTONIC', '-e', 'sched:sched_switch', '-o', '/dev/null', '--', 'true'], {
    stdio: 'ignore',
  });
  return r.status === 0;
}

/** A split of time into categories, µs. */
export type Split = Map<string, number>;

export interface TailAttribution {
  /** Slow answers in the log, and the µs of their windows summed. */
  readonly answers: number;
  /** p99 over all `completed` answers (from the slow log: null when under its threshold). */
  readonly p99Us: number | null;
  /**
   * p99 over the answers whose send-to-receive window did not overlap a run
   * of the platform's `kdamond` on any traced core, and how many were left
   * out: what the server itself is responsible for.
   */
  readonly p99WithoutPlatformUs: number | null;
  readonly platformAnswers: number;
  /** The platform thread's runs: count, total and longest µs. */
  readonly platformRuns: number;
  readonly platformUs: number;
  readonly platformMaxUs: number;
  readonly windowUs: number;
  /** What the core did during the slow answers' windows. */
  readonly inSlow: Split;
  /** What the core did over the whole run (from the first to the last switch recorded). */
  readonly overall: Split;
  /** Slow answers whose window was at least half one category, by category. */
  readonly dominated: Map<string, number>;
}

/** From this time on, the core ran thread `tid` (0: idle). */
export interface Interval {
  readonly start: number;
  readonly tid: number;
  readonly comm: string;
}

/** Parses `perf script -F cpu,time,trace` of a sched_switch recording into what ran on each core, in order (µs). */
export function parseSchedScript(text: string): Map<number, Interval[]> {
  const out = new Map<number, Interval[]>();
  for (const line of text.split('\n')) {
    const m = /^\s*\[(\d+)\]\s+([\d.]+):.*next_comm=(.*?) next_pid=(\d+)/.exec(line);
    if (m === null) continue;
    const cpu = Number(m[1]);
    let tl = out.get(cpu);
    if (tl === undefined) out.set(cpu, (tl = []));
    tl.push({ start: Number(m[2]) * 1e6, comm: m[3]!, tid: Number(m[4]) });
  }
  return out;
}

/**
 * The platform's own stalls: DAMON's `kdamond` kernel thread (this VM's
 * kernel runs it to page out cold memory) holds a core for milliseconds at
 * a time, a few times a second, whatever else runs there. Its runs on any
 * traced core, as `[start, end)` µs.
 */
function platformStalls(tls: Map<number, Interval[]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const tl of tls.values()) {
    for (let i = 0; i < tl.length - 1; i++) if (tl[i]!.comm.startsWith('kdamond')) out.push([tl[i]!.start, tl[i + 1]!.start]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** GC pauses `[start, end)` in µs from a gc-preload log's text, sorted. */
function gcPauses(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const line of text.split('\n')) {
    const [kind, start, dur] = line.split(' ');
    // Incremental marking steps and weak callbacks are not stop-the-world pauses of note here.
    if ((kind === 'minor' || kind === 'major') && Number(dur) > 0) out.push([Number(start), Number(start) + Number(dur)]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** Threads of a process (tids), read while it runs. */
export function threadsOf(pid: number): Set<number> {
  try {
    return new Set(readdirSync(`/proc/${pid}/task`).map(Number));
  } catch {
    return new Set([pid]);
  }
}

const threadNames = new Map<number, string>();

/** `name/tid` of a thread of `pid` (V8 and libuv name theirs on newer Node; `node` otherwise). */
function threadName(pid: number, tid: number): string {
  let n = threadNames.get(tid);
  if (n === undefined) {
    try {
      n = `${readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()}/${tid}`;
    } catch {
      n = String(tid);
    }
    threadNames.set(tid, n);
  }
  return n;
}

function overlap(a0: number, a1: number, b0: number, b1: number): number {
  return Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
}

/**
 * Splits each slow answer's window (from a batchperf `-L` log) by what ran
 * on the traced core; `tids` are the server's threads (its pid first is the
 * main thread), `gcFile` its gc-preload log when it is a Node process.
 */
export function attributeTail(
  perfData: string,
  slowLog: string,
  completed: number,
  core: number,
  pid: number,
  tids: Set<number>,
  gcFile?: string,
): TailAttribution {
  // Only the tracepoint's lines carry `next_comm=` (samples of a `stacks` recording are skipped).
  const r = spawnSync('perf', ['script', '-i', perfData, '-F', 'cpu,time,trace'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`perf script: ${r.stderr.slice(0, 1000)}`);
  const gcText = gcFile !== undefined && existsSync(gcFile) ? readFileSync(gcFile, 'utf8') : '';
  return attribute(parseSchedScript(r.stdout), readFileSync(slowLog, 'utf8'), completed, core, pid, tids, gcText, (tid) => threadName(pid, tid));
}

/**
 * {@link attributeTail} on parsed input: `tls` from {@link parseSchedScript},
 * the slow log's and gc log's text; `nameOf` names the server's other threads.
 */
export function attribute(
  tls: Map<number, Interval[]>,
  slowLogText: string,
  completed: number,
  core: number,
  pid: number,
  tids: Set<number>,
  gcText = '',
  nameOf: (tid: number) => string = String,
): TailAttribution {
  const tl = tls.get(core) ?? [];
  const platform = platformStalls(tls);
  const gc = gcPauses(gcText);
  let t0 = Number.NaN;
  const windows: Array<[number, number]> = [];
  for (const line of slowLogText.split('\n')) {
    const [kind, a, b] = line.split(' ');
    if (kind === 't') t0 = Number(a);
    else if (kind === 'a') windows.push([t0 + Number(a), t0 + Number(a) + Number(b)]);
  }
  if (Number.isNaN(t0)) throw new Error('slow log without its start line (batchperf too old?)');
  windows.sort((x, y) => x[0] - y[0]);
  const name = (iv: Interval): string =>
    iv.tid === 0 ? 'idle' : iv.tid === pid ? 'server main' : tids.has(iv.tid) ? `server thread ${nameOf(iv.tid)}` : iv.comm;
  const add = (split: Split, key: string, us: number): void => {
    if (us > 0) split.set(key, (split.get(key) ?? 0) + us);
  };
  /** Adds the time of [w0, w1) to `split`, the main thread's part split into GC and other. */
  const splitRange = (split: Split, w0: number, w1: number, first: number): void => {
    for (let i = first; i < tl.length; i++) {
      const iv = tl[i]!;
      if (iv.start >= w1) break;
      const end = tl[i + 1]?.start ?? w1;
      const us = overlap(w0, w1, iv.start, end);
      if (us <= 0) continue;
      const key = name(iv);
      if (key === 'server main') {
        let inGc = 0;
        for (const [g0, g1] of gc) {
          if (g0 >= Math.min(w1, end)) break;
          inGc += overlap(Math.max(w0, iv.start), Math.min(w1, end), g0, g1);
        }
        add(split, 'server main, GC', inGc);
        add(split, 'server main, other', us - inGc);
      } else add(split, key, us);
    }
  };
  /** Index of the last interval starting at or before `t` (binary search). */
  const at = (t: number): number => {
    let lo = 0;
    let hi = tl.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (tl[mid]!.start <= t) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const inSlow: Split = new Map();
  const dominated = new Map<string, number>();
  let windowUs = 0;
  for (const [w0, w1] of windows) {
    if (tl.length === 0 || w1 <= tl[0]!.start) continue;
    const one: Split = new Map();
    splitRange(one, w0, w1, at(w0));
    windowUs += w1 - w0;
    for (const [k, us] of one) {
      add(inSlow, k, us);
      if (us >= (w1 - w0) / 2) dominated.set(k, (dominated.get(k) ?? 0) + 1);
    }
  }
  const overall: Split = new Map();
  if (tl.length > 1) splitRange(overall, tl[0]!.start, tl[tl.length - 1]!.start, 0);
  // The p99 with and without the answers a platform stall overlapped. Answers under the log's
  // threshold are all faster than any logged one, so a quantile that falls among them is unknown (null).
  const latencies = windows.map(([w0, w1]) => w1 - w0);
  let p = 0;
  const clean: number[] = [];
  for (const [w0, w1] of windows) {
    while (p < platform.length && platform[p]![1] <= w0) p++;
    let hit = false;
    for (let q = p; q < platform.length && platform[q]![0] < w1; q++) if (overlap(w0, w1, platform[q]![0], platform[q]![1]) > 0) hit = true;
    if (!hit) clean.push(w1 - w0);
  }
  const platformAnswers = windows.length - clean.length;
  const quantile = (slow: number[], total: number): number | null => {
    const rank = Math.ceil(total * 0.99);
    const fromTop = total - rank;
    if (fromTop >= slow.length) return null;
    return [...slow].sort((a, b) => b - a)[fromTop]!;
  };
  return {
    answers: windows.length,
    p99Us: quantile(latencies, completed),
    p99WithoutPlatformUs: quantile(clean, completed - platformAnswers),
    platformAnswers,
    platformRuns: platform.length,
    platformUs: platform.reduce((s, [a, b]) => s + b - a, 0),
    platformMaxUs: platform.reduce((m, [a, b]) => Math.max(m, b - a), 0),
    windowUs,
    inSlow,
    overall,
    dominated,
  };
}

/** One line per category: share of the slow windows, share of the whole run, answers dominated. */
export function formatAttribution(a: TailAttribution, top = 8): string[] {
  const total = (s: Split): number => [...s.values()].reduce((x, y) => x + y, 0) || 1;
  const tSlow = total(a.inSlow);
  const tAll = total(a.overall);
  const keys = [...new Set([...a.inSlow.keys(), ...a.overall.keys()])].sort((x, y) => (a.inSlow.get(y) ?? 0) - (a.inSlow.get(x) ?? 0));
  const us = (v: number | null): string => (v === null ? 'under the threshold' : `${Math.round(v)} µs`);
  const lines = [
    `p99 ${us(a.p99Us)}; without the ${a.platformAnswers} answers that kdamond overlapped (${a.platformRuns} runs, ${(a.platformUs / 1000).toFixed(1)} ms, longest ${(a.platformMaxUs / 1000).toFixed(2)} ms): ${us(a.p99WithoutPlatformUs)}`,
    `${a.answers} slow answers, ${(a.windowUs / 1000).toFixed(1)} ms of windows: category  % of slow windows  % of the run  answers it dominated`,
  ];
  for (const k of keys.slice(0, top)) {
    lines.push(
      `${k.padEnd(22)} ${((100 * (a.inSlow.get(k) ?? 0)) / tSlow).toFixed(1).padStart(5)} %  ${((100 * (a.overall.get(k) ?? 0)) / tAll).toFixed(1).padStart(5)} %  ${a.dominated.get(k) ?? 0}`,
    );
  }
  return lines;
}

/** What the server's main thread ran in its long on-CPU stretches, against all its samples. */
export interface LongRuns {
  /** Stretches of at least `minUs` on the CPU without a switch, their count and µs in all. */
  readonly runs: number;
  readonly runUs: number;
  /** Samples of the main thread inside them and over the whole recording. */
  readonly samplesInRuns: number;
  readonly samples: number;
  /** Top frames (leaf, and the first named JavaScript or native caller) by samples inside long runs, with their count overall. */
  readonly frames: Array<{ frame: string; inRuns: number; overall: number }>;
}

/**
 * The main thread's (`pid`) on-CPU stretches of at least `minUs` on `core`
 * in a recording made with `stacks`, and which frames its 10 kHz samples hit
 * inside them compared with everywhere: a frame much more common inside long
 * runs is what makes them long.
 */
export function longRuns(perfData: string, core: number, pid: number, minUs = 150, top = 15): LongRuns {
  const r = spawnSync('perf', ['script', '-i', perfData, '-F', 'tid,cpu,time,event,trace,ip,sym'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`perf script: ${r.stderr.slice(0, 1000)}`);
  return longRunsOf(r.stdout, core, pid, minUs, top);
}

/** {@link longRuns} on the text of `perf script -F tid,cpu,time,event,trace,ip,sym`. */
export function longRunsOf(text: string, core: number, pid: number, minUs = 150, top = 15): LongRuns {
  const runs: Array<[number, number]> = [];
  const samples: Array<{ t: number; frame: string }> = [];
  let onSince = Number.NaN;
  const blocks = text.split('\n\n');
  for (const block of blocks) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    const head = /^\s*(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):(.*)$/.exec(lines[0] ?? '');
    if (head === null || Number(head[2]) !== core) continue;
    const t = Number(head[3]) * 1e6;
    if (head[4] === 'sched:sched_switch') {
      const m = /prev_pid=(\d+).*next_pid=(\d+)/.exec(head[5]!);
      if (m === null) continue;
      if (Number(m[1]) === pid && !Number.isNaN(onSince)) {
        if (t - onSince >= minUs) runs.push([onSince, t]);
        onSince = Number.NaN;
      }
      if (Number(m[2]) === pid) onSince = t;
    } else if (Number(head[1]) === pid) {
      // Stack lines: `<ip> <symbol>`, leaf first. Name the leaf and the first caller that has a name.
      const syms = lines
        .slice(1)
        .map((l) => l.trim().replace(/^[0-9a-f]+\s+/, ''))
        .filter((x) => x !== '[unknown]');
      const frame = syms.length === 0 ? '[unknown]' : syms.length === 1 ? syms[0]! : `${syms[0]} < ${syms[1]}`;
      samples.push({ t, frame });
    }
  }
  const inRuns = new Map<string, number>();
  const overall = new Map<string, number>();
  let i = 0;
  let samplesInRuns = 0;
  for (const s of samples) {
    overall.set(s.frame, (overall.get(s.frame) ?? 0) + 1);
    while (i < runs.length && runs[i]![1] < s.t) i++;
    if (i < runs.length && runs[i]![0] <= s.t) {
      samplesInRuns++;
      inRuns.set(s.frame, (inRuns.get(s.frame) ?? 0) + 1);
    }
  }
  return {
    runs: runs.length,
    runUs: runs.reduce((a, [x, y]) => a + y - x, 0),
    samplesInRuns,
    samples: samples.length,
    frames: [...inRuns]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([frame, n]) => ({ frame, inRuns: n, overall: overall.get(frame) ?? 0 })),
  };
}

/** Lines for {@link LongRuns}: share of the long runs' samples and of all samples, per frame. */
export function formatLongRuns(l: LongRuns, minUs = 150): string[] {
  const lines = [
    `main thread on the CPU for ${minUs} µs or more at a stretch: ${l.runs} times, ${(l.runUs / 1000).toFixed(1)} ms; ${l.samplesInRuns} of its ${l.samples} samples fell there. frame  % of those  % of all`,
  ];
  for (const f of l.frames)
    lines.push(
      `${((100 * f.inRuns) / Math.max(1, l.samplesInRuns)).toFixed(1).padStart(5)} %  ${((100 * f.overall) / Math.max(1, l.samples)).toFixed(1).padStart(5)} %  ${f.frame.slice(0, 140)}`,
    );
  return lines;
}
