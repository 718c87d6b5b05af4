import { answeringStandIn, decodeResponse, optionsTableGaps, query, readmeHarness } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import * as self from './index.js';
import { rrlOptionsSchema } from './options.js';

// The README's examples run here as written; a stand-in replaces the upstream plugin.
const readme = readmeHarness(new URL('../README.md', import.meta.url), {
  '@heimdall/core': await import('@heimdall/core'),
  '@heimdall/plugin-rrl': self,
  '@heimdall/plugin-upstream': { default: answeringStandIn('upstream', '192.168.1.20') },
});
afterEach(readme.stop);

describe('README', () => {
  it('the example drops the 11th identical answer to a /24 and slips the 12th; exempt clients get all', async () => {
    const started = await readme.run();
    const outcomes = async (address: string, n: number) => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        const res = await started.handle(query('www.example.com'), { address, transport: 'udp' });
        out.push(res === null ? 'dropped' : decodeResponse(res).tc ? 'slipped' : 'sent');
      }
      return out;
    };
    expect((await outcomes('198.51.100.7', 12)).slice(9)).toEqual(['sent', 'dropped', 'slipped']);
    expect(new Set(await outcomes('10.1.2.3', 30))).toEqual(new Set(['sent']));
  });

  it('the config example is valid', () => {
    const config = readme.config();
    expect(self.rrl(config.plugins[0]!.options as never).options).toMatchObject({ responsesPerSecond: 10, logOnly: true });
  });

  it('the options table lists every option with its default', () => {
    expect(optionsTableGaps(readme.text, rrlOptionsSchema)).toEqual([]);
  });
});
