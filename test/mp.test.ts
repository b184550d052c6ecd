import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pidExists } from '../src/runtime/group.js';
import type { Agent } from './harness/group.js';
import { answered, fixture } from './harness/fixtures.js';
import { stopProcess } from './harness/stop.js';
import { useTestGroups } from './harness/use-groups.js';
import { poll, sleep } from './harness/wait.js';

const mp = fixture('mp');
const group = useTestGroups();

/** A primary and `n` secondaries, each with its bus open. */
async function startGroup(label: string, n: number): Promise<{ primary: Agent; secondaries: Agent[] }> {
  const g = group(label);
  const primary = await g.startAgent({ procType: 'primary' });
  await primary.use(mp).open();
  const secondaries = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = await g.startAgent({ procType: 'secondary' });
      await s.use(mp).open();
      return s;
    }),
  );
  return { primary, secondaries };
}

describe('the rte_mp bus', () => {
  it("a secondary requests the primary and gets its handler's value, with the sender pid and role", async () => {
    const { primary, secondaries } = await startGroup('req', 1);
    await primary.use(mp).handle('greet', 'echo');
    const r = answered(await secondaries[0]!.use(mp).request('greet', { hello: 'world' }));
    expect(r).toMatchObject({ sent: 1, received: 1, complete: true });
    expect(r.replies[0]).toMatchObject({ ok: true, value: { echo: { hello: 'world' }, pid: primary.pid }, pid: primary.pid, role: 'primary' });
    const sync = answered(await secondaries[0]!.use(mp).request('greet', 'sync', { mode: 'sync' }));
    expect(sync.replies[0]).toMatchObject({ ok: true, value: { echo: 'sync' } });
  });

  it('a request from the primary goes to every secondary and reports sent and received', async () => {
    const { primary, secondaries } = await startGroup('bcast', 3);
    await Promise.all(secondaries.map((s) => s.use(mp).handle('who', 'echo')));
    const r = answered(await primary.use(mp).request('who', 7));
    expect(r).toMatchObject({ sent: 3, received: 3, complete: true });
    expect(r.replies.map((x) => x.pid).sort()).toEqual(secondaries.map((s) => s.pid).sort());
    expect(r.replies.every((x) => x.role === 'secondary')).toBe(true);
  });

  it("messages: a secondary's reaches the primary, the primary's reaches every secondary, with pid and role", async () => {
    const { primary, secondaries } = await startGroup('msg', 2);
    await primary.use(mp).subscribe('news');
    await Promise.all(secondaries.map((s) => s.use(mp).subscribe('news')));
    const atPrimary = primary.next<{ value: unknown; pid: number; role: string }>('msg');
    expect(await secondaries[0]!.use(mp).send('news', { n: 1 })).toBe('sent');
    expect(await atPrimary).toMatchObject({ value: { n: 1 }, pid: secondaries[0]!.pid, role: 'secondary', raw: false });
    const atSecondaries = secondaries.map((s) => s.next<{ value: unknown; pid: number }>('msg'));
    expect(await primary.use(mp).send('news', 'to all')).toBe('sent');
    for (const m of await Promise.all(atSecondaries)) expect(m).toMatchObject({ value: 'to all', pid: primary.pid, role: 'primary' });
  });

  it("a secondary stopped with SIGSTOP never blocks the primary's broadcasts: they fail for it (SEND_FAILED), the others get every one in order", async () => {
    const { primary, secondaries } = await startGroup('stop', 2);
    const [stopped, other] = secondaries;
    await Promise.all(secondaries.map((s) => s.use(mp).subscribe('burst')));
    await Promise.all(secondaries.map((s) => s.use(mp).handle('who', 'echo')));
    const seen: number[] = [];
    other!.on('msg', (m: { value: { i: number } }) => seen.push(m.value.i));
    await stopProcess(stopped!.pid);
    try {
      // 30 messages: the stopped one's queue holds 10, then DPDK's sendmsg would wait for it
      const r = await primary.use(mp).broadcastMany('burst', 30);
      expect(r.callMs).toBeLessThan(2000); // generous: the calls only queue
      expect(r.outcomes).toHaveLength(30);
      expect(r.outcomes.filter((o) => o === 'SEND_FAILED').length).toBeGreaterThan(0);
      expect(r.outcomes.every((o) => o === 'ok' || o === 'SEND_FAILED')).toBe(true);
      await expect.poll(() => seen.length, { timeout: 15_000 }).toBe(30);
      expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => i));
      // a request from the primary reaches the other one, says it missed one, and its lane is
      // free for the next request (no EEXIST from DPDK's pending request to the other)
      for (let i = 0; i < 20; i++) {
        const r = answered(await primary.use(mp).request('who', i, { timeoutMs: 5000 }));
        expect(r).toMatchObject({ sent: 1, received: 1, complete: false, unreached: true });
        expect(r.replies[0]).toMatchObject({ ok: true, pid: other!.pid });
      }
    } finally {
      process.kill(stopped!.pid, 'SIGCONT');
    }
  });

  it("a primary that closes right after broadcasting tells each onSent the send's real outcome (not CLOSED for what was sent)", async () => {
    const { primary, secondaries } = await startGroup('close-sent', 1);
    await secondaries[0]!.use(mp).subscribe('last');
    const seen: number[] = [];
    secondaries[0]!.on('msg', (m: { value: { i: number } }) => seen.push(m.value.i));
    const outcomes = await primary.use(mp).broadcastThenClose('last', 50);
    await expect.poll(() => seen.length, { timeout: 15_000 }).toBe(50);
    expect(outcomes).toEqual(Array.from({ length: 50 }, () => 'ok'));
  });

  it('a primary that broadcast and then calls process.exit() exits at once (the idle sender thread does not hold it)', async () => {
    const { primary } = await startGroup('exit', 0);
    await primary.use(mp).broadcastThenExit('bye');
    const exited = await Promise.race([primary.exited.then(() => 'exited'), new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
    expect(exited).toBe('exited');
  });

  it('a second handler of one name in a process is EEXIST; unsubscribing unregisters the action', async () => {
    const { primary, secondaries } = await startGroup('eexist', 1);
    await primary.use(mp).handle('once', 'echo');
    expect(await primary.use(mp).handleTwice('once')).toBe('EEXIST');
    await primary.use(mp).unhandle('once');
    const r = await secondaries[0]!.use(mp).requestAll('once', 1);
    expect(r.error).toBe('NO_HANDLER');
    expect(await primary.use(mp).handleTwice('once')).toBe('registered');
  });

  it('unsubscribing the last subscriber of messages$ unregisters the action; one leaving does not', async () => {
    const { primary, secondaries } = await startGroup('unsub', 1);
    expect(await primary.use(mp).subscribersLeave('topic', 'one')).toBe('one left');
    const got = primary.next<{ value: unknown }>('msg');
    await secondaries[0]!.use(mp).send('topic', 'still here');
    expect((await got).value).toBe('still here');
    // DPDK would refuse the registration (EEXIST) had the action stayed registered.
    expect(await primary.use(mp).subscribersLeave('topic', 'both')).toBe('registered');
  });

  it('concurrent raw requests to one name (as C peers use) queue instead of failing with EEXIST', async () => {
    const { primary, secondaries } = await startGroup('rawmany', 1);
    await primary.use(mp).handle('rev', 'rawEcho');
    expect(await secondaries[0]!.use(mp).requestManyRaw('rev', 50)).toEqual({ ok: 50, errors: [] });
  });

  it('a sync-mode request that times out is a result with received < sent, not an exception', async () => {
    const { primary, secondaries } = await startGroup('synctimeout', 1);
    await primary.use(mp).handle('slow', 'slow', 2000);
    const r = await secondaries[0]!.use(mp).request('slow', 1, { mode: 'sync', timeoutMs: 300 });
    expect(r).toMatchObject({ sent: 1, received: 0, complete: false, replies: [] });
  });

  it('bad input is refused with a typed error before any native call', async () => {
    const { primary } = await startGroup('bad', 0);
    expect(await primary.use(mp).badInputs()).toEqual({
      longName: 'INVALID_NAME',
      emptyName: 'INVALID_NAME',
      reservedName: 'INVALID_NAME',
      rawTooBig: 'E2BIG',
      rawNotBytes: 'INVALID_OPTION',
      nineFds: 'INVALID_FDS',
      badFd: 'INVALID_FDS',
      functionValue: 'ENCODE_FAILED',
      nestedSymbol: 'ENCODE_FAILED',
      nestedFunction: 'ENCODE_FAILED',
      badTimeout: 'INVALID_OPTION',
      misspelledSendOption: 'INVALID_OPTION',
      misspelledRequestOption: 'INVALID_OPTION',
      longNameMessages: 'INVALID_NAME',
    });
  });

  it("an open that fails changes nothing; a later open cannot change the first one's options", async () => {
    // a primary (whose bus mpbus opened at start, with the defaults) and a secondary (none open)
    const g = group('openopts');
    const primary = await g.startAgent({ procType: 'primary' });
    const secondary = await g.startAgent({ procType: 'secondary' });
    const expected = { invalid: 'INVALID_OPTION', first: 'ok', bigSend: 'E2BIG', bigBuffer: 'E2BIG: before encoding', other: 'INVALID_OPTION', same: 'ok' };
    // (once, in a primary, the failed open counted as the first: maxPayloadBytes 1000 was then ignored, unseen)
    expect(await primary.use(mp).openWithOptions()).toEqual(expected);
    expect(await secondary.use(mp).openWithOptions()).toEqual(expected);
  });

  it('values keep what actor messages keep: Map, Set, Date, bigint, -0, shared references and cycles', async () => {
    const { primary, secondaries } = await startGroup('rich', 1);
    await primary.use(mp).handle('same', 'same');
    expect(await secondaries[0]!.use(mp).richRoundTrip('same')).toEqual({
      map: true,
      set: true,
      date: true,
      big: true,
      negZero: true,
      shared: true,
      cycle: true,
    });
  });

  it('a request to a name nobody handles fails fast with NO_HANDLER', async () => {
    const { secondaries } = await startGroup('nohandler', 1);
    const t0 = Date.now();
    const r = await secondaries[0]!.use(mp).requestAll('nobody-home', 1, { timeoutMs: 20_000 });
    expect(r.error).toBe('NO_HANDLER');
    expect(Date.now() - t0).toBeLessThan(15_000); // well before the timeout, even on a loaded machine
  });

  it('a handler that throws gives the requester an error reply, and its process keeps serving', async () => {
    const { primary, secondaries } = await startGroup('throw', 1);
    await primary.use(mp).handle('fragile', 'throw');
    await primary.use(mp).handle('sturdy', 'echo');
    const r = answered(await secondaries[0]!.use(mp).request('fragile', 'x'));
    expect(r).toMatchObject({ sent: 1, received: 1, complete: true });
    expect(r.replies[0]).toMatchObject({ ok: false, error: 'REMOTE_ERROR' });
    const all = await secondaries[0]!.use(mp).requestAll('fragile', 'x');
    expect(all.error).toBe('REMOTE_ERROR');
    expect(all.message).toContain('boom');
    expect((await secondaries[0]!.use(mp).requestAll('sturdy', 1)).values).toEqual([{ echo: 1, pid: primary.pid }]);
  });

  it('1,000 concurrent requests to one name all get their own answer, no EEXIST', async () => {
    const { primary, secondaries } = await startGroup('many', 1);
    await primary.use(mp).handle('same', 'same');
    const r = await secondaries[0]!.use(mp).requestMany('same', 1000, 60_000);
    expect(r).toEqual({ ok: 1000, mismatched: 0, errors: [] });
  });

  it('a late reply never answers the next request of that name', async () => {
    const { primary, secondaries } = await startGroup('late', 1);
    await primary.use(mp).handle('slowpoke', 'slow', 1500);
    const dropped = primary.next<{ code: string }>('mp-error', 20_000, (e) => e.code === 'LATE_REPLY');
    const first = await secondaries[0]!.use(mp).request('slowpoke', 'first', { timeoutMs: 300 });
    expect(first).toMatchObject({ sent: 1, received: 0, complete: false });
    // The handler answers 'first' while this one is pending: it must get its own answer.
    const second = answered(await secondaries[0]!.use(mp).request('slowpoke', 'second', { timeoutMs: 10_000 }));
    expect(second).toMatchObject({ sent: 1, received: 1, complete: true });
    expect(second.replies[0]!.value).toEqual({ late: 'second' });
    await dropped; // the primary knew the first answer came too late and did not send it
  });

  it('a handler may itself make a request to another process and reply with the result', async () => {
    const { primary, secondaries } = await startGroup('nested', 2);
    const [asker, answerer] = secondaries as [Agent, Agent];
    await answerer.use(mp).handle('inner', 'echo');
    await primary.use(mp).handle('outer', 'ask', 'inner');
    const r = await asker.use(mp).requestAll('outer', 42, { timeoutMs: 20_000 });
    expect(r.values).toEqual([{ relayed: { echo: 42, pid: answerer.pid }, via: primary.pid }]);
  });

  it('a 1 MiB value travels through shared memory, both ways', async () => {
    const { primary, secondaries } = await startGroup('large', 1);
    await primary.use(mp).handle('measure', 'size');
    const r = answered(await secondaries[0]!.use(mp).request('measure', null, { bigBytes: 1 << 20, timeoutMs: 20_000 }));
    expect(r.replies[0]).toMatchObject({ ok: true, value: { bytes: 1 << 20, first: 9, last: 9 } });
    await primary.use(mp).handle('give', 'big', 1 << 20);
    const back = answered(await secondaries[0]!.use(mp).request('give', null, { timeoutMs: 20_000 }));
    expect(back.replies[0]).toMatchObject({ ok: true, value: { byteLength: 1 << 20, first: 7 } });
    await Promise.all(secondaries.map((s) => s.use(mp).subscribe('bulk')));
    const got = secondaries[0]!.next<{ size: number }>('msg');
    expect(await primary.use(mp).send('bulk', null, { bigBytes: 1 << 20 })).toBe('sent');
    expect((await got).size).toBe(1 << 20);
  });

  it('an fd sent with a request is usable in the receiver: it writes, the sender reads', async () => {
    const { primary, secondaries } = await startGroup('fd', 1);
    const dir = mkdtempSync(join(tmpdir(), 'mpbus-fd-'));
    try {
      await primary.use(mp).handle('scribe', 'writeFd', 'written by the primary');
      const r = await secondaries[0]!.use(mp).requestWithFd('scribe', join(dir, 'a.txt'));
      expect(r).toEqual({ reply: { wrote: 1 }, content: 'written by the primary' });
      await primary.use(mp).handle('lend', 'replyFd', join(dir, 'b.txt'));
      expect(await secondaries[0]!.use(mp).requestFdBack('lend', 'written by the secondary')).toEqual({ nfds: 1 });
      expect(readFileSync(join(dir, 'b.txt'), 'utf8')).toBe('written by the secondary');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a secondary that dies with a request in flight: the primary's request completes at its timeout with received < sent", async () => {
    const { primary, secondaries } = await startGroup('dies', 2);
    const [alive, doomed] = secondaries as [Agent, Agent];
    await alive.use(mp).handle('poll', 'echo');
    await doomed.use(mp).handle('poll', 'slow', 60_000);
    const pending = primary.use(mp).request('poll', 'x', { timeoutMs: 3000 });
    await sleep(300);
    doomed.kill('SIGKILL');
    const r = answered(await pending);
    expect(r.sent).toBe(2);
    expect(r.received).toBe(1);
    expect(r.complete).toBe(false);
    expect(r.replies[0]).toMatchObject({ ok: true, pid: alive.pid });
  });

  it("a secondary's request in flight when its primary dies fails with PRIMARY_LOST, not CLOSED", async () => {
    const g = group('reqlost');
    const primary = await g.startAgent({ procType: 'primary' });
    await primary.use(mp).open();
    const s = await g.startAgent({ procType: 'secondary', onPrimaryLost: 'close' });
    await s.use(mp).open();
    await primary.use(mp).handle('hang', 'slow', 60_000);
    const pending = s.use(mp).requestAll('hang', 'x', { timeoutMs: 30_000 });
    await sleep(300);
    primary.kill('SIGKILL');
    expect(await pending).toMatchObject({ error: 'PRIMARY_LOST' });
  });

  it('a request made just after every secondary was killed settles within its timeout (NO_PEER), not seconds after', async () => {
    const { primary, secondaries } = await startGroup('allkilled', 1);
    await secondaries[0]!.use(mp).handle('ping', 'echo');
    expect((await primary.use(mp).requestAll('ping', 1, { timeoutMs: 2000 })).values).toHaveLength(1);
    secondaries[0]!.kill('SIGKILL');
    await poll(
      () => pidExists(secondaries[0]!.pid),
      (exists) => !exists,
      5000,
      10,
    );
    // (its rte_mp socket stays until a send to it fails: DPDK reached nobody and never called
    // back, and the request waited for mpbus's safety timer, 2 s past its timeout)
    const t0 = Date.now();
    expect(await primary.use(mp).requestAll('ping', 1, { timeoutMs: 500 })).toMatchObject({ error: 'NO_PEER' });
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it('requests in flight or queued when close() is called settle with CLOSED', async () => {
    const { primary, secondaries } = await startGroup('close', 1);
    await primary.use(mp).handle('forever', 'slow', 60_000);
    expect(await secondaries[0]!.use(mp).closeWhileInFlight('forever')).toEqual({ inFlight: 'CLOSED', queued: 'CLOSED' });
  });
});
