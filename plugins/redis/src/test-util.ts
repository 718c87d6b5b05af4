/**
 * Test helpers: real `redis-server` processes on free ports (standalone,
 * a 3-node Cluster, and a master + replica with three Sentinels, each in
 * its own temporary directory; never the system Redis), a stand-in cache
 * that consults `CACHE_TIERS` and provides `CACHE_CONTROL` the way the cache plugin does (this package does not
 * depend on the cache), an answering upstream stand-in, and waiting helpers.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CACHE_CONTROL, CACHE_TIERS, type CacheControl, type CacheTier, definePlugin, type FlushScope, type HeimdallPlugin, Rcode } from '@heimdall/core';
import { MessageReader } from '@heimdall/core/packet';
import { ContainerModule, injectable, multiInject, optional } from '@heimdall/core/di';
import { cacheKeyOf, QuestionKeyInfo } from '@heimdall/core/wire';
import { query, selfSignedCertificate, type TestResolver, testResolver } from '@heimdall/testing';
import { Redis } from 'ioredis';
import { flushMatcher } from './keys.js';
import { redis } from './plugin.js';
import { systemClock } from '@heimdall/core/pipeline';

const run = promisify(execFile);

/** Whether `redis-server` is installed. Under CI it must be (scripts/ensure-tools.mjs installs it): tests fail rather than skip. */
export function haveRedis(): boolean {
  const ok = spawnSync('sh', ['-c', 'command -v redis-server && command -v redis-cli'], { stdio: 'ignore' }).status === 0;
  if (!ok && process.env.CI === 'true') throw new Error('redis-server/redis-cli missing under CI: run node scripts/ensure-tools.mjs');
  return ok;
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const dirs: string[] = [];
/** A new temporary directory (removed by {@link cleanup}). */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'heimdall-redis-'));
  dirs.push(d);
  return d;
}

const servers = new Set<RedisServer>();
// Whatever happens to this process, its servers do not outlive it.
process.once('exit', () => {
  for (const s of servers) s.proc?.kill('SIGKILL');
});

/** Stops every server still running and removes the temporary directories. */
export async function cleanup(): Promise<void> {
  await Promise.all([...servers].map((s) => s.stop()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Polls `pred` every 20 ms until it is true; throws after `timeoutMs` with `what`. */
export async function waitFor(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await pred()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One `redis-server` on 127.0.0.1:`port`, no persistence, in its own directory. */
export class RedisServer {
  proc: ChildProcess | null = null;
  readonly dir: string;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly port: number,
    readonly extra: readonly string[] = [],
  ) {
    this.dir = tempDir();
  }

  static async start(extra: readonly string[] = [], port?: number): Promise<RedisServer> {
    const s = new RedisServer(port ?? (await freePort()), extra);
    await s.start();
    return s;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.proc?.pid ?? -1;
  }

  /** The command line of `redis-server`. */
  protected args(): string[] {
    return ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--protected-mode', 'no', ...this.extra];
  }

  /** The log line that says the server accepts connections. */
  protected readonly readyLine: RegExp = /Ready to accept connections/;

  /** Starts (or restarts, on the same port) and waits until it answers PING. */
  async start(): Promise<void> {
    const proc = spawn('redis-server', this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    servers.add(this);
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`redis-server exited: ${out.slice(-500)}`);
        return this.readyLine.test(out);
      },
      `redis-server on ${this.port}`,
      10_000,
    );
  }

  /** kill -9. */
  async kill(): Promise<void> {
    this.proc?.kill('SIGKILL');
    await this.exited;
    this.proc = null;
  }

  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    servers.delete(this);
    if (this.proc === null) return;
    this.proc.kill('SIGCONT');
    this.proc.kill('SIGKILL');
    await this.exited;
    this.proc = null;
  }

  /** A plain client for assertions (the caller disconnects it). */
  client(): Redis {
    return new Redis({ host: '127.0.0.1', port: this.port, lazyConnect: false, maxRetriesPerRequest: 1 });
  }
}

