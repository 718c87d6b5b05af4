import { CACHE_CONTROL, CACHE_TIERS, type CacheControl, type CacheTier, STATE_STORE, type StateStore } from '@heimdall/core';
import { query, type TestResolver } from '@heimdall/testing';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnection } from './connection.js';
import { RedisStats } from './stats.js';
import { ask, cleanup, haveRedis, RedisServer, type SentinelSetup, startResolver, startSentinels, tempFile, waitFor } from './test-util.js';
import type { RedisTier } from './tier.js';

// A real Sentinel deployment: a master, a replica and three Sentinels (quorum 2, down after 1 s), each on a
// free loopback port. The Sentinels want a password of their own: every resolver here gives it with
// sentinelPasswordFile (the data nodes have none).
const available = haveRedis();
const SENTINEL_PASSWORD = 'sentinel-secret';
let setup: SentinelSetup;
let passwordFile: string;
const started: TestResolver[] = [];

beforeAll(async () => {
  if (!available) return;
  setup = await startSentinels({ password: SENTINEL_PASSWORD });
  passwordFile = tempFile('sentinel-password', `${SENTINEL_PASSWORD}\n`);
}, 40_000);
afterEach(async () => {
  await Promise.all(started.splice(0).map((r) => r.stop()));
});
afterAll(cleanup);

async function start(options: Omit<NonNullable<Parameters<typeof startResolver>[0]>, 'url'> = {}) {
  const r = await startResolver({
    url: setup.url,
    sentinelPasswordFile: passwordFile,
    timeoutMs: 500, // a functional test: a busy machine must not turn reads into misses
    reconnect: { minDelayMs: 50, maxDelayMs: 500 },
    ...options,
  });
  started.push(r.resolver);
  const scope = r.resolver.scope('redis');
  return {
    ...r,
    tier: r.resolver.container.getAll<CacheTier>(CACHE_TIERS)[0] as RedisTier,
    control: r.resolver.get<CacheControl>(CACHE_CONTROL),
    state: r.resolver.get<StateStore>(STATE_STORE),
    conn: scope.get(RedisConnection),
    stats: scope.get(RedisStats),
  };
}

/** The cache keys on one server whose name contains `label`. */
async function cacheKeys(c: Redis, label: string): Promise<number> {
  return (await c.keys(`heimdall:c:*${label}*`)).length;
}

/** The port of the master the data connection of `conn` is on. */
function remotePort(conn: RedisConnection): number | undefined {
  return (conn.client as Redis | null)?.stream?.remotePort;
}

/** Waits until every Sentinel names the server on `port` as the master. */
function sentinelsName(port: number): Promise<number> {
  return waitFor(
    async () => (await Promise.all(setup.sentinels.map((s) => s.masterPortSeen().catch(() => null)))).every((p) => p === port),
    'every Sentinel to name the replica as the master',
    15_000,
  );
}

/** Waits until both resolvers' data connections are ready on the server on `port`. */
function bothOn(a: RedisConnection, b: RedisConnection, port: number, what: string, timeoutMs: number): Promise<number> {
  return waitFor(() => a.ready && b.ready && remotePort(a) === port && remotePort(b) === port, what, timeoutMs);
}

