import { describe, expect, it } from 'vitest';
import { TestGroup, type Agent } from './harness/group.js';
import { useTestGroups } from './harness/use-groups.js';
import { fixture } from './harness/fixtures.js';
import { poll, sleep } from './harness/wait.js';

const group = useTestGroups();

const mb = fixture('mailbox');

async function trio(label: string): Promise<{ g: TestGroup; p: Agent; s1: Agent; s2: Agent }> {
  const g = group(label);
  const p = await g.startAgent({ procType: 'primary' });
  const s1 = await g.startAgent({ procType: 'secondary' });
  const s2 = await g.startAgent({ procType: 'secondary' });
  return { g, p, s1, s2 };
}

describe('mailboxes: any process to any process', () => {
  it('delivers secondary->secondary, primary->one secondary, secondary->primary and within one process', async () => {
    const { p, s1, s2 } = await trio('any');
    await p.use(mb).open('at-primary');
    await s1.use(mb).open('at-s1');
    await s2.use(mb).open('at-s2');
    expect(await s1.use(mb).send('at-s2', { hello: 'from s1', n: 1 })).toBe('sent');
    expect(await p.use(mb).send('at-s1', { hello: 'from primary', list: [1, 2, 3] })).toBe('sent');
    expect(await s2.use(mb).send('at-primary', 'from s2')).toBe('sent');
    expect(await p.use(mb).send('at-primary', { self: true })).toBe('sent');
    await s2.use(mb).waitFor('at-s2', 1);
    await s1.use(mb).waitFor('at-s1', 1);
    await p.use(mb).waitFor('at-primary', 2);
    expect(await s2.use(mb).received('at-s2')).toEqual([{ hello: 'from s1', n: 1 }]);
    expect(await s1.use(mb).received('at-s1')).toEqual([{ hello: 'from primary', list: [1, 2, 3] }]);
    expect(await p.use(mb).received('at-primary')).toEqual(expect.arrayContaining(['from s2', { self: true }]));
    // the primary did not get s1's or s2's messages: delivery is to one chosen process
    expect(await p.use(mb).received('at-s1')).toEqual([]);
  });

  it('keeps each sender order to one mailbox, with several senders at once', async () => {
    const { p, s1, s2 } = await trio('order');
    await p.use(mb).open('sink', 256);
    const n = 5000;
    const [a, b] = await Promise.all([s1.use(mb).sendSequence('sink', n), s2.use(mb).sendSequence('sink', n)]);
    expect(a).toEqual({ sent: n });
    expect(b).toEqual({ sent: n });
    await p.use(mb).waitFor('sink', 2 * n, 60_000);
    expect(await p.use(mb).checkOrder('sink')).toEqual({ count: 2 * n, inOrder: true, senders: 2 });
  });

  it('sends batches in one call each, in order, with large values mixed in and a small capacity', async () => {
    const { p, s1, s2 } = await trio('batch');
    await p.use(mb).open('batched', 50);
    const [a, b] = await Promise.all([s1.use(mb).sendBatches('batched', 3000, 64), s2.use(mb).sendBatches('batched', 3000, 300)]);
    expect([a, b]).toEqual([3000, 3000]);
    await p.use(mb).waitFor('batched', 6000, 60_000);
    expect(await p.use(mb).checkOrder('batched')).toEqual({ count: 6000, inOrder: true, senders: 2 });
    // msgpackr's buffer is shared by every Packr of a process: bytes packed after a batch and
    // kept (a reply the NATS client sends on its next flush) were written over by the next batch
    await p.use(mb).open('kept', 4096);
    expect(await s1.use(mb).batchesBesideKeptPacks('kept', 2000)).toEqual({ sent: 2000, overwritten: 0 });
  });

  it('decodes small values of changing shapes from reused pool buffers: each arrives as sent and stays so', async () => {
    const { p, s1 } = await trio('varied');
    await p.use(mb).open('varied', 256);
    expect(await s1.use(mb).sendVaried('varied', 5000)).toBe(5000);
    await p.use(mb).waitFor('varied', 5000, 60_000);
    expect(await p.use(mb).checkVaried('varied')).toEqual({ count: 5000, mismatches: 0 });
  });

  it('carries raw Buffers as they are, and values larger than a pool buffer up to 16 MiB', async () => {
    const g = group('big');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(mb).open(['raw', 'large']);
    expect(await s.use(mb).sendRaw('raw', 64, 0xab)).toBe('sent');
    expect(await s.use(mb).sendRaw('raw', 100_000, 0x01)).toBe('sent');
    await p.use(mb).waitFor('raw', 2);
    const raws = await p.use(mb).received('raw');
    expect(raws[0]).toEqual({ raw: 'ab'.repeat(64), length: 64 });
    expect(raws[1]).toMatchObject({ length: 100_000 });
    for (const size of [3000, 1 << 20, 16 << 20]) expect(await s.use(mb).sendLarge('large', size)).toBe('sent');
    await p.use(mb).waitFor('large', 3, 60_000);
    expect(await p.use(mb).checkLarge('large')).toEqual([
      { length: 3000, ok: true },
      { length: 1 << 20, ok: true },
      { length: 16 << 20, ok: true },
    ]);
    // every large block was freed by the receiver
    expect((await p.use(mb).poolInfo()).largeInUse).toBe(0);
  });
});

