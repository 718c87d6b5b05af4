/**
 * `heimdall --check` preflight: what a start would trip over, without
 * changing anything (no download, no directory created).
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { BlockingConfig } from './options.js';

/** Problems with the configured lists and the cache directory, each naming the option path. */
export async function checkLists(config: BlockingConfig): Promise<string[]> {
  const problems: string[] = [];
  for (const l of config.lists) {
    if (l.kind === 'inline') continue;
    const what = l.required ? 'required list' : 'list';
    // URLs are not fetched here (a preflight stays offline); their disk copies need a writable cacheDir (below).
    if (l.kind === 'url') continue;
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(l.location);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.push(
        code === 'ENOENT'
          ? `${l.path}: ${what} file '${l.location}' does not exist`
          : `${l.path}: ${what} file '${l.location}' cannot be read (${code ?? (err as Error).message})`,
      );
      continue;
    }
    if (!st.isFile()) {
      problems.push(`${l.path}: ${what} '${l.location}' is not a file`);
      continue;
    }
    try {
      await access(l.location, constants.R_OK);
    } catch {
      problems.push(`${l.path}: ${what} file '${l.location}' is not readable by this user`);
      continue;
    }
    if (st.size > config.refresh.maxBytes) {
      problems.push(`${l.path}: ${what} file '${l.location}' is ${st.size} bytes, above refresh.maxBytes (${config.refresh.maxBytes})`);
    }
  }
  const dirProblem = await checkWritableDir(config.cacheDir);
  if (dirProblem !== null) problems.push(`${config.path}.cacheDir: ${dirProblem}`);
  return problems;
}

/** Null when `dir` is (or can be created as) a writable directory; otherwise why not. */
async function checkWritableDir(dir: string): Promise<string | null> {
  let d = dir;
  for (;;) {
    try {
      const st = await stat(d);
      if (!st.isDirectory()) return `'${d}' is not a directory`;
      await access(d, constants.W_OK | constants.X_OK);
      return null;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return `'${d}' is not writable (${code ?? (err as Error).message})`;
      const parent = dirname(d);
      if (parent === d) return `no existing parent directory of '${dir}'`;
      d = parent;
    }
  }
}
