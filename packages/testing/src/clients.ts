/**
 * Real-socket DNS clients for tests of resolvers with listeners: one query
 * over UDP, or several pipelined on one TCP connection (RFC 7766 framing).
 * Every call is bounded by a timeout and cleans up its socket.
 */
import { Buffer } from 'node:buffer';
import dgram from 'node:dgram';
import net from 'node:net';

/** Options of {@link udpQuery} and {@link tcpQuery}. */
export interface QueryClientOptions {
  /** Server address. Default `127.0.0.1` (`::1` style addresses select IPv6). */
  address?: string;
  /** Local address to send from (e.g. `127.0.0.2` to be another client). */
  localAddress?: string;
  /** Reject after this long. Default 3000 ms. */
  timeoutMs?: number;
}

/** Sends one datagram and resolves with the first reply. */
export async function udpQuery(port: number, message: Uint8Array, options: QueryClientOptions = {}): Promise<Buffer> {
  return (await udpExchange(port, message, options)).reply;
}

/** {@link udpQuery} that also says where the reply came from (to check a listener answers from the address it was asked on). */
export function udpExchange(port: number, message: Uint8Array, options: QueryClientOptions = {}): Promise<{ reply: Buffer; from: dgram.RemoteInfo }> {
  const address = options.address ?? '127.0.0.1';
  const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`udpQuery: no reply from ${address}:${port} in ${options.timeoutMs ?? 3000} ms`)), options.timeoutMs ?? 3000);
    const done = (err: Error | null, reply?: Buffer, from?: dgram.RemoteInfo) => {
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve({ reply: reply!, from: from! });
    };
    socket.once('error', (e) => done(e));
    socket.once('message', (m, from) => done(null, m, from));
    const send = () => socket.send(message, port, address, (e) => e && done(e));
    if (options.localAddress) socket.bind(0, options.localAddress, send);
    else send();
  });
}

/**
 * Opens one TCP connection, writes every message (pipelined, each with its
 * 2-byte length), and resolves with the replies in the order they arrived
 * once there are as many as queries. Rejects on timeout or when the server
 * closes first.
 */
export function tcpQuery(port: number, messages: Uint8Array | readonly Uint8Array[], options: QueryClientOptions = {}): Promise<Buffer[]> {
  const list = messages instanceof Uint8Array ? [messages] : messages;
  const address = options.address ?? '127.0.0.1';
  return new Promise<Buffer[]>((resolve, reject) => {
    const replies: Buffer[] = [];
    let pending: Buffer = Buffer.alloc(0);
    const socket = net.connect({ port, host: address, localAddress: options.localAddress });
    const timer = setTimeout(
      () => done(new Error(`tcpQuery: ${replies.length} of ${list.length} replies from ${address}:${port} in ${options.timeoutMs ?? 3000} ms`)),
      options.timeoutMs ?? 3000,
    );
    let finished = false;
    const done = (err: Error | null) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(replies);
    };
    socket.on('connect', () => {
      const frames: Uint8Array[] = [];
      for (const m of list) {
        const len = Buffer.allocUnsafe(2);
        len.writeUInt16BE(m.length, 0);
        frames.push(len, m);
      }
      socket.write(Buffer.concat(frames));
    });
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const n = pending.readUInt16BE(0);
        replies.push(Buffer.from(pending.subarray(2, 2 + n)));
        pending = pending.subarray(2 + n);
      }
      if (replies.length >= list.length) done(null);
    });
    socket.on('error', (e) => done(e));
    socket.on('close', () =>
      done(replies.length >= list.length ? null : new Error(`tcpQuery: connection closed after ${replies.length} of ${list.length} replies`)),
    );
  });
}