describe('mailboxes: attaching never sleeps on the JS thread', () => {
  it('while another process still creates the group objects: open throws EBUSY at once, openAsync waits on timers and then attaches', async () => {
    const g = group('attachwait');
    const p = await g.startAgent({ procType: 'primary' });
    const r = await p.use(mb).attachWhileCreating(300);
    expect(r.syncCode).toBe('EBUSY');
    expect(r.waitedMs).toBeGreaterThanOrEqual(250);
    // a 5 ms timer kept running while openAsync waited: the event loop was never held
    expect(r.ticks).toBeGreaterThanOrEqual(10);
    // and the mailboxes work afterwards, with a secondary joining
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(mb).open('after-wait');
    expect(await s.use(mb).send('after-wait', { ok: 1 })).toBe('sent');
    await p.use(mb).waitFor('after-wait', 1);
    expect(await p.use(mb).received('after-wait')).toEqual([{ ok: 1 }]);
  });
});

describe('mailboxes: names', () => {
  it('refuses a taken name, an unknown name and a bad name with typed errors', async () => {
    const g = group('names');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(mb).open('taken');
    await expect(s.use(mb).open('taken')).rejects.toMatchObject({ code: 'NAME_TAKEN' });
    expect(await s.use(mb).send('nobody-here', 1)).toBe('NO_SUCH_MAILBOX');
    expect(await s.use(mb).trySend('x'.repeat(64), 1)).toBe('INVALID_NAME');
    await p.use(mb).close('taken');
    expect(await s.use(mb).send('taken', 1)).toBe('NO_SUCH_MAILBOX');
    // the name is free again, in another process
    await s.use(mb).open('taken');
    expect(await p.use(mb).send('taken', 'moved')).toBe('sent');
    await s.use(mb).waitFor('taken', 1);
  });
});

describe('mailboxes: the options of a process', () => {
  it('keepAlive must be a boolean; a later open must agree with the first (it cannot change what the first decided)', async () => {
    const p = await group('openOptions').startAgent({ procType: 'primary' });
    expect(
      await p
        .use(mb)
        .openEach([
          { keepAlive: 'yes' as unknown as boolean },
          { spinUs: 20, poolBuffers: 1024 },
          {},
          { spinUs: 20 },
          { poolBuffers: 1024, keepAlive: true },
          { spinUs: 500 },
          { bufferSize: 65536 },
          { keepAlive: false },
        ]),
    ).toEqual(['INVALID_OPTION', 'ok', 'ok', 'ok', 'ok', 'INVALID_OPTION', 'INVALID_OPTION', 'INVALID_OPTION']);
  });
});

