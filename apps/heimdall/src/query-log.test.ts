import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createResolver } from '@heimdall/core';
import { query } from '@heimdall/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { answerer } from './answerer.test-helpers.js';
import { queryLog } from './plugins/query-log.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function logFile(...parts: string[]): string {
  const dir = mkdtempSync(join(os.tmpdir(), 'qlog-'));
  dirs.push(dir);
  return join(dir, ...parts);
}

/** The file's lines once it has `n` of them. */
async function lines(file: string, n: number): Promise<Array<Record<string, unknown>>> {
  return vi.waitFor(() => {
    const got = readFileSync(file, 'utf8').trim().split('\n');
    expect(got).toHaveLength(n);
    return got.map((l) => JSON.parse(l) as Record<string, unknown>);
  });
}

describe('query-log plugin', () => {
  it('writes one JSON line per query to a file, with why it was answered so', async () => {
    const file = logFile('sub', 'queries.log');
    const r = createResolver({ plugins: [queryLog({ output: file }), answerer] });
    await r.start();
    await r.handle(query('Www.Example.com', 'A'), { transport: 'tcp', address: '192.0.2.44' });
    await r.handle(query('ads.example', 'AAAA'));
    await r.handle(query('nas.lan', 'A'));
    await r.handle(query('www.example.com', 'A'), { transport: 'https', address: '192.0.2.45', clientId: 'kids-tablet' });
    await r.stop();
    const [www, ads, nas, doh] = await lines(file, 4);
    expect(doh).toMatchObject({ client: '192.0.2.45', clientId: 'kids-tablet', transport: 'https' });
    expect(www).not.toHaveProperty('clientId');
    expect(www).toMatchObject({ msg: 'query', client: '192.0.2.44', transport: 'tcp', qname: 'Www.Example.com', qtype: 'A', rcode: 'NOERROR', answers: 1 });
    expect(www).toMatchObject({ cache: 'miss', upstream: 'udp://192.0.2.53:53' });
    expect(www).not.toHaveProperty('blocked');
    expect(typeof www!.ms).toBe('number');
    expect(ads).toMatchObject({ qname: 'ads.example', qtype: 'AAAA', rcode: 'NXDOMAIN', blocked: { list: 'ads.txt', group: 'kids', reason: 'list' } });
    expect(ads).not.toHaveProperty('cache');
    expect(nas).toMatchObject({ qname: 'nas.lan', rewrite: { qname: 'nas.home.arpa', qtype: 'A' }, rcode: 'NOERROR' });
  });

  it('samples', async () => {
    const file = logFile('q.log');
    const r = createResolver({ plugins: [queryLog({ output: file, sampleRate: 0.5 }), answerer] });
    await r.start();
    for (let i = 0; i < 400; i++) await r.handle(query(`n${i}.example`, 'A'));
    await r.stop();
    const n = await vi.waitFor(() => {
      const count = readFileSync(file, 'utf8').trim().split('\n').length;
      expect(count).toBeGreaterThan(120);
      return count;
    });
    expect(n).toBeLessThan(280);
  });

  it('stays out of the chain at sampleRate 0', () => {
    const r = createResolver({ plugins: [queryLog({ sampleRate: 0 }), answerer] });
    expect(r.chain).toEqual(['answer']);
  });

  it('validates its options with its schema', () => {
    expect(queryLog().options).toEqual({ sampleRate: 1, output: 'stdout' });
    expect(() => queryLog({ sampleRate: 2 })).toThrow('query-log.sampleRate: must be a number in 0..1');
    expect(() => queryLog({ output: '' })).toThrow('query-log.output: must not be empty');
    expect(() => queryLog({ rate: 1 } as never)).toThrow('query-log.rate: unknown option (known: sampleRate, output)');
  });
});
