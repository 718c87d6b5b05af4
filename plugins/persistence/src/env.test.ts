import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, openSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FakeClock } from '@heimdall/testing';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { checkDataFile, FORMAT_VERSION } from './env.js';
import { cleanupDirs, entryOf, type Instance, keyOf, startInstance, tempDir } from './test-util.js';

const running: Instance[] = [];
async function start(dir: string, clock = new FakeClock()): Promise<Instance> {
  const i = await startInstance({ dir }, clock);
  running.push(i);
  return i;
}
afterEach(async () => {
  for (const i of running.splice(0)) await i.stop();
  cleanupDirs();
});

/** A directory holding a store with one entry, closed. */
async function filledDir(): Promise<string> {
  const dir = tempDir();
  const clock = new FakeClock();
  const i = await startInstance({ dir }, clock);
  const k = keyOf('www.example.com');
  i.tier.set(k, entryOf(k), clock.now() + 3_600_000);
  i.state.set('k', { v: 1 });
  await i.tier.drain();
  await i.stop();
  return dir;
}

const aside = (dir: string): string[] =>
  readdirSync(dir)
    .filter((f) => f.includes('.corrupt-'))
    .sort();

describe('opening the environment', () => {
  it('a healthy store reopens with its entries and state, and its header checks out', async () => {
    const dir = await filledDir();
    expect(checkDataFile(join(dir, 'data.mdb'))).toBeNull();
    const i = await start(dir);
    expect(i.tier.get(keyOf('www.example.com'))).toBeDefined();
    expect(i.state.get('k')).toEqual({ v: 1 });
    expect(i.env.movedAsideCount).toBe(0);
    expect(aside(dir)).toEqual([]);
  });

  const corruptions: Array<[string, (file: string) => void, RegExp]> = [
    ['garbage', (f) => writeFileSync(f, randomBytes(64 * 1024)), /not an LMDB file|not a meta page/],
    ['zeros', (f) => writeFileSync(f, Buffer.alloc(64 * 1024)), /not an LMDB file|not a meta page/],
    ['a few bytes', (f) => writeFileSync(f, 'hello'), /truncated/],
    ['an empty file', (f) => writeFileSync(f, ''), /empty/],
    [
      'garbage over the meta pages',
      (f) => {
        const fd = openSync(f, 'r+');
        writeSync(fd, randomBytes(8192), 0, 8192, 0);
        closeSync(fd);
      },
      /not an LMDB file|not a meta page|page size/,
    ],
    [
      'a truncated file',
      (f) => {
        const size = statSync(f).size;
        const fd = openSync(f, 'r+');
        ftruncateSync(fd, Math.max(8192, size - 8192));
        closeSync(fd);
      },
      /truncated/,
    ],
  ];
  for (const [what, corrupt, reason] of corruptions) {
    it(`${what} in data.mdb: moved aside with a timestamp, a warning, and the plugin starts empty`, async () => {
      const dir = await filledDir();
      corrupt(join(dir, 'data.mdb'));
      expect(checkDataFile(join(dir, 'data.mdb'))).toMatch(reason);
      const i = await start(dir);
      expect(i.env.movedAsideCount).toBe(1);
      expect(i.env.lastMoveReason).toMatch(reason);
      expect(i.stats.movedAside).toBe(1);
      expect(aside(dir).some((f) => /^data\.mdb\.corrupt-\d{4}-\d\d-\d\dT/.test(f))).toBe(true);
      expect(i.tier.get(keyOf('www.example.com'))).toBeUndefined();
      expect(i.state.get('k')).toBeUndefined();
      // And it works.
      const k = keyOf('new.example.com');
      i.tier.set(k, entryOf(k), Date.now() + 3_600_000 * 1000);
      await i.tier.drain();
      expect(i.tier.get(k)).toBeDefined();
    });
  }

  it('a store of another format version is moved aside', async () => {
    const dir = await filledDir();
    const root = open({ path: dir, noSubdir: false, maxDbs: 8 });
    root.openDB({ name: 'meta', encoding: 'json' }).putSync('format', { format: 'heimdall-persistence', version: FORMAT_VERSION + 1 });
    await root.close();
    const i = await start(dir);
    expect(i.env.lastMoveReason).toMatch(new RegExp(`format version ${FORMAT_VERSION + 1}, this build reads version ${FORMAT_VERSION}`));
    expect(i.tier.get(keyOf('www.example.com'))).toBeUndefined();
  });

  it("another program's LMDB environment is moved aside, not mixed with ours", async () => {
    const dir = tempDir();
    const root = open({ path: dir, noSubdir: false, maxDbs: 8 });
    root.openDB({ name: 'users' }).putSync('alice', { admin: true });
    await root.close();
    const i = await start(dir);
    expect(i.env.lastMoveReason).toMatch(/foreign environment \(databases "users"\)/);
    expect(aside(dir)).toHaveLength(2); // data.mdb and lock.mdb
  });

  it('keeps only the two newest moved-aside copies', async () => {
    const dir = tempDir();
    for (let n = 0; n < 4; n++) {
      writeFileSync(join(dir, 'data.mdb'), randomBytes(8192));
      const i = await startInstance({ dir });
      await i.stop();
      await new Promise((r) => setTimeout(r, 5)); // distinct timestamps
    }
    expect(aside(dir).filter((f) => f.startsWith('data.mdb.'))).toHaveLength(2);
  });

  it('a directory that cannot be created fails start, naming it', async () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, 'x');
    await expect(startInstance({ dir: join(file, 'sub') })).rejects.toThrow(/cannot create dir .*a-file\/sub/);
    expect(existsSync(join(file, 'sub'))).toBe(false);
  });
});
