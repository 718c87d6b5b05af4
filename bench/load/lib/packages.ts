/**
 * Installs the Debian packages the load harness drives when their binaries
 * are missing: `apt-get update` once, then `apt-get install -y`. dnsmasq
 * comes from `dnsmasq-base` (the binary without the system service).
 */
import { execFileSync, spawnSync } from 'node:child_process';

/** Binary → Debian package. */
export const LOAD_TOOLS: Record<string, string> = {
  dnsperf: 'dnsperf',
  dnsmasq: 'dnsmasq-base',
  unbound: 'unbound',
  taskset: 'util-linux',
};

/** Whether `bin` is on the PATH (or in /usr/sbin, where dnsmasq and unbound live). */
export function hasBinary(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin} || test -x /usr/sbin/${bin}`], { stdio: 'ignore' }).status === 0;
}

/** Installs the missing ones; returns the list of binaries still missing afterwards. */
export function ensureTools(bins: string[] = Object.keys(LOAD_TOOLS)): string[] {
  const missing = bins.filter((b) => !hasBinary(b));
  if (missing.length === 0) return [];
  const pkgs = [...new Set(missing.map((b) => LOAD_TOOLS[b] ?? b))];
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  console.log(`load: installing ${pkgs.join(' ')} (apt-get)`);
  try {
    const run = (args: string[]): void => {
      execFileSync(sudo[0] ?? args[0]!, sudo.length ? args : args.slice(1), { stdio: 'inherit', env });
    };
    run(['apt-get', 'update', '-qq']);
    run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...pkgs]);
  } catch (err) {
    console.error(`load: could not install ${pkgs.join(' ')}: ${(err as Error).message}`);
  }
  return bins.filter((b) => !hasBinary(b));
}

/** Absolute path of a binary (PATH or /usr/sbin). */
export function binaryPath(bin: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim();
  return found || `/usr/sbin/${bin}`;
}
