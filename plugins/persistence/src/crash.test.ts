/**
 * kill -9 of a writing process at a random moment, then reopen: the store
 * opens, every batch reported committed is there in full, the batch in
 * flight is there entirely or not at all, nothing else, nothing corrupt.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkDataFile } from './env.js';
import { HEADER } from './layout.js';
import { Child, cleanupDirs, entryOf, startInstance, tempDir } from './test-util.js';

afterEach(() => cleanupDirs());

const PER_BATCH = 2000;
const SIZE = 300;

describe('kill -9 in the middle of a write burst', () => {
  for (let round = 0; round < 3; round++) {
    it(`loses at most the batch in flight and never corrupts the store (round ${round + 1})`, async () => {
      const dir = tempDir();
      const child = new Child({ dir, batchSize: PER_BATCH, flushIntervalMs: 60_000 });
      await child.next((m) => m.ready === true);
      child.send({ op: 'burst', perBatch: PER_BATCH, size: SIZE });
      let committed = -1;
      const want = 3 + round * 2;
      while (committed < want) committed = (await child.next((m) => typeof m.committed === 'number')).committed as number;
      // Somewhere inside the next batch (building it, or committing it).
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 30)));
      child.kill('SIGKILL');
      await child.exited;
      // The last report may not have been read yet: drain what the child printed.
      for (;;) {
        const m = await child.next((x) => typeof x.committed === 'number', 200).catch(() => null);
        if (m === null) break;
        committed = m.committed as number;
      }

      expect(checkDataFile(join(dir, 'data.mdb'))).toBeNull();
      const i = await startInstance({ dir });
      try {
        expect(i.env.movedAsideCount).toBe(0);
        const env = i.env.env!;
        const batchesFound = new Map<number, number>();
        let bad = 0;
        for (const { key, value } of env.entries.getRange({}) as Iterable<{ key: Buffer; value: Buffer }>) {
          const m = /^b(\d+)-(\d+)$/.exec(key.toString('latin1'));
          if (m === null) {
            bad++;
            continue;
          }
          const b = Number(m[1]);
          batchesFound.set(b, (batchesFound.get(b) ?? 0) + 1);
          if (!value.subarray(HEADER).equals(entryOf(key, SIZE))) bad++;
        }
        expect(bad).toBe(0);
        for (let b = 0; b <= committed; b++) expect(batchesFound.get(b), `batch ${b}`).toBe(PER_BATCH);
        const inFlight = batchesFound.get(committed + 1);
        expect(inFlight === undefined || inFlight === PER_BATCH).toBe(true);
        expect([...batchesFound.keys()].every((b) => b <= committed + 1)).toBe(true);
        expect(env.age.getCount()).toBe(env.entries.getCount());
        // The store takes writes again.
        const k = Buffer.from('after-crash', 'latin1');
        i.tier.set(k, entryOf(k, SIZE), Date.now() + 60_000);
        await i.tier.drain();
        expect(i.tier.get(k)).toBeDefined();
      } finally {
        await i.stop();
      }
    }, 60_000);
  }
});
