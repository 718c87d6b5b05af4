/**
 * The middleware names the entry that blocked a query (`BlockedInfo.rule`):
 * the listed domain that covers the name, or the regex.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { query, type TestResolver, testResolver } from '@heimdall/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Engine, EngineBuilder } from './engine.js';
import type { BlockingOptionsInput } from './options.js';
import { blocking } from './plugin.js';
import { blockedProbe, spec, upstreamStub } from './test-util.js';

const resolvers: TestResolver[] = [];
let cacheDir = '';
beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'heimdall-blocking-mw-test-'));
});
afterAll(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const r of resolvers.splice(0)) await r.stop();
});

async function make(options: BlockingOptionsInput, chains?: Record<string, string[]>) {
  const probe = blockedProbe();
  const r = testResolver([probe.plugin, blocking({ build: 'inline', cacheDir, ...options }), upstreamStub(chains)]);
  resolvers.push(r);
  await r.start();
  return { r, probe };
}

const A = (name: string) => query(name, 'A', { edns: true });

describe('blocking middleware: the rule that blocked', () => {
  it('names the listed domain that covers a subdomain, and the name itself for an exact entry', async () => {
    const { r, probe } = await make({
      groups: { g: { block: [{ inline: 'ads.example.com\n||track.example.org^\n0.0.0.0 host.example.net\n', name: 'mixed' }] } },
    });
    await r.handle(A('x.y.ADS.example.com'));
    expect(probe.seen()).toEqual({ group: 'g', list: 'mixed', reason: 'list', name: 'x.y.ADS.example.com', rule: 'ads.example.com' });
    await r.handle(A('ads.example.com'));
    expect(probe.seen()?.rule).toBe('ads.example.com');
    await r.handle(A('a.track.example.org'));
    expect(probe.seen()?.rule).toBe('track.example.org');
    await r.handle(A('host.example.net'));
    expect(probe.seen()?.rule).toBe('host.example.net');
    await r.handle(A('example.com'));
    expect(probe.seen()).toBeUndefined();
  });

  it('names the regex of a regex block', async () => {
    const { r, probe } = await make({ groups: { g: { block: [{ inline: '/^ad[0-9]+\\./\n/tracker\\.(net|org)$/', name: 'regexes' }] } } });
    await r.handle(A('ad7.example'));
    expect(probe.seen()).toMatchObject({ reason: 'regex', rule: '/^ad[0-9]+\\./' });
    await r.handle(A('my.TRACKER.org'));
    expect(probe.seen()).toMatchObject({ reason: 'regex', rule: '/tracker\\.(net|org)$/' });
  });

  it('names the CNAME target entry for a CNAME block', async () => {
    const { r, probe } = await make({ groups: { g: { block: [{ inline: 'cdn-ads.example', name: 'l' }] } } }, { 'www.example': ['x.cdn-ads.example'] });
    await r.handle(A('www.example'));
    expect(probe.seen()).toMatchObject({ reason: 'cname', name: 'x.cdn-ads.example', rule: 'cdn-ads.example' });
  });

  it('reports the entry of the client group, and an $important entry over a shorter one', async () => {
    const { r, probe } = await make({
      groups: {
        a: { block: [{ inline: 'example.com', name: 'wide' }] },
        b: { block: [{ inline: 'deep.ads.example.com', name: 'deep' }] },
      },
      clients: { default: ['a'], '10.0.0.0/8': ['b'] },
    });
    await r.handle(A('x.deep.ads.example.com'));
    expect(probe.seen()?.rule).toBe('example.com');
    await r.handle(A('x.deep.ads.example.com'), { address: '10.1.1.1' });
    expect(probe.seen()?.rule).toBe('deep.ads.example.com');
  });
});

describe('Engine.ruleFor', () => {
  it('follows the engine: $important first, else the shortest blocking suffix; undefined for a name nothing blocks', () => {
    const b = new EngineBuilder({ s1: 1, s2: 2 });
    b.addText(spec(0, 0), 'example.com\n||imp.ads.example.com^$important\n');
    const e = new Engine(b.finish());
    const d = e.decide('a.imp.ads.example.com', 1);
    expect(e.ruleFor('a.imp.ads.example.com', 1, d)).toBe('imp.ads.example.com');
    expect(e.ruleFor('a.b.example.com', 1, e.decide('a.b.example.com', 1))).toBe('example.com');
    expect(e.ruleFor('other.org', 1, 0)).toBeUndefined();
    expect(e.ruleFor('localhost', 1, 0)).toBeUndefined();
  });
});
