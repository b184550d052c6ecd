import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { InterruptEvent, LinkEvent } from '../src/index.js';
import type { Agent, TestGroup } from './harness/group.js';
import { fixture } from './harness/fixtures.js';
import { stopProcess } from './harness/stop.js';
import { useTestGroups } from './harness/use-groups.js';
import { useVhostSockets } from './harness/vhost-sockets.js';
import { events, linkOf, tapUnavailable, type Events, type LinkReport } from './interrupts-events.js';
import { sleep, until } from './harness/wait.js';

const F = fixture('interrupts');
const vhostSocket = useVhostSockets();
const group = useTestGroups();

interface Trio {
  g: TestGroup;
  primary: Agent;
  secondaries: Agent[];
  ev: { primary: Events; s1: Events; s2: Events };
}

/** A primary serving interrupts and two secondaries recording every relayed event. */
async function trio(label: string, vdevs: (g: TestGroup) => string[]): Promise<Trio> {
  const g = group(label);
  const primary = await g.startAgent({ procType: 'primary', vdevs: vdevs(g) });
  const ev = { primary: events(primary), s1: undefined as unknown as Events, s2: undefined as unknown as Events };
  await primary.use(F).serve();
  await primary.use(F).recordAll();
  const secondaries = [await g.spawn(), await g.spawn()];
  await Promise.all(secondaries.map((s) => s.start({ procType: 'secondary' })));
  ev.s1 = events(secondaries[0]!);
  ev.s2 = events(secondaries[1]!);
  for (const s of secondaries) await s.use(F).recordAll();
  return { g, primary, secondaries, ev };
}

/** The (seq, type) list of the events a process saw, for order comparisons. */
function order(ev: Events, predicate: (e: InterruptEvent) => boolean = () => true): string[] {
  return ev.of<InterruptEvent>('intr', predicate).map((e) => `${e.seq}:${e.type}`);
}

async function seenByBoth(t: Trio, predicate: (e: InterruptEvent) => boolean): Promise<InterruptEvent[]> {
  return Promise.all([t.ev.s1.wait<InterruptEvent>('intr', predicate), t.ev.s2.wait<InterruptEvent>('intr', predicate)]);
}