describe('mailboxes: messages that cannot go', () => {
  it('a symbol or a circular value fails with ENCODE_FAILED naming the mailbox; trySendMany sends those before it', async () => {
    const p = await group('unencodable').startAgent({ procType: 'primary' });
    await p.use(mb).open('strict');
    const outcomes = await p.use(mb).sendUnencodable('strict');
    expect(outcomes.map(([how, cls, code]) => [how, cls, code])).toEqual([
      ['trySend symbol', 'MpBusError', 'ENCODE_FAILED'],
      ['trySend circular', 'MpBusError', 'ENCODE_FAILED'],
      ['send circular', 'MpBusError', 'ENCODE_FAILED'],
      ['trySendMany', 'MpBusError', 'ENCODE_FAILED'],
    ]);
    for (const [, , , message] of outcomes) expect(message).toMatch(/mailbox 'strict' cannot be encoded/);
    expect(outcomes[3]![3]).toMatch(/values\[1\].*the 1 before it were sent/);
    await p.use(mb).waitFor('strict', 1);
    expect(await p.use(mb).received('strict')).toEqual([1]);
    // a batch that is no array is refused (a string went as its characters, a number as nothing)
    expect(await p.use(mb).sendManyNotArrays('strict')).toEqual(['INVALID_OPTION', 'INVALID_OPTION', 'INVALID_OPTION']);
  });

  it('a message larger than all the hugepages fails at once with MESSAGE_TOO_LARGE (not after its timeout)', async () => {
    const p = await group('tooLarge').startAgent({ procType: 'primary' });
    await p.use(mb).open('huge');
    // (the send would have waited its 10 s timeout for room, then failed SEND_TIMEOUT)
    expect(await p.use(mb).sendLargerThanHugepages('huge')).toEqual(['MESSAGE_TOO_LARGE', 'MESSAGE_TOO_LARGE']);
  });

  it("a large message the group's hugepage heap cannot give a block fails at once with MESSAGE_TOO_LARGE, saying why; the messages after it go", async () => {
    // --socket-limit caps the group's heap (as a hugetlb cgroup's limit, a pod's hugepages-2Mi,
    // does): a 100 MiB block cannot be had, though the machine has the hugepages
    const p = await group('heapShort').startAgent({ procType: 'primary', extraEalArgs: ['--socket-limit', '96'] });
    await p.use(mb).open('capped');
    const sent = await p.use(mb).sendBeyondTheHeap('capped', 100 << 20);
    // (each send waited its 10 s timeout, asking the heap again and again, then failed SEND_TIMEOUT)
    expect(sent.outcomes).toEqual(['MESSAGE_TOO_LARGE', 'MESSAGE_TOO_LARGE', 'MESSAGE_TOO_LARGE', 'MESSAGE_TOO_LARGE', 'sent', 'sent']);
    // ('before' went: trySendMany throws for the message that cannot go, those before it sent)
    expect(sent.slowestMs).toBeLessThan(5000);
    expect(sent.message).toMatch(/100\.0 MiB .*'capped'.*hugepage memory.*send it in parts/);
    expect(sent.arrived).toEqual(['before', 'small', 1 << 20]);
  });

  it('sends after the runtime closed fail with CLOSED', async () => {
    const p = await group('afterClose').startAgent({ procType: 'primary' });
    await p.use(mb).open('gone-with-it');
    expect(await p.use(mb).sendAfterClose('gone-with-it')).toEqual(['CLOSED', 'CLOSED', 'CLOSED', 'CLOSED']);
  });
});

describe('mailboxes: death watch of names', () => {
  it('a watched name reports closed when its owner closes it, process-died when its process is killed', async () => {
    const g = group('watch');
    const p = await g.startAgent({ procType: 'primary' });
    const owner = await g.startAgent({ procType: 'secondary' });
    await owner.use(mb).open(['w-closed', 'w-killed']);
    await p.use(mb).watch('w-closed');
    await p.use(mb).watch('w-killed');
    const closed = p.next<{ name: string; reason: string }>('gone', 10_000, (e) => e.name === 'w-closed');
    await owner.use(mb).close('w-closed');
    expect(await closed).toEqual({ name: 'w-closed', reason: 'closed' });
    const killed = p.next<{ name: string; reason: string; pid: number }>('gone', 10_000, (e) => e.name === 'w-killed');
    owner.kill('SIGKILL');
    expect(await killed).toEqual({ name: 'w-killed', reason: 'process-died', pid: owner.pid });
    const unknown = p.next<{ name: string; reason: string }>('gone', 10_000, (e) => e.name === 'never-there');
    await p.use(mb).watch('never-there');
    expect((await unknown).reason).toBe('closed');
  });
});