/** A local 3-master Redis Cluster (no replicas). */
export async function startCluster(): Promise<RedisServer[]> {
  const nodes: RedisServer[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    nodes.push(await RedisServer.start(['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000'], port));
  }
  await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
  await waitFor(
    async () => {
      const infos = await Promise.all(nodes.map((n) => run('redis-cli', ['-p', String(n.port), 'cluster', 'info']).then((r) => r.stdout)));
      return infos.every((i) => /cluster_state:ok/.test(i) && /cluster_slots_ok:16384/.test(i));
    },
    'cluster_state:ok on every node',
    20_000,
  );
  return nodes;
}

/**
 * One Sentinel: `redis-server <dir>/sentinel.conf --sentinel` on 127.0.0.1:`port`
 * (the config is written in its own directory, which Sentinel rewrites as it learns).
 */
export class SentinelServer extends RedisServer {
  protected override readonly readyLine = /Sentinel ID is/;

  constructor(
    port: number,
    readonly masterName: string,
    readonly masterPort: number,
    readonly password: string | undefined,
  ) {
    super(port);
  }

  protected override args(): string[] {
    const conf = join(this.dir, 'sentinel.conf');
    const n = this.masterName;
    const lines = [
      `port ${this.port}`,
      'bind 127.0.0.1',
      `dir ${this.dir}`,
      'protected-mode no',
      'sentinel resolve-hostnames no',
      `sentinel monitor ${n} 127.0.0.1 ${this.masterPort} 2`,
      `sentinel down-after-milliseconds ${n} 1000`,
      `sentinel failover-timeout ${n} 5000`,
      `sentinel parallel-syncs ${n} 1`,
      // The Sentinels' own password, also used between Sentinels (the data nodes have none).
      ...(this.password !== undefined ? [`requirepass ${this.password}`, `sentinel sentinel-pass ${this.password}`] : []),
    ];
    writeFileSync(conf, `${lines.join('\n')}\n`);
    return [conf, '--sentinel'];
  }

  /** A command to this Sentinel (with its password), its reply as text. */
  async command(...args: string[]): Promise<string> {
    const auth = this.password !== undefined ? ['--no-auth-warning', '-a', this.password] : [];
    return (await run('redis-cli', ['-p', String(this.port), ...auth, ...args], { timeout: 5000 })).stdout;
  }

  /** The port of the master this Sentinel names (`SENTINEL get-master-addr-by-name`), or null. */
  async masterPortSeen(): Promise<number | null> {
    const lines = (await this.command('SENTINEL', 'get-master-addr-by-name', this.masterName)).trim().split('\n');
    return lines.length === 2 ? Number(lines[1]) : null;
  }
}

/** A Sentinel deployment: a master, a replica and three Sentinels, all on loopback. */
export interface SentinelSetup {
  readonly masterName: string;
  readonly master: RedisServer;
  readonly replica: RedisServer;
  readonly sentinels: readonly SentinelServer[];
  /** The Sentinels' password, when they have one. */
  readonly password: string | undefined;
  /** `redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/<masterName>`. */
  readonly url: string;
}

/**
 * Starts a master and a replica (`--replicaof`) and three Sentinels
 * monitoring them (quorum 2, down after 1 s, failover timeout 5 s), each on
 * a free port in its own directory, and waits until the replica is in sync
 * and every Sentinel sees the master, the replica and the two other
 * Sentinels (what a failover needs). `password`: the Sentinels require it
 * (`requirepass`, and `sentinel sentinel-pass` between themselves).
 * Stopped by {@link cleanup}.
 */
export async function startSentinels(options: { masterName?: string; password?: string } = {}): Promise<SentinelSetup> {
  const masterName = options.masterName ?? 'mymaster';
  const master = await RedisServer.start();
  const replica = await RedisServer.start(['--replicaof', '127.0.0.1', String(master.port)]);
  await waitFor(
    async () => /master_link_status:up/.test((await run('redis-cli', ['-p', String(replica.port), 'info', 'replication'])).stdout),
    'the replica to sync with the master',
    10_000,
  );
  const sentinels: SentinelServer[] = [];
  for (let i = 0; i < 3; i++) {
    const s = new SentinelServer(await freePort(), masterName, master.port, options.password);
    await s.start();
    sentinels.push(s);
  }
  await waitFor(
    async () => {
      for (const s of sentinels) {
        if ((await s.masterPortSeen()) !== master.port) return false;
        const replicas = await s.command('SENTINEL', 'replicas', masterName);
        if (!replicas.includes(String(replica.port)) || /s_down|disconnected/.test(replicas)) return false;
        // `SENTINEL sentinels` lists the others, one field per line; each entry has a "runid" field.
        if ((await s.command('SENTINEL', 'sentinels', masterName)).split('\n').filter((l) => l === 'runid').length < 2) return false;
      }
      return true;
    },
    'every Sentinel to see the master, the replica and the other Sentinels',
    20_000,
  );
  const url = `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${masterName}`;
  return { masterName, master, replica, sentinels, password: options.password, url };
}

