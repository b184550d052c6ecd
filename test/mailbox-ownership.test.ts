/**
 * Buffer ownership across real processes (docs/mailboxes.md, "Ownership"): each case of the
 * threat model, played by a peer speaking the wire format through raw DPDK handles while
 * checked traffic runs through the same receiver. Checked: no wrong answer, what the model
 * promises about buffers (counted), the receiver alive.
 */
import { describe, expect, it } from 'vitest';
import type { Agent, TestGroup } from './harness/group.js';
import { useTestGroups } from './harness/use-groups.js';
import { fixture } from './harness/fixtures.js';
import { poll, sleep } from './harness/wait.js';

const group = useTestGroups();
const mb = fixture('mailbox');
const own = fixture('ownership');

interface TrafficResult {
  sent: number;
  answered: number;
  wrong: number;
  duplicates: number;
  failures: string[];
}

/** A receiver (primary) serving checked traffic from a client, and a third process to misbehave. */
async function setup(g: TestGroup): Promise<{ receiver: Agent; client: Agent; peer: Agent; slot: number; victimId: number }> {
  const receiver = await g.startAgent({ procType: 'primary' });
  const client = await g.startAgent({ procType: 'secondary' });
  const peer = await g.startAgent({ procType: 'secondary' });
  const slot = await receiver.use(own).serveEcho('echo', 'victim');
  await client.use(own).startTraffic('echo', 16);
  await poll(
    () => client.use(own).trafficAnswered(),
    (n) => n >= 100,
    15_000,
  );
  const victimId = (await peer.use(mb).addressOf('victim'))!.id;
  return { receiver, client, peer, slot, victimId };
}

function expectCleanTraffic(t: TrafficResult): void {
  expect(t.failures).toEqual([]);
  expect(t.wrong).toBe(0);
  expect(t.duplicates).toBe(0);
  expect(t.answered).toBe(t.sent);
  expect(t.answered).toBeGreaterThan(100);
}

describe('mailbox buffer ownership', () => {
  it('an honest but buggy peer (sent twice, replayed after free, used after free, freed after send, enqueued before written, killed mid-write): refused, never freed twice, nothing leaked', async () => {
    const g = group('own-buggy');
    const { receiver, client, peer, slot, victimId } = await setup(g);
    const r = await peer.use(own).buggyPeer(slot, victimId, 'bug');
    // what the peer's own protocol calls answered: publish after its release and release after
    // its send are refused to it
    expect(r.steps).toEqual({ replayFreedByReceiver: true, releasedUnsent: true, publishAfterFree: false, releaseAfterSend: false });
    await peer.use(own).sendText('victim', 'bug-legit');
    // killed mid-write: 5 buffers taken and written, the first one enqueued unpublished
    const dying = await g.startAgent({ procType: 'secondary' });
    const dyingSlot = await dying.use(own).dieMidWrite(slot, victimId, 5);
    expect(await peer.use(own).writingBy(dyingSlot)).toBe(5);
    dying.kill('SIGKILL');
    // its reaper returns what it was writing, found by the owner words
    expect(
      await poll(
        () => peer.use(own).writingBy(dyingSlot),
        (n) => n === 0,
        15_000,
      ),
    ).toBe(0);

    const refused = r.refusable + 1;
    const errors = await poll(
      () => receiver.use(mb).errors(),
      (e) => e.length >= refused,
      15_000,
    );
    expect(errors.map((e) => e.code)).toEqual(Array(refused).fill('BAD_DESCRIPTOR'));
    const seen = await poll(
      () => receiver.use(own).victimSeen(),
      (s) => Object.keys(s).length >= 5,
      15_000,
    );
    // each message sent once arrived once; what was refused never arrived
    expect(seen).toEqual({ 'bug-twice': 1, 'bug-replay': 1, 'bug-sent': 1, 'bug-early': 1, 'bug-legit': 1 });

    expectCleanTraffic(await client.use(own).stopTraffic());
    // never freed twice, nothing leaked: once everyone is idle, every buffer is back, once
    const counters = await poll(
      () => receiver.use(own).poolCounters(),
      (c) => c.available === c.count,
      15_000,
    );
    expect(counters).toMatchObject({ takeConflicts: 0, freeConflicts: 0 });
    expect(counters.available).toBe(counters.count);
    expect(await receiver.use(mb).errors()).toHaveLength(refused);
  }, 60_000);

  it('a member bypassing the protocol with raw mempool calls: its forgeries are delivered, a buffer the pool holds twice goes to one taker at a time (counted), a replay one generation late is refused, no wrong answer', async () => {
    const g = group('own-raw');
    const { receiver, client, peer, slot, victimId } = await setup(g);
    const before = await receiver.use(own).poolCounters();
    // the bulk get of a two-message batch returns the doubled buffer twice: one message gets it
    expect(await peer.use(own).sendWithDuplicateInPool('victim', 'dup')).toBe(1);
    const afterDup = await receiver.use(own).poolCounters();
    expect(afterDup.takeConflicts).toBe(before.takeConflicts + 1);
    // the forgery of issue 13, 50 times: accepted (nothing tells it from a real message)
    expect(await peer.use(own).forgeRaw(slot, victimId, 'forged', 50)).toBe(50);
    // a replay meeting its buffer in flight again, one generation later: refused, and the
    // message now in that buffer is delivered once
    const restarts = await peer.use(own).replayInFlightAgain(slot, victimId, 'again');
    const seen = await poll(
      () => receiver.use(own).victimSeen(),
      (s) => s['again-second'] === 1 && Object.keys(s).length >= 52 + restarts,
      15_000,
    );
    expect(seen['dup-a']).toBe(1);
    for (let i = 0; i < 50; i++) expect(seen[`forged-${i}`]).toBe(1);
    for (let i = 0; i <= restarts; i++) expect(seen[`again-first-${i}`]).toBe(1);
    expect(seen['again-second']).toBe(1);
    // the doubled buffers keep circulating under checked traffic
    await sleep(2000);
    expectCleanTraffic(await client.use(own).stopTraffic());
    const after = await receiver.use(own).poolCounters();
    expect(after.available).toBeLessThanOrEqual(after.count);
    expect(after.freeConflicts).toBe(0);
    console.log(`raw-mempool forgeries: ${after.takeConflicts - before.takeConflicts} doubled buffers dropped at take`);
    expect((await receiver.use(mb).errors()).map((e) => e.code)).toEqual(['BAD_DESCRIPTOR']);
    await peer.use(own).sendText('victim', 'still-alive');
    await poll(
      () => receiver.use(own).victimSeen(),
      (s) => s['still-alive'] === 1,
      15_000,
    );
  }, 60_000);
});