describe('mailboxes: backpressure', () => {
  it('trySend reports full, send rejects after its timeout, or resolves once there is room; nothing is dropped', async () => {
    const g = group('full');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(mb).openUnread('slow', 16);
    // nobody reads 'slow': its messages wait and count against its capacity of 16
    const [sent, answer] = await s.use(mb).fill('slow', 1000);
    expect(answer).toBe('mailbox-full');
    expect(sent).toBe(16);
    expect(await s.use(mb).depth('slow')).toBe(16);
    expect(await s.use(mb).send('slow', { from: 0, seq: 99 }, 300)).toBe('SEND_TIMEOUT');
    const waiting = s.use(mb).sendSequence('slow', 20);
    await sleep(300);
    await p.use(mb).startReading('slow');
    expect(await waiting).toEqual({ sent: 20 });
    await p.use(mb).waitFor('slow', 36);
    const got = await p.use(mb).received('slow');
    expect(got.map((m) => (m as { seq: number }).seq)).toEqual([...Array(16).keys(), ...Array(20).keys()]);
    expect(await p.use(mb).errors()).toEqual([]);
  });

  it('a full mailbox makes send wait without blocking the event loop, then deliver everything', async () => {
    const g = group('wait');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(mb).open('capped', 4);
    const out = await s.use(mb).sendSequence('capped', 3000);
    expect(out).toEqual({ sent: 3000 });
    await p.use(mb).waitFor('capped', 3000, 60_000);
    expect(await p.use(mb).checkOrder('capped')).toEqual({ count: 3000, inOrder: true, senders: 1 });
  });

  it('a sender waiting for room sleeps until the receiver drains, then sends again', async () => {
    const g = group('room');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(mb).openUnread('slow', 8); // nobody reads: messages stay pending
    const room = s.next<{ waitedMs: number; cpuMs: number; waits: number; error?: string }>('room');
    expect(await s.use(mb).fillThenWaitForRoom('slow', 100)).toEqual([8, 'mailbox-full']);
    await sleep(500);
    await p.use(mb).startReading('slow'); // drains the backlog: the sender's doorbell rings
    const woke = await room;
    expect(woke.error).toBeUndefined();
    expect(woke.waitedMs).toBeGreaterThanOrEqual(400);
    // Woken by the drain's doorbell or the 10 ms recheck, never in a tight loop.
    expect(woke.waits).toBeLessThan(woke.waitedMs / 5);
    // It slept: a sender retrying in a loop would use about all of the ~500 ms it waited.
    expect(woke.cpuMs).toBeLessThan(woke.waitedMs / 2);
    await p.use(mb).waitFor('slow', 9);
  });
});

