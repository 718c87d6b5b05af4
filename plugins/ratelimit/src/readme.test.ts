import { answeringStandIn, decodeResponse, optionsTableGaps, query, readmeHarness } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import * as self from './index.js';
import { ratelimitOptionsSchema } from './options.js';

// The README's examples run here as written; a stand-in replaces the upstream plugin.
const readme = readmeHarness(new URL('../README.md', import.meta.url), {
  '@heimdall/core': await import('@heimdall/core'),
  '@heimdall/plugin-ratelimit': self,
  '@heimdall/plugin-upstream': { default: answeringStandIn('upstream', '192.168.1.20') },
});
afterEach(readme.stop);

describe('README', () => {
  it('the example limits a /24 past its burst of 40 with TC=1 and never the allowlisted network', async () => {
    const started = await readme.run();
    const count = async (address: string, n: number) => {
      let tc = 0;
      for (let i = 0; i < n; i++) if (decodeResponse(await started.handle(query(`n${i}.example`), { address, transport: 'udp' })).tc) tc++;
      return tc;
    };
    expect(await count('198.51.100.7', 45)).toBeGreaterThanOrEqual(4); // 40 at once (a query or so of refill while the test runs)
    expect(await count('192.168.1.5', 100)).toBe(0);
  });

  it('the config example is valid', () => {
    const config = readme.config();
    expect(self.ratelimit(config.plugins[0]!.options as never).options).toMatchObject({ rate: 20, burst: 40, allow: ['192.168.0.0/16'] });
  });

  it('the options table lists every option with its default', () => {
    expect(optionsTableGaps(readme.text, ratelimitOptionsSchema)).toEqual([]);
  });
});
