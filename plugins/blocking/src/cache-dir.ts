/**
 * Where downloaded lists and last-good copies live by default: one stable
 * per-user directory (XDG base directory spec), shared by every run and
 * every worker process. Nothing per process is created there except
 * short-lived `*.<pid>.tmp` files, which a later start sweeps when their
 * process is gone (`kill -9` leaves nothing that grows).
 */
import process from 'node:process';
import { homedir, tmpdir, userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';

/** `$XDG_CACHE_HOME/heimdall/lists`, else `~/.cache/heimdall/lists`; without a home directory, a per-user directory under the OS temp dir. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg !== undefined && xdg !== '' && isAbsolute(xdg)) return join(xdg, 'heimdall', 'lists');
  let home = env.HOME;
  if (home === undefined || home === '') {
    try {
      home = homedir();
    } catch {
      home = '';
    }
  }
  if (home !== '' && home !== '/' && isAbsolute(home)) return join(home, '.cache', 'heimdall', 'lists');
  // Service accounts without a home: still stable (per user), not per process.
  let user = 'unknown';
  try {
    user = String(userInfo().uid);
  } catch {}
  return join(tmpdir(), `heimdall-${user}`, 'lists');
}
