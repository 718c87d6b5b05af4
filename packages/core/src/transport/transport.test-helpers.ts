/** Helpers shared by the transport tests (not part of the build). */
import type net from 'node:net';
import type { QueryHandler } from './types.js';

/** A DNS message with its two-octet length prefix (TCP, DoT). */
export function frame(msg: Buffer): Buffer {
  const f = Buffer.alloc(2 + msg.length);
  f.writeUInt16BE(msg.length, 0);
  msg.copy(f, 2);
  return f;
}

/**
 * A test client socket's `connect` and `close` as promises (errors are
 * ignored: the tests look at what closed, not why). `onClose` runs at the
 * close, before `closed` resolves.
 */
export function socketEvents(socket: net.Socket, onClose: () => void): { connected: Promise<void>; closed: Promise<void> } {
  socket.on('error', () => {});
  const connected = new Promise<void>((r) => socket.once('connect', () => r()));
  const closed = new Promise<void>((r) =>
    socket.once('close', () => {
      onClose();
      r();
    }),
  );
  return { connected, closed };
}

/** A broken query handler: odd calls throw, even calls reject. `calls` counts them. */
export class BrokenHandler implements QueryHandler {
  calls = 0;

  process(): Buffer | null | Promise<Buffer | null> {
    this.calls++;
    if (this.calls % 2 === 1) throw new Error('sync bug');
    return Promise.reject(new Error('async bug'));
  }
}