/** Whether a Redis server answers PING on 127.0.0.1:`port` (false when nothing listens there). */
async function answersPing(port: number): Promise<boolean> {
  const c = new Redis({ host: '127.0.0.1', port, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000, commandTimeout: 1000 });
  c.on('error', () => {});
  try {
    return (await c.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

/** Servers started again by {@link masterAndReplica}, by port. */
const restarted = new Map<number, RedisServer>();

/** The running server process on `port` (one of the setup's, or one started again in its place). */
function serverOn(port: number): RedisServer {
  const s = [restarted.get(port), setup.master, setup.replica].find((x) => x !== undefined && x.port === port && x.proc !== null);
  if (s === undefined) throw new Error(`no server process of this test on port ${port}`);
  return s;
}

/**
 * What a failover test needs, whatever the tests before it did to the topology: the master every Sentinel
 * names now, and on the other data port an in-sync replica of it that every Sentinel sees. A server killed
 * by an earlier test is started again there as a replica (stopped by cleanup); one that was the master
 * before is left to the Sentinels, which turn it into a replica.
 */
async function masterAndReplica(): Promise<{ masterPort: number; replicaPort: number }> {
  const { sentinels, masterName } = setup;
  let masterPort = -1;
  await waitFor(
    async () => {
      const seen = await Promise.all(sentinels.map((s) => s.masterPortSeen().catch(() => null)));
      if (seen[0] == null || !seen.every((p) => p === seen[0])) return false;
      masterPort = seen[0];
      return answersPing(masterPort);
    },
    'every Sentinel to name the same running master',
    15_000,
  );
  expect([setup.master.port, setup.replica.port]).toContain(masterPort);
  const replicaPort = masterPort === setup.master.port ? setup.replica.port : setup.master.port;
  if (!(await answersPing(replicaPort))) restarted.set(replicaPort, await RedisServer.start(['--replicaof', '127.0.0.1', String(masterPort)], replicaPort));
  const replica = new Redis({ host: '127.0.0.1', port: replicaPort, maxRetriesPerRequest: 1 });
  replica.on('error', () => {});
  // What the last look found missing: a timeout says which condition never came true.
  let missing = '';
  try {
    await waitFor(
      async () => {
        const info = await replica.info('replication');
        if (!info.includes(`master_port:${masterPort}`) || !/master_link_status:up/.test(info)) {
          missing = `replica INFO: ${/master_port:\d+/.exec(info)?.[0] ?? 'no master_port'}, ${/master_link_status:\w+/.exec(info)?.[0] ?? 'no link status'}`;
          return false;
        }
        for (const [i, s] of sentinels.entries()) {
          const replicas = await s.command('SENTINEL', 'replicas', masterName);
          if (!replicas.includes(String(replicaPort)) || /s_down|disconnected/.test(replicas)) {
            missing = `Sentinel ${i} replicas: ${replicas.replace(/\s+/g, ' ').slice(0, 300)}`;
            return false;
          }
        }
        return true;
      },
      'the other server to be an in-sync replica of the master that every Sentinel sees',
      // Sentinels clear s_down at their next PING and refresh a replica's INFO every 10 s (a demoted master
      // is reconfigured after that): on a busy machine (CI under load) this took longer than 15 s once.
      45_000,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${missing}`);
  } finally {
    replica.disconnect();
  }
  return { masterPort, replicaPort };
}

describe.runIf(available)('Redis Sentinel (redis+sentinel://): a master, a replica, three Sentinels', () => {
  it('the master is found through the Sentinels: a shared tier, shared state and shared flushes between two resolvers', async () => {
    const a = await start();
    const b = await start();
    expect(a.conn.ready && b.conn.ready).toBe(true);
    expect(remotePort(a.conn)).toBe(setup.master.port);
    const names = Array.from({ length: 20 }, (_, i) => `s${i}.zone${i % 2}.example`);
    for (const n of names) expect((await ask(a.resolver, n)).ok).toBe(true);
    await a.tier.drain();
    const direct = setup.master.client();
    try {
      expect(await cacheKeys(direct, 'zone')).toBe(20);
      for (const n of names) await b.resolver.handle(query(n));
      expect(b.upstream.n).toBe(0);
      expect(b.cache.stats.tierHits).toBe(20);

      a.state.set('blocking.disabledUntil', 123);
      await waitFor(() => b.state.get('blocking.disabledUntil') === 123, 'B to see the state');

      a.control.flush({ name: 's0.zone0.example' });
      await waitFor(() => b.cache.l1.size === 19, 'B to apply the name flush');
      a.control.flush({ suffix: 'zone1.example' });
      await waitFor(() => b.cache.l1.size === 9, 'B to apply the suffix flush');
      await waitFor(async () => (await cacheKeys(direct, 'zone')) === 9, 'the flushed keys to leave the master');
    } finally {
      direct.disconnect();
    }
  }, 20_000);

  it('without the Sentinels’ password: not connected, and queries are answered from the upstream', async () => {
    const c = await start({ sentinelPasswordFile: undefined, startWaitMs: 300 });
    expect(c.conn.ready).toBe(false);
    expect((await ask(c.resolver, 'nopass.example')).ok).toBe(true);
    expect(c.upstream.n).toBe(1);
    expect(c.stats.skipped).toBe(1);
  });

  it('a hung Sentinel (SIGSTOP) first in the list: a starting resolver finds the master through the next ones', async () => {
    const hung = setup.sentinels[0]!;
    hung.pause();
    try {
      const t = performance.now();
      const c = await start({ reconnect: { minDelayMs: 50, maxDelayMs: 500, connectTimeoutMs: 500 } });
      expect(c.conn.ready, 'connected within startWaitMs (3 s)').toBe(true);
      expect(remotePort(c.conn)).toBe(setup.master.port);
      // ~0.5 s here when quiet; the bound is startWaitMs (the hung Sentinel alone would have kept it unconnected), with room for a busy CI machine.
      expect(performance.now() - t).toBeLessThan(3500);
    } finally {
      hung.resume();
    }
  });

  it('ioredis giving up mid-connect (its Sentinel connector told to disconnect, as a +switch-master does) does not leave the resolver off Redis', async () => {
    const a = await start();
    const client = a.conn.client as Redis;
    // What a failover detector of an earlier connection does when the Sentinels announce +switch-master while
    // ioredis is asking them for the master: the connector is disconnected mid-connect, and ioredis ends
    // the connection for good ("Connection is closed"). Seen in the kill -9 failover test on a loaded machine.
    const connector = (client as unknown as { connector: { disconnect(): void } }).connector;
    client.once('connecting', () => connector.disconnect());
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    client.stream.destroy(); // ioredis reconnects: 'connecting', and the connector is disconnected then
    await ended;
    const ms = await waitFor(() => a.conn.ready && client.status === 'ready', 'the ended connection to be made again', 5000);
    console.log(`ioredis ended the connection; ready again ${ms} ms later`);
    expect(remotePort(a.conn)).toBe(setup.master.port);
    expect((await ask(a.resolver, 'endedconn.example')).ok).toBe(true);
    await a.tier.drain();
    const direct = setup.master.client();
    try {
      expect(await cacheKeys(direct, 'endedconn')).toBe(1);
    } finally {
      direct.disconnect();
    }
  });

  it('the failover detector’s connections to the Sentinels, closed by them (CLIENT KILL), are made again with the reconnect backoff and subscribe again', async () => {
    const { sentinels } = setup;
    // Clients subscribed to +switch-master on one Sentinel: with one resolver here, the failover detectors of
    // its two connections (commands, pub/sub).
    const subscribed = async (s: (typeof sentinels)[number]): Promise<number> =>
      (await s.command('CLIENT', 'LIST', 'TYPE', 'pubsub')).split('\n').filter((l) => /\bsub=1\b/.test(l)).length;
    const everySentinel = async (n: number): Promise<boolean> => (await Promise.all(sentinels.map(subscribed))).every((x) => x === n);
    const a = await start();
    await waitFor(() => everySentinel(2), 'both failover detectors subscribed on every Sentinel', 5000);
    // What a Sentinel restart, a RST on the path or an operator's CLIENT KILL does: the connections close.
    for (const s of sentinels) expect(Number((await s.command('CLIENT', 'KILL', 'TYPE', 'pubsub')).trim())).toBe(2);
    // Again within the backoff (50–500 ms here); ioredis' own sentinelReconnectStrategy waited 60 s, during which
    // a failover was announced to this resolver by no Sentinel.
    const ms = await waitFor(() => everySentinel(2), 'the failover detectors to subscribe again on every Sentinel', 5000);
    console.log(`failover detector: subscribed again on every Sentinel ${ms} ms after CLIENT KILL TYPE pubsub`);
    // The data connection was not disturbed.
    expect(a.conn.ready).toBe(true);
    expect(remotePort(a.conn)).toBe(await sentinels[0]!.masterPortSeen());
  });

  it('failover: the master is killed, the Sentinels promote the replica, both resolvers follow it and answer throughout', async () => {
    const { master, replica } = setup;
    const a = await start();
    const b = await start();
    expect(remotePort(a.conn)).toBe(master.port);
    expect(remotePort(b.conn)).toBe(master.port);
    await ask(a.resolver, 'before.example');
    await a.tier.drain();
    await ask(b.resolver, 'before.example'); // a tier hit: in B's L1 from now on
    expect(b.cache.stats.tierHits).toBe(1);

    // Queries all along (both resolvers, a new name each time: every one is a tier read, then a write).
    const results: Array<{ ms: number; ok: boolean; at: number }> = [];
    let asking = true;
    const t0 = performance.now();
    const loop = (async () => {
      for (let i = 0; asking; i++) {
        const r = await ask(i % 2 === 0 ? a.resolver : b.resolver, `during${i}.example`);
        results.push({ ...r, at: performance.now() - t0 });
        // Pacing of the offered load, not a wait for an event.
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();

    const killedAt = performance.now();
    await master.kill();
    let failoverMs = -1;
    let reconnectMs = -1;
    try {
      // Changes made while Redis is away: kept, and sent to the new master.
      await waitFor(() => !a.conn.ready && !b.conn.ready, 'both resolvers to see the master gone', 5000);
      const upstreamBefore = a.upstream.n + b.upstream.n;
      a.state.set('outage.key', 'set while the master was down');
      a.control.flush({ name: 'before.example' });
      expect([...b.cache.l1.keys()].some((k) => k.includes('before'))).toBe(true);

      await sentinelsName(replica.port);
      failoverMs = performance.now() - killedAt;
      // 0.05–0.4 s after the promotion when alone; it took over 10 s once inside a full `npm test` on a loaded machine.
      await bothOn(a.conn, b.conn, replica.port, 'both resolvers to be connected to the promoted replica', 20_000);
      reconnectMs = performance.now() - killedAt;
      // Answered while Redis was away: from the upstream, not failed.
      expect(a.upstream.n + b.upstream.n).toBeGreaterThan(upstreamBefore);
      expect(a.stats.skipped + b.stats.skipped).toBeGreaterThan(0);
    } finally {
      asking = false;
      await loop;
    }
    console.log(`sentinel failover: promoted ${Math.round(failoverMs)} ms after kill -9, both resolvers on the new master ${Math.round(reconnectMs)} ms after`);

    // Every query was answered, none waited long.
    const outage = results.filter((r) => r.at >= killedAt - t0 && r.at <= reconnectMs + (killedAt - t0));
    expect(outage.length).toBeGreaterThan(10);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    // A read waits at most the tier's 500 ms; a hang would show as seconds (or SERVFAIL at the query deadline). Room for a busy CI machine.
    expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(3000);

    const direct = replica.client();
    try {
      expect(await direct.info('replication')).toMatch(/role:master/);
      // What was changed during the outage reached the new master and the other resolver.
      await waitFor(() => b.state.get('outage.key') === 'set while the master was down', 'B to see the state set during the outage');
      await waitFor(async () => (await direct.get('heimdall:s:outage.key')) !== null, 'the outage state on the new master');
      await waitFor(() => ![...b.cache.l1.keys()].some((k) => k.includes('before')), 'B to apply the flush made during the outage');

      // New writes land on the new master; the other resolver reads them there.
      await ask(a.resolver, 'after.example');
      await a.tier.drain();
      expect(await cacheKeys(direct, 'after')).toBe(1);
      const hits = b.cache.stats.tierHits;
      await ask(b.resolver, 'after.example');
      expect(b.cache.stats.tierHits).toBe(hits + 1);

      a.state.set('blocking.disabledUntil', 456);
      await waitFor(() => b.state.get('blocking.disabledUntil') === 456, 'B to see the state set after the failover');
      expect(JSON.parse((await direct.get('heimdall:s:blocking.disabledUntil'))!).v).toBe(456);

      // B's pub/sub connection followed the new master too.
      a.control.flush({ name: 'after.example' });
      await waitFor(() => ![...b.cache.l1.keys()].some((k) => k.includes('after')), 'B to apply a flush made after the failover');
      await waitFor(async () => (await cacheKeys(direct, 'after')) === 0, 'the flushed key to leave the new master');
    } finally {
      direct.disconnect();
    }
  }, 45_000);

  it('a hung master (SIGSTOP, as behind a partition: its connections stay open): the resolvers leave it when the Sentinels switch', async () => {
    // The master now is whichever server the Sentinels name (the killed one came back as its replica).
    const { masterPort, replicaPort: otherPort } = await masterAndReplica();
    const current = serverOn(masterPort);
    const direct = new Redis({ host: '127.0.0.1', port: otherPort, maxRetriesPerRequest: 1 });

    const a = await start();
    const b = await start();
    expect(remotePort(a.conn)).toBe(masterPort);
    current.pause();
    const stoppedAt = performance.now();
    try {
      // Hung, not gone: the connections stay open, reads time out (misses), answers still come.
      expect((await ask(a.resolver, 'hung.example')).ok).toBe(true);
      await sentinelsName(otherPort);
      const failoverMs = performance.now() - stoppedAt;
      await bothOn(a.conn, b.conn, otherPort, 'both resolvers to leave the hung master for the promoted replica', 10_000);
      console.log(
        `sentinel failover (hung master): promoted ${Math.round(failoverMs)} ms after SIGSTOP, both resolvers on the new master ${Math.round(performance.now() - stoppedAt)} ms after`,
      );
      expect((await ask(a.resolver, 'afterhang.example')).ok).toBe(true);
      await a.tier.drain();
      expect(await cacheKeys(direct, 'afterhang')).toBe(1);
      a.state.set('blocking.disabledUntil', 789);
      await waitFor(() => b.state.get('blocking.disabledUntil') === 789, 'B to see the state set after the switch');
      a.control.flush({ name: 'afterhang.example' });
      await waitFor(async () => (await cacheKeys(direct, 'afterhang')) === 0, 'the flushed key to leave the new master');
    } finally {
      current.resume();
      direct.disconnect();
    }
  }, 75_000);

  it('graceful failover (SENTINEL FAILOVER): the old master is demoted to a read-only replica under the resolvers; they follow the new master, writes land there', async () => {
    const { sentinels, masterName } = setup;
    // Its own precondition, whatever ran before (alone, after the kill -9 test, after the hung master): the
    // master the Sentinels name now, and on the other port an in-sync replica every Sentinel sees.
    const { masterPort, replicaPort } = await masterAndReplica();
    const oldMaster = { port: masterPort };
    const newMaster = { port: replicaPort };
    const toOld = new Redis({ host: '127.0.0.1', port: masterPort, maxRetriesPerRequest: 1 });
    const toNew = new Redis({ host: '127.0.0.1', port: replicaPort, maxRetriesPerRequest: 1 });
    try {
      const a = await start();
      const b = await start();
      expect(remotePort(a.conn)).toBe(oldMaster.port);
      expect(remotePort(b.conn)).toBe(oldMaster.port);

      // Queries all along on both resolvers (a new name each time: a tier read, then a write).
      const results: Array<{ ms: number; ok: boolean }> = [];
      let asking = true;
      const loop = (async () => {
        for (let i = 0; asking; i++) {
          results.push(await ask(i % 2 === 0 ? a.resolver : b.resolver, `graceful${i}.example`));
          // Pacing of the offered load, not a wait for an event.
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })();
      const errorsBefore = a.stats.errors + b.stats.errors;
      const t0 = performance.now();
      let switchMs = -1;
      let followMs = -1;
      try {
        expect((await sentinels[0]!.command('SENTINEL', 'FAILOVER', masterName)).trim()).toBe('OK');
        await sentinelsName(newMaster.port);
        switchMs = performance.now() - t0;
        await bothOn(a.conn, b.conn, newMaster.port, 'both resolvers to be connected to the new master', 20_000);
        followMs = performance.now() - t0;
        await waitFor(async () => /role:slave/.test(await toOld.info('replication')), 'the old master to be a replica', 15_000);
      } finally {
        asking = false;
        await loop;
      }
      console.log(
        `graceful failover: every Sentinel names the new master ${Math.round(switchMs)} ms after SENTINEL FAILOVER, both resolvers on it ${Math.round(followMs)} ms after; ${results.length} answers, slowest ${Math.max(...results.map((r) => r.ms)).toFixed(1)} ms; ${a.stats.errors + b.stats.errors - errorsBefore} failed reads or write batches (READONLY or lost connections) meanwhile`,
      );
      // No Redis error reaches an answer: every query answered, none waited long.
      expect(results.length).toBeGreaterThan(10);
      expect(results.filter((r) => !r.ok)).toEqual([]);
      expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(3000);

      // Writes made after the failover land on the new master (the demoted one is read-only).
      await ask(a.resolver, 'postgraceful.example');
      await a.tier.drain();
      expect(await cacheKeys(toNew, 'postgraceful')).toBe(1);
      const hits = b.cache.stats.tierHits;
      await ask(b.resolver, 'postgraceful.example');
      expect(b.cache.stats.tierHits).toBe(hits + 1);
      a.state.set('blocking.disabledUntil', 321);
      await waitFor(() => b.state.get('blocking.disabledUntil') === 321, 'B to see the state set after the failover');
      await waitFor(async () => (await toNew.get('heimdall:s:blocking.disabledUntil')) !== null, 'the state on the new master');
      expect(JSON.parse((await toNew.get('heimdall:s:blocking.disabledUntil'))!).v).toBe(321);
      a.control.flush({ name: 'postgraceful.example' });
      await waitFor(async () => (await cacheKeys(toNew, 'postgraceful')) === 0, 'the flushed key to leave the new master');
      await waitFor(() => ![...b.cache.l1.keys()].some((k) => k.includes('postgraceful')), 'B to apply the flush');
    } finally {
      toOld.disconnect();
      toNew.disconnect();
    }
  }, 120_000);
});
