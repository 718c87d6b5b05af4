/**
 * What the upstream tests set up again and again: FakeUpstream servers on
 * loopback that answer A queries with one address, and the servers, clients
 * and resolvers a test opened, closed after it (`afterEach(closeAll)`).
 */
import { FakeUpstream, record } from '@heimdall/testing';

/** Servers and clients to close after the test. */
export const open: { close(): Promise<void> }[] = [];
/** Resolvers to stop after the test (before the servers close). */
export const resolvers: { stop(): Promise<void> }[] = [];

/** Stops the test's resolvers, then closes its servers and clients (newest first). */
export async function closeAll(): Promise<void> {
  while (resolvers.length) await resolvers.pop()!.stop();
  while (open.length) await open.pop()!.close();
}

/** A FakeUpstream answering every A query with `address` (other types: NOERROR, no records), closed after the test. */
export async function fake(address = '10.0.0.1'): Promise<FakeUpstream> {
  const up = await FakeUpstream.start();
  up.otherwise((q) => (q.type === 1 ? [record(q.name, 'A', address)] : {}));
  open.push(up);
  return up;
}
