/**
 * The README's example runs here as written. The testing kit is borrowed by
 * path, as core's tests do: it depends on core, which depends on this
 * package, so declaring it would be a cycle in turbo's build graph (and a
 * fresh clone type-checks this package before the kit is built).
 */
import { udpQuery } from '../../testing/src/clients.js';
import { readmeExamples, runExample } from '../../testing/src/readme.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as self from './index.js';

let socket: self.NativeUdpSocket | null = null;
afterEach(() => {
  socket?.close();
  socket = null;
  vi.restoreAllMocks();
});

describe('README', () => {
  it('has one example; it answers a query over the addon, or says why node:dgram is used instead', async () => {
    const examples = readmeExamples(new URL('../README.md', import.meta.url));
    expect(examples).toHaveLength(1);
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const { udp, socket: opened } = (await runExample(examples[0]!, { '@heimdall/udp': self })) as {
      udp: self.NativeUdpLoad;
      socket: self.NativeUdpSocket | null;
    };
    socket = opened;
    if (!udp.available) {
      expect(socket).toBeNull();
      expect(log).toHaveBeenCalledWith(expect.stringContaining(udp.reason));
      return;
    }
    // id 0x1234, RD, one question: example.com A IN
    const query = Buffer.from('123401000001000000000000076578616d706c6503636f6d0000010001', 'hex');
    const reply = await udpQuery(socket!.localPort(), query, { timeoutMs: 2000 });
    expect(reply.readUInt16BE(0)).toBe(0x1234);
    expect(reply[2]! & 0x80).toBe(0x80);
    expect(reply.subarray(3)).toEqual(query.subarray(3));
    expect(socket!.stats().batches).toBeGreaterThanOrEqual(1);
  });
});