describe('mailboxes: bursts', () => {
  it('bursts$ hands over what each drain got, in order, raw and encoded and large, backlog first', async () => {
    const g = group('bursts');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(mb).openUnread('bulk', 4096);
    expect(await s.use(mb).send('bulk', 'before')).toBe('sent'); // waits in the backlog
    await sleep(100);
    expect(await p.use(mb).startBursts('bulk')).toEqual({ messagesRefused: 'INVALID_OPTION' });
    expect(await s.use(mb).sendBatches('bulk', 1000, 100)).toBe(1000);
    expect(await s.use(mb).sendRaw('bulk', 8, 0xab)).toBe('sent');
    expect(await s.use(mb).sendLarge('bulk', 1 << 20)).toBe('sent');
    expect(await s.use(mb).send('bulk', 'after')).toBe('sent');
    const seen = await poll(
      () => p.use(mb).burstsSeen('bulk'),
      (v) => v.values.length >= 1004,
    );
    expect(seen.values.length).toBe(1004);
    expect(seen.values[0]).toBe('before');
    const batch = seen.values.slice(1, 1001) as Array<{ seq: number }>;
    expect(batch.every((v, i) => v.seq === i)).toBe(true);
    expect(seen.values[1001]).toBe('abababababababab');
    expect(seen.values[1002]).toEqual({ large: 1 << 20, ok: true });
    expect(seen.values[1003]).toBe('after');
    // fewer emissions than messages: bursts, not one per message
    expect(seen.bursts).toBeLessThan(1004);
    expect(await p.use(mb).errors()).toEqual([]);
  });

  it('a backlog of large messages is drained a few per turn of the event loop, in order and intact, and bodies held stay intact', async () => {
    const g = group('large-backlog');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(mb).openUnread('big', 64);
    await p.use(mb).startLargeTurns('big', 24);
    const blocked = p.use(mb).blockUntilDepth('big', 24, 20_000); // the 24 messages wait in its inbox meanwhile
    await sleep(100);
    expect(await s.use(mb).sendLargeMany('big', 24, 1 << 20)).toBe(24);
    await blocked;
    const seen = await poll(
      () => p.use(mb).largeTurns('big'),
      (v) => v.count >= 24,
    );
    expect(seen).toMatchObject({ count: 24, inOrder: true, intact: true, keptIntact: true });
    // a drain copies out about 4 MiB of large messages (native/mbx_drain.cc), so a turn of the
    // event loop (at most two drains: a doorbell wake-up and the scheduled turn) delivers a few,
    // not the whole backlog
    expect(seen.mostPerTurn).toBeLessThanOrEqual(8);
    expect(await p.use(mb).errors()).toEqual([]);
  });

  it("large blocks are carved from the group's arena (its one heap call) and kept for the next large messages (a second backlog makes none), within 64 MiB", async () => {
    const g = group('large-reuse');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(mb).openUnread('big', 64);
    await p.use(mb).startLargeTurns('big', 99);
    const rounds = [];
    for (const firstSeq of [0, 24]) {
      const blocked = p.use(mb).blockUntilDepth('big', 24, 20_000); // all 24 are in flight at once
      await sleep(100);
      expect(await s.use(mb).sendLargeMany('big', 24, 1 << 20, firstSeq)).toBe(24);
      await blocked;
      await poll(
        () => p.use(mb).largeTurns('big'),
        (v) => v.count >= firstSeq + 24,
      );
      rounds.push(await s.use(mb).poolInfo());
    }
    // the first backlog carved a block per message from the group's arena (its one heap call),
    // the second took them all again
    const MiB = 1 << 20;
    expect(rounds[0]).toMatchObject({ largeHeapCalls: 1, largeKept: 24, largeInUse: 0, largeArenaUsed: 24 * 1.25 * MiB });
    expect(rounds[1]).toMatchObject({ largeHeapCalls: 1, largeKept: 24, largeInUse: 0, largeArenaUsed: 24 * 1.25 * MiB });
    // a receiver that lags: the blocks stay within 64 MiB (51 of 1.25 MiB), then the sender
    // waits for them instead of growing the heap
    const blocked = p.use(mb).blockUntilDepth('big', 51, 20_000, 500); // and while the sender is refused
    await sleep(100);
    expect(await s.use(mb).fillLarge('big', 80, 1 << 20, 48)).toEqual([51, 'no-buffers']);
    await blocked;
    await poll(
      () => p.use(mb).largeTurns('big'),
      (v) => v.count >= 48 + 51,
    );
    expect(await s.use(mb).poolInfo()).toMatchObject({ largeHeapCalls: 1, largeKept: 51, largeInUse: 0, largeArenaUsed: 51 * 1.25 * MiB });
    expect((await p.use(mb).poolInfo()).largeHeapCalls).toBe(0); // the receiver frees none
    expect(await p.use(mb).largeTurns('big')).toMatchObject({ count: 99, inOrder: true, intact: true, keptIntact: true });
    expect(await p.use(mb).errors()).toEqual([]);
  });

  it("an arena that could not be had (the group's memory was short) is reserved once memory is free again", async () => {
    const g = group('arena-retry');
    // --socket-limit: the heap cannot grow past 128 MB. (memoryMb alone only preallocates: DPDK
    // then grows the heap on demand, and crowdHeap took nearly every hugepage of the machine,
    // failing other groups' starts beside it with HUGEPAGES_NOT_RESERVED. legacyMem maps every
    // free hugepage at start before it lets go of those beyond memoryMb: the same, briefly.)
    const p = await g.startAgent({ procType: 'primary', memoryMb: 128, extraEalArgs: ['--socket-limit', '128'] });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(mb).openUnread('big', 64);
    await p.use(mb).startLargeTurns('big', 2);
    expect(await s.use(mb).crowdHeap()).toBeGreaterThan(8);
    await s.use(mb).freeCrowd(3); // 12 MiB free: room for a block, not for the 64 MiB arena
    expect(await s.use(mb).sendLargeMany('big', 1, 1 << 20)).toBe(1);
    expect(await s.use(mb).poolInfo()).toMatchObject({ largeHeapCalls: 2, largeArenaUsed: 0 }); // the arena tried, then the block
    await s.use(mb).freeCrowd();
    await sleep(1100); // a failed reservation is tried again after a second
    expect(await s.use(mb).sendLargeMany('big', 1, 3 << 20, 1)).toBe(1); // no kept block fits it
    expect(await s.use(mb).poolInfo()).toMatchObject({ largeHeapCalls: 3, largeArenaUsed: 3.5 * (1 << 20) });
    await poll(
      () => p.use(mb).largeTurns('big'),
      (v) => v.count >= 2,
    );
    expect(await p.use(mb).largeTurns('big')).toMatchObject({ count: 2, inOrder: true, intact: true });
    expect(await p.use(mb).errors()).toEqual([]);
  });

  it('a burst subscription ended in the middle of a drain loses nothing: the next subscriber gets it', async () => {
    const g = group('burst-unsub');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(mb).burstsThatUnsubscribe('one', 'two');
    const firstBurst = p.next('first-burst');
    const blocked = p.use(mb).blockFor(400); // both messages land in one drain
    await sleep(100);
    expect(await s.use(mb).send('one', 'first')).toBe('sent');
    expect(await s.use(mb).send('two', 'second')).toBe('sent');
    await blocked;
    await firstBurst; // its handler ended the other mailbox's burst subscription
    await p.use(mb).startReading('two');
    await p.use(mb).waitFor('two', 1);
    expect(await p.use(mb).received('two')).toEqual(['second']);
    expect(await p.use(mb).errors()).toEqual([]);
  });
});

