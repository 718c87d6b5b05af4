/**
 * Temp files named `<name>.<pid>[.<n>].tmp`: written by one process, renamed
 * into place when complete. A process killed in between (`kill -9`) leaves
 * one behind; {@link sweepStaleTemp} removes those of dead processes, so
 * nothing accumulates across crashes.
 */
import process from 'node:process';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Deletes `*.<pid>[.<n>].tmp` files in `dir` whose process is gone. Files of live processes stay. Returns how many were removed. */
export async function sweepStaleTemp(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const m = /\.(\d+)(?:\.\d+)?\.tmp$/.exec(name);
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || isAlive(pid)) continue;
    await rm(join(dir, name), { force: true }).catch(() => {});
    removed++;
  }
  return removed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
