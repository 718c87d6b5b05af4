/**
 * Signals and processes: the resolver's handlers are installed before
 * anything starts (SIGHUP while starting is not fatal, SIGTERM while
 * starting exits 0, in a cluster too), and `npm start` hands SIGTERM to the
 * resolver (its script execs node, so no shell in between keeps the
 * resolver running after npm is gone).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pluginDir, waitFor, writeSlowStartPlugin } from './fixture-plugins.js';
import { CLI, dig, freePort, REPO } from './helpers.js';

const dir = pluginDir();
const slow = writeSlowStartPlugin(dir);
const children = new Set<ChildProcess>();
const strays = new Set<number>();

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const pid of strays) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

interface Proc {
  child: ChildProcess;
  out(): string;
  /** JSON log lines so far. */
  lines(): Array<Record<string, unknown>>;
  exited: Promise<number | string>;
}

function run(command: string, args: string[], cwd = REPO): Proc {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | string>((res) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      res(code ?? signal ?? -1);
    }),
  );
  const lines = (): Array<Record<string, unknown>> =>
    out.split('\n').flatMap((l) => {
      try {
        const j = JSON.parse(l) as unknown;
        return typeof j === 'object' && j !== null ? [j as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
  return { child, out: () => out, lines, exited };
}

function configFile(name: string, config: Record<string, unknown>): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Whether `port` on 127.0.0.1 can be bound again for UDP and TCP. */
async function portFree(port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((res) => {
    const s = net.createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
  const udp = await new Promise<boolean>((res) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => res(false));
    s.bind(port, '127.0.0.1', () => s.close(() => res(true)));
  });
  return tcp && udp;
}

const waiting = (p: Proc): number => p.lines().filter((l) => l.msg === 'slow-start waiting').length;

describe('signals while starting', () => {
  it('SIGHUP while starting is not fatal; the resolver then starts and serves', async () => {
    const gate = join(dir, 'gate-hup');
    const port = await freePort();
    const p = run(process.execPath, [
      CLI,
      '--config',
      configFile('hup', { listen: [`127.0.0.1:${port}`], admin: { enabled: false }, plugins: [{ use: slow, options: { gate } }, { use: 'special-use' }] }),
    ]);
    await waitFor(() => waiting(p) === 1, 15_000, 'plugin start');
    p.child.kill('SIGHUP');
    // The app says it ignored the signal: wait for that line instead of sleeping, then it must still be running.
    await waitFor(() => p.lines().some((l) => l.msg === 'SIGHUP while starting ignored (nothing to reload yet)'), 15_000, 'SIGHUP ignored');
    expect(p.child.exitCode).toBeNull();
    expect(p.child.signalCode).toBeNull();
    writeFileSync(gate, '');
    await waitFor(() => p.lines().some((l) => l.msg === 'listening'), 15_000, 'listening');
    expect((await dig(port, ['localhost'])).answers[0]?.data).toBe('127.0.0.1');
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  }, 40_000);

  it('SIGTERM while starting exits 0 at once', async () => {
    const p = run(process.execPath, [
      CLI,
      '--config',
      configFile('term', { listen: ['127.0.0.1:0'], admin: { enabled: false }, plugins: [{ use: slow, options: { gate: join(dir, 'never') } }] }),
    ]);
    await waitFor(() => waiting(p) === 1, 15_000, 'plugin start');
    const t0 = Date.now();
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
  }, 30_000);

  it('SIGTERM to a cluster primary while its workers start: every process exits, 0', async () => {
    const p = run(process.execPath, [
      CLI,
      '--workers',
      '2',
      '--config',
      configFile('cluster', { listen: ['127.0.0.1:0'], admin: { enabled: false }, plugins: [{ use: slow, options: { gate: join(dir, 'never') } }] }),
    ]);
    await waitFor(() => waiting(p) === 2, 20_000, 'both workers starting');
    const workers = p.lines().flatMap((l) => (l.msg === 'slow-start waiting' ? [Number(l.pid)] : []));
    for (const pid of workers) strays.add(pid);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    await waitFor(() => workers.every((pid) => !alive(pid)), 5000, 'workers gone');
  }, 40_000);
});

describe('npm start', () => {
  it('SIGTERM to the npm process stops the resolver and frees the port', async () => {
    // The root `start` script minus its build step (the e2e tests run against a fresh build already):
    // what is under test is the way npm's shell runs the resolver.
    const script = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
    const [build, ...rest] = script.split(' && ');
    expect(build).toMatch(/^turbo run build/);
    const pkg = join(dir, 'npm-start');
    rmSync(pkg, { recursive: true, force: true });
    mkdirSync(pkg);
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({ name: 'npm-start-check', private: true, scripts: { start: [`cd ${JSON.stringify(REPO)}`, ...rest].join(' && ') } }),
    );
    const port = await freePort();
    const config = configFile('npm', { listen: [`127.0.0.1:${port}`], admin: { enabled: false }, plugins: [{ use: 'special-use' }] });
    const npm = run('npm', ['start', '--silent', '--', '--config', config], pkg);
    await waitFor(() => npm.lines().some((l) => l.msg === 'listening'), 20_000, 'listening');
    const resolverPid = Number(npm.lines().find((l) => l.msg === 'listening')!.pid);
    strays.add(resolverPid);
    expect(resolverPid).not.toBe(npm.child.pid);
    expect((await dig(port, ['localhost'])).answers[0]?.data).toBe('127.0.0.1');
    npm.child.kill('SIGTERM');
    await npm.exited;
    await waitFor(() => !alive(resolverPid), 10_000, 'resolver stopped');
    await waitFor(() => portFree(port), 5000, 'port free');
    expect(npm.out()).toMatch(/"signal":"SIGTERM"[^\n]*shutting down/);
  }, 40_000);
});