describe('mailboxes: safety', () => {
  it('garbage descriptors on an inbox are reported on errors$ and the receiver keeps working', async () => {
    const g = group('garbage');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    const slot = await p.use(mb).open('victim');
    const before = await p.use(mb).poolInfo();
    const addr = (await s.use(mb).addressOf('victim'))!;
    const written = await s.use(mb).injectGarbage(slot, addr.id);
    expect(written).toBe(14);
    // raw ring writers do not ring the doorbell: a parked receiver finds them on its periodic look
    const errs = await poll(
      () => p.use(mb).errors(),
      (e) => e.length >= 14,
    );
    const codes = errs.map((e) => e.code).sort();
    expect(codes.filter((c) => c === 'BAD_DESCRIPTOR').length).toBe(12);
    expect(codes).toContain('DECODE_FAILED');
    expect(codes).toContain('DEAD_LETTER');
    expect(await s.use(mb).send('victim', 'still alive?')).toBe('sent');
    await p.use(mb).waitFor('victim', 1);
    expect(await p.use(mb).received('victim')).toEqual(['still alive?']);
    // forged buffers that were in flight to the receiver went back to the pool; the one that
    // was not in flight stays with whoever holds it (here: leaked by the test on purpose)
    const after = await poll(
      () => p.use(mb).poolInfo(),
      (i) => i.available >= before.available - 1,
    );
    expect(after.available).toBe(before.available - 1);
  });

  it('a SIGKILLed process: its names go within a second, senders get a typed error, its buffers come back', async () => {
    const g = group('kill');
    const p = await g.startAgent({ procType: 'primary' });
    const victim = await g.startAgent({ procType: 'secondary' });
    const sender = await g.startAgent({ procType: 'secondary' });
    await p.use(mb).join();
    await victim.use(mb).openUnread('doomed', 100_000);
    const base = await sender.use(mb).poolInfo();
    // messages that will sit in the victim's inbox when it dies
    await victim.use(mb).join();
    const [queued] = await sender.use(mb).fill('doomed', 500);
    expect(queued).toBeGreaterThan(0);
    await poll(
      () => p.use(mb).peers(),
      (v) => v.length === 3,
    );
    const down = p.next('peerDown', 10_000, (d: { pid: number }) => d.pid === victim.pid);
    victim.kill('SIGKILL');
    await down;
    const answer = await sender.use(mb).send('doomed', 'anyone?', 2000);
    expect(['PEER_GONE', 'NO_SUCH_MAILBOX']).toContain(answer);
    expect(await sender.use(mb).send('doomed', 'anyone?', 2000)).toBe('NO_SUCH_MAILBOX');
    const after = await poll(
      () => sender.use(mb).poolInfo(),
      (i) => i.available >= base.available - 64,
    );
    // buffers in the dead inbox were reclaimed (mempool caches of live lcores may hold a few)
    expect(after.available).toBeGreaterThanOrEqual(base.available - 64 * 3);
  });

  it('a process killed while it streams large messages stalls no one: its blocks are kept, the heap is left alone', async () => {
    // The group's memory is not preallocated: a call into DPDK's heap may map or unmap hugepages,
    // waiting up to 5 s for every process's rte_mp reply, under locks a killed process keeps.
    const g = group('large-kill');
    const p = await g.startAgent({ procType: 'primary' });
    const victim = await g.startAgent({ procType: 'secondary' });
    const other = await g.startAgent({ procType: 'secondary' });
    for (const a of [p, victim, other]) await a.use(mb).join();
    await p.use(mb).openUnread('sink', 64);
    await p.use(mb).countLarge('sink');
    await poll(
      () => p.use(mb).peers(),
      (v) => v.length === 3,
    );
    await victim.use(mb).streamLarge('sink', 1 << 20, 2);
    await other.use(mb).streamLarge('sink', 1 << 20, 2);
    await sleep(800);
    const down = p.next('peerDown', 10_000, (d: { pid: number }) => d.pid === victim.pid);
    victim.kill('SIGKILL');
    await down;
    const atKill = await p.use(mb).largeCounts('sink');
    await sleep(1500);
    const after = await p.use(mb).largeCounts('sink');
    await other.use(mb).stopStreams();
    expect(after.longestGapMs).toBeLessThan(2000);
    expect(after.count).toBeGreaterThan(atKill.count + 10); // the other sender's messages still come
    expect(after.intact).toBe(after.count);
    expect(await p.use(mb).errors()).toEqual([]);
  });

  it("senders killed inside a send leave no room taken in the receiver's mailbox (the reaper gives back what they reserved)", async () => {
    // A send reserves its room in the receiver's count before it copies the message; a sender
    // killed in between once kept that room for good (and a close waited its whole deadline
    // for a message that never came).
    const g = group('send-kill');
    const p = await g.startAgent({ procType: 'primary' });
    await p.use(mb).join();
    await p.use(mb).openUnread('sink', 64);
    await p.use(mb).countLarge('sink');
    // The group's large-block arena is reserved now, by a process that stays: a sender killed in
    // that heap call (a 64 MiB heap expansion) would leave DPDK's locks taken and the group stuck
    // (docs/mailboxes.md, "Process death"): likely why one CI run of this test hung 60 s. The
    // victims' blocks are then all carved from it.
    expect(await p.use(mb).sendLargeMany('sink', 1, 8 << 20)).toBe(1);
    expect((await p.use(mb).poolInfo()).largeArenaUsed).toBeGreaterThan(0);
    // two senders at a time, racing for the room the receiver makes: each is inside a send most of the time
    for (let round = 0; round < 3; round++) {
      const victims = await Promise.all([0, 1].map(() => g.startAgent({ procType: 'secondary' })));
      for (const v of victims) await v.use(mb).join();
      await poll(
        () => p.use(mb).peers(),
        (v) => v.length === 3,
      );
      const downs = victims.map((v) => p.next('peerDown', 10_000, (d: { pid: number }) => d.pid === v.pid));
      for (const v of victims) await v.use(mb).streamRawLarge('sink', 8 << 20);
      await sleep(150 + 50 * round);
      for (const v of victims) v.kill('SIGKILL');
      await Promise.all(downs);
    }
    expect(
      await poll(
        () => p.use(mb).depth('sink'),
        (d) => d === 0,
        3000,
      ),
    ).toBe(0);
    expect((await p.use(mb).largeCounts('sink')).count).toBeGreaterThan(0);
  });
});