/**
 * A TCP proxy on 127.0.0.1 in front of a server, that can turn into a black
 * hole: {@link blackHole} keeps every connection open (no FIN, no RST) but
 * from then on forwards nothing on them, either way, and does the same to the
 * connections it accepts meanwhile — a silently dead path (a NAT or
 * conntrack entry dropped, a firewall dropping the flow, a peer gone without
 * a RST). {@link heal} forwards new connections again; the black-holed ones
 * stay dead for good (the middlebox lost their state). Closed by {@link close}.
 */
export class BlackHoleProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Connections that will never carry a byte again. */
  private readonly dead = new WeakSet<Socket>();
  private holing = false;
  /** Connections accepted so far. */
  accepted = 0;

  private constructor(
    readonly port: number,
    readonly targetPort: number,
  ) {
    // Half-open allowed: a FIN from a client of a dead connection must not be answered with one.
    this.server = createServer({ allowHalfOpen: true }, (client) => this.accept(client));
  }

  /** A proxy on a free port forwarding to 127.0.0.1:`targetPort`. */
  static async start(targetPort: number): Promise<BlackHoleProxy> {
    const p = new BlackHoleProxy(await freePort(), targetPort);
    await new Promise<void>((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(p.port, '127.0.0.1', () => resolve());
    });
    return p;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => this.sockets.delete(s));
  }

  private accept(client: Socket): void {
    this.accepted++;
    this.track(client);
    if (this.holing) {
      // Accepted, then silence: bytes are read and dropped, nothing comes back.
      this.dead.add(client);
      client.on('data', () => {});
      return;
    }
    const server = createConnection({ host: '127.0.0.1', port: this.targetPort, allowHalfOpen: true });
    this.track(server);
    const pipe = (from: Socket, to: Socket): void => {
      from.on('data', (d: Buffer) => {
        if (!this.dead.has(from)) to.write(d);
      });
      // An end or close of a live pair is passed on; a dead pair says nothing, ever.
      from.on('end', () => {
        if (!this.dead.has(from)) to.end();
      });
      from.on('close', () => {
        if (!this.dead.has(from)) to.destroy();
      });
    };
    pipe(client, server);
    pipe(server, client);
  }

  /** From now on nothing passes on any connection, open or new; none is closed. */
  blackHole(): void {
    this.holing = true;
    for (const s of this.sockets) this.dead.add(s);
  }

  /** New connections are forwarded again; the black-holed ones stay dead. */
  heal(): void {
    this.holing = false;
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A self-signed certificate for localhost (TLS tests): { cert, key } file paths. */
export async function selfSigned(): Promise<{ cert: string; key: string }> {
  return selfSignedCertificate(tempDir(), { cn: 'localhost' });
}

/** Writes a file in a temporary directory and returns its path. */
export function tempFile(name: string, content: string): string {
  const p = join(tempDir(), name);
  writeFileSync(p, content);
  return p;
}

export { readFileSync };

// ------------------------------------------------------------------ stand-ins

/** What the stand-in cache counts. */
export class MiniCacheStats {
  l1Hits = 0;
  tierHits = 0;
  misses = 0;
}

/**
 * The cache's side of the contracts, minimal: L1 in a Map (key = core's
 * question key), then each `CACHE_TIERS` tier in order within a 250 ms budget (the tier keeps its own)
 * (a hit is promoted), else the chain; answers are written through to every
 * tier with a 300 s expiry. `CACHE_CONTROL.flush` empties L1 (all, or
 * matching names) and passes the scope on to the tiers, as the cache does.
 * Values in the tiers are the raw answers (the tier treats them as opaque).
 */
@injectable()
class MiniCache implements CacheControl {
  readonly l1 = new Map<string, Buffer>();
  readonly stats = new MiniCacheStats();
  readonly tiers: readonly CacheTier[];
  constructor(@multiInject(CACHE_TIERS) @optional() tiers: CacheTier[] | undefined) {
    this.tiers = tiers ?? [];
  }
  get size(): number {
    return this.l1.size;
  }
  flush(scope: FlushScope): number {
    const m = flushMatcher(scope, Buffer.alloc(0));
    let n = 0;
    for (const k of [...this.l1.keys()]) {
      if (m.matches(Buffer.from(k, 'latin1'), 0)) {
        this.l1.delete(k);
        n++;
      }
    }
    for (const t of this.tiers) {
      const r = t.flush(scope);
      if (r instanceof Promise) r.catch(() => {});
    }
    return n;
  }
}

const info = new QuestionKeyInfo();

function answerFrom(stored: Buffer, request: Buffer): Buffer {
  const out = Buffer.from(stored);
  out[0] = request[0]!;
  out[1] = request[1]!;
  return out;
}

/** The stand-in cache plugin (name `cache`). */
export const miniCache = definePlugin({
  name: 'cache',
  setup: () => ({
    module: new ContainerModule(({ bind }) => {
      bind(MiniCache).toSelf();
    }),
    provides: [{ token: CACHE_CONTROL, use: MiniCache }],
    middleware: (scope) => {
      const c = scope.get(MiniCache);
      return async (ctx, next) => {
        const key = cacheKeyOf(ctx.request, info);
        if (key === null) return next();
        const hit = c.l1.get(key);
        if (hit !== undefined) {
          c.stats.l1Hits++;
          ctx.response = answerFrom(hit, ctx.request);
          return;
        }
        const kb = Buffer.from(key, 'latin1');
        for (const t of c.tiers) {
          let v = t.get(kb, Date.now() + 250);
          if (v instanceof Promise) {
            let timer: NodeJS.Timeout | undefined;
            v = await Promise.race([v, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 250)))]);
            clearTimeout(timer);
          }
          if (v !== undefined) {
            c.stats.tierHits++;
            const stored = Buffer.from(v);
            c.l1.set(key, stored);
            ctx.response = answerFrom(stored, ctx.request);
            return;
          }
        }
        c.stats.misses++;
        await next();
        if (ctx.response !== null) {
          const stored = Buffer.from(ctx.response);
          c.l1.set(key, stored);
          for (const t of c.tiers) t.set(kb, stored, systemClock.now() + 300_000);
        }
      };
    },
  }),
});

