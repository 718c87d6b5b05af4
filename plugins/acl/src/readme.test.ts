import { answeringStandIn, decodeResponse, optionsTableGaps, query, readmeHarness } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import * as self from './index.js';
import { aclOptionsSchema } from './options.js';

// The README's examples run here as written; a stand-in replaces the upstream plugin.
const readme = readmeHarness(new URL('../README.md', import.meta.url), {
  '@heimdall/core': await import('@heimdall/core'),
  '@heimdall/plugin-acl': self,
  '@heimdall/plugin-upstream': { default: answeringStandIn('upstream', '192.168.1.20') },
});
afterEach(readme.stop);

describe('README', () => {
  it('the example decides as its comment says', async () => {
    const started = await readme.run();
    const ask = async (address: string, name: string, transport: 'udp' | 'https' = 'udp') => {
      const res = await started.handle(query(name), { address, transport });
      return res === null ? 'drop' : decodeResponse(res).rcode === 5 ? 'refuse' : 'allow';
    };
    expect(await ask('203.0.113.9', 'db.internal.example')).toBe('allow');
    expect(await ask('192.168.1.5', 'db.internal.example')).toBe('refuse');
    expect(await ask('192.168.1.5', 'db.internal.example', 'https')).toBe('allow');
    expect(await ask('192.168.1.5', 'www.example.com')).toBe('allow');
    expect(await ask('192.168.66.5', 'www.example.com')).toBe('drop');
    expect(await ask('10.0.0.5', 'www.example.com')).toBe('allow');
    expect(await ask('198.51.100.5', 'www.example.com')).toBe('refuse');
  });

  it('the config example is valid', () => {
    const config = readme.config();
    expect(self.acl(config.plugins[0]!.options as never).options).toEqual({
      rules: [{ action: 'refuse', from: ['*'], names: ['internal.example'] }],
      preset: 'none',
      announce: true,
    });
  });

  it('the options table lists every option with its default', () => {
    expect(optionsTableGaps(readme.text, aclOptionsSchema)).toEqual([]);
  });
});