describe('mailboxes: scale and idle', () => {
  it('10,000 mailboxes across 4 processes all receive', async () => {
    const g = group('many');
    const agents = [await g.startAgent({ procType: 'primary' })];
    for (let i = 0; i < 3; i++) agents.push(await g.startAgent({ procType: 'secondary' }));
    await Promise.all(agents.map((a, i) => a.use(mb).openMany(`m${i}-`, 2500)));
    // each process sends one message to each mailbox of the next process
    const sent = await Promise.all(agents.map((a, i) => a.use(mb).sendToMany(`m${(i + 1) % 4}-`, 2500)));
    expect(sent).toEqual([2500, 2500, 2500, 2500]);
    for (let i = 0; i < 4; i++) {
      const got = await poll(
        () => agents[i]!.use(mb).manyReceived(`m${i}-`),
        (n) => n === 2500,
        30_000,
      );
      expect(got).toBe(2500);
    }
  });

  it('an idle receiver parks on its doorbell and wakes for the next message', async () => {
    const g = group('park');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(mb).open('sleepy');
    expect(
      await poll(
        () => p.use(mb).isParked(),
        (v) => v,
      ),
    ).toBe(true);
    expect(await s.use(mb).send('sleepy', 'wake up')).toBe('sent');
    await p.use(mb).waitFor('sleepy', 1);
    expect(await p.use(mb).received('sleepy')).toEqual(['wake up']);
  });
});