/** An upstream stand-in: answers every A query with 192.0.2.1, counting queries. */
export function answering(counter: { n: number }): HeimdallPlugin {
  return definePlugin({
    name: 'upstream',
    setup: () => ({
      middleware: () => (ctx) => {
        counter.n++;
        ctx.answer([{ name: ctx.query.qname, type: 1, class: 1, ttl: 300, data: '192.0.2.1' }]);
      },
    }),
  })();
}

/** A started resolver of `[miniCache, redis(options), answering]` on the real clock. */
export async function startResolver(
  options: NonNullable<Parameters<typeof redis>[0]>,
  upstream = { n: 0 },
): Promise<{ resolver: TestResolver; upstream: { n: number }; cache: MiniCache }> {
  const resolver = testResolver([miniCache(), redis({ startWaitMs: 3000, ...options }), answering(upstream)], { clock: systemClock });
  await resolver.start();
  return { resolver, upstream, cache: resolver.scope('cache').get(MiniCache) };
}

/** Asks one query: its latency (ms) and whether it was a good answer (NOERROR, one answer). */
export async function ask(r: TestResolver, name: string): Promise<{ ms: number; ok: boolean }> {
  const t = performance.now();
  const res = await r.handle(query(name));
  const ms = performance.now() - t;
  if (res === null) return { ms, ok: false };
  const m = new MessageReader(res);
  return { ms, ok: m.rcode === Rcode.NOERROR && m.ancount === 1 };
}