describe('interrupts relayed to secondaries', () => {
  it('hotplug (new, destroy), alarms and a user eventfd reach two secondaries in the primary order', async () => {
    const t = await trio('rall', () => ['net_null0']);
    const [s1] = t.secondaries;
    // a secondary asks the primary to watch ports and to set an alarm
    await s1!.use(F).followPorts('ports');
    const attached = await s1!.use(F).attach('net_null1');
    expect(attached.device).toBe('net_null1');
    const news = await seenByBoth(t, (e) => e.type === 'new');
    for (const e of news) expect(e.source).toEqual({ portId: attached.portId, device: 'net_null1' });
    await s1!.use(F).detach('net_null1');
    await seenByBoth(t, (e) => e.type === 'destroy');
    await s1!.use(F).followAlarm('wake', 'wake', 20, false);
    const alarms = await seenByBoth(t, (e) => e.type === 'alarm');
    for (const e of alarms) expect(e).toMatchObject({ source: { alarm: 'wake' }, details: { periodic: false } });
    await t.primary.use(F).createEventSource('bell');
    await t.primary.use(F).signalEventSource('bell', 2);
    const fds = await seenByBoth(t, (e) => e.type === 'fd');
    for (const e of fds) expect(e).toMatchObject({ source: { fd: 'bell' }, details: { value: 2 } });
    await t.ev.primary.wait<InterruptEvent>('intr', (e) => e.type === 'fd');
    const inPrimary = order(t.ev.primary);
    expect(inPrimary.length).toBeGreaterThanOrEqual(4);
    expect(order(t.ev.s1)).toEqual(inPrimary);
    expect(order(t.ev.s2)).toEqual(inPrimary);
    const seqs = t.ev.primary.of<InterruptEvent>('intr').map((e) => e.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  });

  it('a link status interrupt (net_vhost) reaches two secondaries; their linkState$ follows it', async () => {
    const t = await trio('rlsc', (g) => [`net_vhost0,iface=${vhostSocket(g)},queues=1`]);
    const [s1, s2] = t.secondaries;
    await s1!.use(F).followLink('l', 0);
    await s2!.use(F).followLink('l', 0);
    await linkOf(t.ev.s1, 'l', 'down');
    await linkOf(t.ev.s2, 'l', 'down');
    // secondary 1 starts the vhost port and hotplugs the virtio_user frontend, through the primary
    await s1!.use(F).startPort(0);
    await s1!.use(F).attach(`net_virtio_user0,path=${vhostSocket(t.g)},queues=1`);
    await s1!.use(F).startPort(1);
    const ups = await seenByBoth(t, (e) => e.type === 'lsc' && e.source.portId === 0 && e.details.status === 'up');
    for (const e of ups) expect((e as LinkEvent).details).toMatchObject({ via: 'interrupt', status: 'up' });
    await linkOf(t.ev.s1, 'l', 'up');
    await linkOf(t.ev.s2, 'l', 'up');
    await s2!.use(F).detach('net_virtio_user0');
    await linkOf(t.ev.s1, 'l', 'down');
    await linkOf(t.ev.s2, 'l', 'down');
  });

  it('a late secondary subscriber gets the current link state, not the history', async () => {
    const t = await trio('rlate', () => ['net_null0']);
    await t.primary.use(F).startPort(0);
    await t.primary.use(F).stopPort(0);
    await t.primary.use(F).startPort(0);
    const late = await t.g.spawn();
    await late.start({ procType: 'secondary' });
    const ev = events(late);
    await late.use(F).followLink('late', 0);
    expect((await linkOf(ev, 'late')).link.status).toBe('up');
    await sleep(200);
    expect(ev.of<LinkReport>('link').map((r) => r.link.status)).toEqual(['up']);
    await t.primary.use(F).stopPort(0);
    await linkOf(ev, 'late', 'down');
    expect(ev.of<LinkReport>('link').map((r) => r.link.status)).toEqual(['up', 'down']);
  });

  it('a secondary asking for an unknown port or an interrupt the PMD lacks gets a typed error', async () => {
    const t = await trio('runk', () => ['net_null0']);
    const [s1] = t.secondaries;
    expect(await s1!.use(F).tryWatch({ type: 'lsc', port: 7 })).toBe('UNKNOWN_PORT');
    expect(await s1!.use(F).tryWatch({ type: 'lsc', port: 0 })).toBe('NOT_SUPPORTED');
    expect(await s1!.use(F).tryWatch({ type: 'removal', port: 0 })).toBe('NOT_SUPPORTED');
    expect(await s1!.use(F).tryWatch({ type: 'alarm', name: 'x', delayMs: -1 })).toBe('INVALID_OPTION');
    expect(await s1!.use(F).portInfo(7)).toEqual({ error: 'UNKNOWN_PORT' });
    await s1!.use(F).followLink('bad', 7);
    expect((await t.ev.s1.wait<{ code: string }>('link-error')).code).toBe('UNKNOWN_PORT');
    expect(await t.primary.use(F).stats()).toMatchObject({ holds: 0, native: { ethRegistrations: 0 } });
  });

  it('removal events need a PMD that raises them (hardware): skipped here with the reason', async (ctx) => {
    console.log(
      'skipped removal relay: no PMD on this machine raises RTE_ETH_EVENT_INTR_RMV (only hardware PMDs such as mlx5, bnxt, netvsc do); a removal watch on a vdev is refused with NOT_SUPPORTED (tested above)',
    );
    ctx.skip();
  });

  it('net_tap link toggles reach two secondaries', async (ctx) => {
    const why = tapUnavailable();
    if (why) {
      console.log(`skipped net_tap relay test: ${why}`);
      ctx.skip();
      return;
    }
    const iface = `mpbr${process.pid % 100000}`;
    const t = await trio('rtap', () => [`net_tap0,iface=${iface}`]);
    const [s1] = t.secondaries;
    await s1!.use(F).startPort(0);
    await s1!.use(F).followLsc('tap', 0);
    await sleep(100);
    execFileSync('ip', ['link', 'set', iface, 'down']);
    await seenByBoth(t, (e) => e.type === 'lsc' && e.details.status === 'down' && e.details.via === 'netlink');
    execFileSync('ip', ['link', 'set', iface, 'up']);
    await seenByBoth(t, (e) => e.type === 'lsc' && e.details.status === 'up' && e.details.via === 'netlink');
  });

  it('a secondary whose event loop is busy for seconds stalls neither the primary nor the other secondary', async () => {
    const t = await trio('rslow', () => []);
    const [slow, other] = t.secondaries;
    await t.primary.use(F).followAlarm('tick', 'tick', 20, true);
    await t.ev.s1.wait<InterruptEvent>('intr', (e) => e.type === 'alarm');
    await slow!.use(F).busyFor(2500);
    const before = t.ev.s2.of<InterruptEvent>('intr').length;
    const primaryBefore = t.ev.primary.of<InterruptEvent>('intr').length;
    await sleep(1500);
    // meanwhile the primary and the other secondary kept receiving
    expect(t.ev.primary.of<InterruptEvent>('intr').length - primaryBefore).toBeGreaterThan(5);
    expect(t.ev.s2.of<InterruptEvent>('intr').length - before).toBeGreaterThan(5);
    expect(
      await other!
        .use(F)
        .stats()
        .catch((e: Error) => e.message),
    ).toMatch(/primary/);
    await t.primary.use(F).unsubscribe('tick');
    // the slow one catches up and has every event, in order, with no gap
    const lastSeq = Math.max(...t.ev.primary.of<InterruptEvent>('intr').map((e) => e.seq));
    await t.ev.s1.wait<InterruptEvent>('intr', (e) => e.seq === lastSeq, 20_000);
    const slowSeqs = t.ev.s1.of<InterruptEvent>('intr').map((e) => e.seq);
    for (let i = 1; i < slowSeqs.length; i++) expect(slowSeqs[i]).toBe(slowSeqs[i - 1]! + 1);
  });

  it('a secondary stopped with SIGSTOP stalls neither the primary nor the other secondary, and gets every event in order once continued', async () => {
    const t = await trio('rstop', () => []);
    const [stopped, other] = t.secondaries;
    await t.primary.use(F).startTicker(10);
    await t.primary.use(F).followAlarm('tick', 'tick', 5, true);
    await t.ev.s1.wait<InterruptEvent>('intr', (e) => e.type === 'alarm');
    const intr = (ev: Events): InterruptEvent[] => ev.of<InterruptEvent>('intr');
    try {
      await stopProcess(stopped!.pid);
      await t.primary.use(F).tickerStats(true);
      const primaryBefore = intr(t.ev.primary).length;
      const otherBefore = intr(t.ev.s2).length;
      await sleep(3000);
      // The stopped one's socket queue (10 datagrams) is long full: before the sender thread,
      // the primary's event loop froze here until SIGCONT.
      const primaryEvents = intr(t.ev.primary).length - primaryBefore;
      expect(primaryEvents).toBeGreaterThan(50);
      expect(intr(t.ev.s2).length - otherBefore).toBeGreaterThan(25);
      const ticker = await t.primary.use(F).tickerStats();
      expect(ticker.ticks).toBeGreaterThan(20);
      expect(ticker.maxGapMs).toBeLessThan(1500); // generous: a stall lasts until SIGCONT (3 s)
      // the primary still answers the other secondary's requests
      expect(await other!.use(F).portInfo(7)).toEqual({ error: 'UNKNOWN_PORT' });
      // DPDK's own request to the stopped one (hotplug) fails at the send timeout, not hangs
      await expect(t.primary.use(F).attach('net_null1')).rejects.toThrow(/failed to send|Fail to send/);
    } finally {
      process.kill(stopped!.pid, 'SIGCONT');
    }
    await t.primary.use(F).unsubscribe('tick');
    await sleep(100);
    const primarySeqs = intr(t.ev.primary).map((e) => e.seq);
    const lastSeq = Math.max(...primarySeqs);
    for (const ev of [t.ev.s1, t.ev.s2]) {
      await ev.wait<InterruptEvent>('intr', (e) => e.seq === lastSeq, 30_000);
      const seqs = intr(ev).map((e) => e.seq);
      // every event from the first this process saw, once each, in the primary's order
      expect(seqs).toEqual(primarySeqs.slice(primarySeqs.indexOf(seqs[0]!)));
    }
    expect(t.ev.s1.of('lost')).toEqual([]);
    // it went the way the relay says: broadcasts failed for the stopped one, events were
    // batched meanwhile, and the stopped one asked for what it missed
    const relay = await t.primary.use(F).relayStats();
    expect(relay.failed).toBeGreaterThan(0);
    expect(relay.largestBatch).toBeGreaterThan(1);
    expect(relay.replays).toBeGreaterThan(0);
  });

  it('a secondary stopped while more events happen than the history keeps gets a loss report and the current link state', async () => {
    const t = await trio('rloss', () => ['net_null0']);
    const [stopped] = t.secondaries;
    await t.primary.use(F).startPort(0);
    await stopped!.use(F).recordLosses();
    await stopped!.use(F).followLink('l', 0);
    await linkOf(t.ev.s1, 'l', 'up');
    const primarySeq = (): number => t.ev.primary.of<InterruptEvent>('intr').at(-1)?.seq ?? 0;
    try {
      await stopProcess(stopped!.pid);
      const start = primarySeq();
      await t.primary.use(F).stopPort(0); // link down, soon beyond the history
      await t.primary.use(F).followAlarm('flood', 'flood', 1, true);
      // more events than the 4096 the primary keeps (waits on the count, not on time)
      await expect.poll(primarySeq, { timeout: 90_000, interval: 250 }).toBeGreaterThan(start + 4096 + 100);
      await t.primary.use(F).unsubscribe('flood');
    } finally {
      process.kill(stopped!.pid, 'SIGCONT');
    }
    const loss = await t.ev.s1.wait<{ from: number; to: number; reason: string }>('lost', () => true, 30_000);
    expect(loss.to).toBeGreaterThanOrEqual(loss.from);
    expect(loss.reason).toMatch(/4096/);
    await linkOf(t.ev.s1, 'l', 'down');
    // after the loss: the rest, in order, up to the primary's last event
    const lastSeq = primarySeq();
    await t.ev.s1.wait<InterruptEvent>('intr', (e) => e.seq === lastSeq, 30_000);
    const after = t.ev.s1
      .of<InterruptEvent>('intr')
      .filter((e) => e.seq > loss.to)
      .map((e) => e.seq);
    expect(after[0]).toBe(loss.to + 1);
    for (let i = 1; i < after.length; i++) expect(after[i]).toBe(after[i - 1]! + 1);
    expect(await t.primary.use(F).relayStats()).toMatchObject({ lossesReported: 1 });
  }, 180_000);

  it('a primary that closes while events come: a secondary gets every one; one stopped meanwhile gets those it can and reports the rest on lost$', async () => {
    // Before, the primary dropped the batch waiting behind the one in flight, relayed nothing it
    // drained at its close, and freed its shared-memory batches; a secondary closed before it read
    // what was in its inbox. Their last events were missing, and nothing said so.
    const g = group('rend');
    const primary = await g.startAgent({ procType: 'primary' });
    await primary.use(F).serve();
    const secondaries = [await g.spawn(), await g.spawn()];
    await Promise.all(secondaries.map((s) => s.start({ procType: 'secondary', onPrimaryLost: 'close' })));
    const evs = secondaries.map((s) => events(s));
    for (const s of secondaries) {
      await s.use(F).recordAll();
      await s.use(F).recordLosses();
    }
    await primary.use(F).createEventSource('bell');
    await primary.use(F).signalEventSource('bell', 1);
    await Promise.all(evs.map((ev) => ev.wait<InterruptEvent>('intr', (e) => e.type === 'fd')));
    const stopped = secondaries[1]!;
    await stopProcess(stopped.pid);
    let last: number;
    try {
      last = await primary.use(F).closeWhileSignalling('bell', 400);
      await sleep(300);
    } finally {
      process.kill(stopped.pid, 'SIGCONT');
    }
    const outcome = (ev: Events): { seqs: number[]; lost: Array<{ from: number; to: number }> } => ({
      seqs: ev.of<InterruptEvent>('intr').map((e) => e.seq),
      lost: ev.of<{ from: number; to: number }>('lost').map(({ from, to }) => ({ from, to })),
    });
    for (const ev of evs)
      await until('every event delivered or reported lost', () => Math.max(...outcome(ev).seqs, ...outcome(ev).lost.map((l) => l.to)) >= last, 15_000);
    const idle = outcome(evs[0]!);
    expect(idle.lost).toEqual([]);
    expect(idle.seqs).toEqual(Array.from({ length: last - idle.seqs[0]! + 1 }, (_, i) => idle.seqs[0]! + i));
    // the stopped one: each seq once, delivered or in a reported run, in order, up to the last
    const late = outcome(evs[1]!);
    const covered = [...late.seqs.map((seq) => ({ from: seq, to: seq })), ...late.lost].sort((a, b) => a.from - b.from);
    let next = late.seqs[0]!;
    for (const run of covered) {
      expect(run.from, JSON.stringify(late.lost)).toBe(next);
      next = run.to + 1;
    }
    expect(next - 1).toBe(last);
    expect(late.seqs).toEqual([...late.seqs].sort((a, b) => a - b));
  });

  it('a primary serves secondaries without having used interrupts itself', async () => {
    const g = group('rauto');
    const primary = await g.startAgent({ procType: 'primary', vdevs: ['net_null0'] });
    const s = await g.startAgent({ procType: 'secondary' });
    const ev = events(s);
    await s.use(F).recordAll();
    await s.use(F).followAlarm('once', 'once', 10, false);
    expect((await ev.wait<InterruptEvent>('alarm')).source).toEqual({ alarm: 'once' });
    expect(await s.use(F).portInfo(0)).toMatchObject({ portId: 0, driver: 'net_null' });
    expect(await primary.use(F).stats()).toMatchObject({ alarms: 0 });
  });

  it('hotplugs called at once with secondaries in the group run one at a time, and all succeed', async () => {
    // (DPDK lets one hotplug request wait for the secondaries' answers: the second one failed
    // with ENOMSG and a rollback that left the secondaries' devices unlike the primary's)
    const t = await trio('rconc', () => ['net_null0']);
    expect(await t.primary.use(F).attachAtOnce(['net_null1', 'net_null2', 'net_ring0'])).toEqual(['ok net_null1', 'ok net_null2', 'ok net_ring0']);
    for (const s of t.secondaries) expect(((await s.use(F).portInfo(3)) as { device: string }).device).toBe('net_ring0');
  });

  it("a port id taken again by a new device: a new linkState$ gives the new port's link, and the old port's stream completed at its detach", async () => {
    const t = await trio('rreuse', () => ['net_null0']);
    expect(await t.primary.use(F).linkAfterPortReuse('net_null0', 'net_null1')).toEqual({
      old: 'completed',
      attachedAs: '0',
      fresh: 'down',
      portInfo: 'down',
    });
  });

  it('10,000 subscribe/unsubscribe cycles in a secondary leave no registration in the primary', async () => {
    const t = await trio('rleak', (g) => ['net_null0', `net_vhost0,iface=${vhostSocket(g)},queues=1`]);
    const before = await t.primary.use(F).stats();
    await t.secondaries[0]!.use(F).churnRemote(10_000, 1, 0);
    await expect.poll(() => t.primary.use(F).stats(), { timeout: 30_000, interval: 200 }).toEqual(before);
  });

  it('the watches of a secondary that dies are released by the primary', async () => {
    const t = await trio('rdead', (g) => [`net_vhost0,iface=${vhostSocket(g)},queues=1`]);
    const [s1] = t.secondaries;
    await s1!.use(F).followLsc('held', 0);
    await s1!.use(F).followPorts('ports');
    await expect.poll(() => t.primary.use(F).stats(), { timeout: 10_000 }).toMatchObject({ holds: 2 });
    s1!.kill('SIGKILL');
    await s1!.exited;
    await expect.poll(() => t.primary.use(F).stats(), { timeout: 15_000, interval: 250 }).toMatchObject({ holds: 0, native: { ethRegistrations: 0 } });
  });
});
