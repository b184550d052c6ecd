import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { InterruptEvent, LinkEvent } from '../src/index.js';
import { fixture } from './harness/fixtures.js';
import { useTestGroups } from './harness/use-groups.js';
import { useVhostSockets } from './harness/vhost-sockets.js';
import { events, linkOf, tapUnavailable, type LinkReport } from './interrupts-events.js';

const F = fixture('interrupts');
const vhostSocket = useVhostSockets();
const group = useTestGroups();

describe('interrupts in the primary', () => {
  it('hotplug of a vdev raises new and destroy, in order, with the device name', async () => {
    const g = group('ihot');
    const p = await g.startAgent({ procType: 'primary', vdevs: ['net_null0'] });
    const ev = events(p);
    await p.use(F).recordAll();
    await p.use(F).followPorts('ports');
    const attached = await p.use(F).attach('net_null1');
    expect(attached).toEqual({ device: 'net_null1', portId: 1 });
    await ev.wait<InterruptEvent>('port', (e) => e.type === 'new');
    await p.use(F).detach('net_null1');
    await ev.wait<InterruptEvent>('port', (e) => e.type === 'destroy');
    const ports = ev.of<InterruptEvent>('intr', (e) => e.type === 'new' || e.type === 'destroy');
    expect(ports.map((e) => [e.type, 'device' in e.source ? e.source.device : '', 'portId' in e.source ? e.source.portId : -1])).toEqual([
      ['new', 'net_null1', 1],
      ['destroy', 'net_null1', 1],
    ]);
    expect(ports[0]!.seq).toBeLessThan(ports[1]!.seq);
    expect(typeof ports[0]!.timestamp).toBe('number');
  });

  it('attach of a driver no one has is ENOENT naming it, and a later failure quotes only its own DPDK lines', async () => {
    const g = group('ibogus');
    const p = await g.startAgent({ procType: 'primary', vdevs: ['net_null0'] });
    // (once: EFAULT "Bad address", and the detach below quoted the attach's "failed to parse device")
    await expect(p.use(F).attach('net_bogus0')).rejects.toMatchObject({
      code: 'ENOENT',
      message: expect.stringContaining("no DPDK driver is named 'net_bogus'"),
    });
    const detach = p.use(F).detach('net_null7');
    await expect(detach).rejects.toMatchObject({
      code: 'UNKNOWN_PORT',
      message: expect.stringMatching(/^cannot detach device 'net_null7': .*: no device of that name is attached \(ports\(\) lists those that are\)$/),
    });
    expect(String(await detach.catch((err: Error) => err.message))).not.toContain('net_bogus0');
  });

  it('an EAL alarm fires once, a periodic one repeats until unsubscribed', async () => {
    const g = group('ialarm');
    const p = await g.startAgent({ procType: 'primary' });
    const ev = events(p);
    await p.use(F).followAlarm('once', 'once', 20, false);
    const once = await ev.wait<InterruptEvent>('alarm');
    expect(once).toMatchObject({ type: 'alarm', source: { alarm: 'once' }, details: { periodic: false, delayMs: 20 } });
    await p.use(F).followAlarm('tick', 'tick', 10, true);
    const isTick = (e: InterruptEvent): boolean => e.type === 'alarm' && e.source.alarm === 'tick';
    await expect.poll(() => ev.of<InterruptEvent>('alarm', isTick).length, { timeout: 15_000 }).toBeGreaterThanOrEqual(2);
    const [t1, t2] = ev.of<InterruptEvent>('alarm', isTick);
    expect(t2!.seq).toBeGreaterThan(t1!.seq);
    await p.use(F).unsubscribe('tick');
    expect(await p.use(F).stats()).toMatchObject({ alarms: 0, native: { alarms: 0 } });
  });

  it('a user eventfd registered with the EAL interrupt thread reports its counter', async () => {
    const g = group('ifd');
    const p = await g.startAgent({ procType: 'primary' });
    const ev = events(p);
    await p.use(F).recordAll();
    await p.use(F).createEventSource('doorbell');
    await p.use(F).signalEventSource('doorbell', 5);
    const e = await ev.wait<InterruptEvent>('intr', (x) => x.type === 'fd');
    expect(e).toMatchObject({ type: 'fd', source: { fd: 'doorbell' }, details: { value: 5 } });
    await p.use(F).closeEventSource('doorbell');
    expect(await p.use(F).stats()).toMatchObject({ fds: 0, native: { fdSources: 0 } });
    expect(ev.of<InterruptEvent>('intr', (x) => x.type === 'fd')).toHaveLength(1);
  });

  it("an event source's signal(n) takes whole counts only; the runtime's close closes a source left open (its eventfd stayed open, signal() wrote to it)", async () => {
    const g = group('isrcclose');
    const p = await g.startAgent({ procType: 'primary' });
    expect(await p.use(F).eventSourceAcrossClose()).toEqual({
      'signal(1.5)': 'INVALID_OPTION',
      'signal(0)': 'INVALID_OPTION',
      'signal(-1)': 'INVALID_OPTION',
      'signal(18446744073709552000)': 'INVALID_OPTION',
      'signal(NaN)': 'INVALID_OPTION',
      before: 'anon_inode:[eventfd]',
      after: 'closed',
      signalAfter: 'CLOSED',
    });
  });

  it('a watch subscribed after the runtime closed fails with CLOSED (it completed, and firstValueFrom gave EmptyError)', async () => {
    const g = group('iafter');
    const p = await g.startAgent({ procType: 'primary', vdevs: ['net_null0'] });
    expect(await p.use(F).watchAfterClose()).toEqual({ alarm: 'CLOSED', linkState: 'CLOSED', ports: 'CLOSED' });
  });

  it('an fd epoll refuses (a regular file, a closed fd) fails its fd$ with the errno, and the process lives on', async () => {
    const g = group('ifdbad');
    const p = await g.startAgent({ procType: 'primary' });
    // (once, DPDK's interrupt thread panicked on it: "Error adding fd ... epoll_ctl", SIGABRT)
    expect(await p.use(F).watchUnpollable()).toEqual({ regularFile: 'EPERM', closedFd: 'EBADF' });
    expect(await p.use(F).stats()).toMatchObject({ fds: 0, native: { fdSources: 0 } });
  });

  it('linkState$ gives the current state first, then changes; a late subscriber gets the state, not the history', async () => {
    const g = group('ilink');
    const p = await g.startAgent({ procType: 'primary', vdevs: ['net_null0'] });
    const ev = events(p);
    await p.use(F).followLink('early', 0);
    expect((await linkOf(ev, 'early')).link.status).toBe('down');
    await p.use(F).startPort(0);
    expect((await linkOf(ev, 'early', 'up')).link).toMatchObject({ status: 'up', speedMbps: 10000, duplex: 'full' });
    await p.use(F).followLink('late', 0);
    expect((await linkOf(ev, 'late')).link.status).toBe('up');
    await p.use(F).stopPort(0);
    await linkOf(ev, 'early', 'down');
    await linkOf(ev, 'late', 'down');
    expect(ev.of<LinkReport>('link', (d) => d.key === 'late').map((d) => d.link.status)).toEqual(['up', 'down']);
    expect(ev.of<LinkReport>('link', (d) => d.key === 'early').map((d) => d.link.status)).toEqual(['down', 'up', 'down']);
  });

  it('an unknown port is refused with UNKNOWN_PORT; a link interrupt the PMD lacks with NOT_SUPPORTED', async () => {
    const g = group('iunk');
    const p = await g.startAgent({ procType: 'primary', vdevs: ['net_null0'] });
    const ev = events(p);
    expect(await p.use(F).tryWatch({ type: 'lsc', port: 9 })).toBe('UNKNOWN_PORT');
    expect(await p.use(F).tryWatch({ type: 'removal', port: 9 })).toBe('UNKNOWN_PORT');
    expect(await p.use(F).tryWatch({ type: 'lsc', port: 0 })).toBe('NOT_SUPPORTED');
    expect(await p.use(F).tryWatch({ type: 'lsc', port: -1 })).toBe('INVALID_OPTION');
    expect(await p.use(F).portInfo(9)).toEqual({ error: 'UNKNOWN_PORT' });
    await p.use(F).followLink('bad', 9);
    expect((await ev.wait<{ code: string }>('link-error')).code).toBe('UNKNOWN_PORT');
  });

  it('net_vhost raises a real LSC interrupt when a virtio_user frontend starts and leaves', async () => {
    const g = group('ivhost');
    const sock = vhostSocket(g);
    const p = await g.startAgent({ procType: 'primary', vdevs: [`net_vhost0,iface=${sock},queues=1`] });
    const ev = events(p);
    await p.use(F).startPort(0);
    await p.use(F).followLsc('vhost', 0);
    await p.use(F).attach(`net_virtio_user0,path=${sock},queues=1`);
    await p.use(F).startPort(1);
    const up = await ev.wait<LinkEvent>('lsc', (e) => e.details.status === 'up');
    expect(up).toMatchObject({ type: 'lsc', source: { portId: 0, device: 'net_vhost0' }, details: { status: 'up', via: 'interrupt' } });
    await p.use(F).detach('net_virtio_user0');
    const down = await ev.wait<LinkEvent>('lsc', (e) => e.details.status === 'down');
    expect(down.details.via).toBe('interrupt');
    expect(down.seq).toBeGreaterThan(up.seq);
  });

  it('an attach the close cuts short (the vhost backend it needs is stopped by the close) fails with CLOSED, not EPERM', async () => {
    const g = group('ivclose');
    const sock = vhostSocket(g);
    const p = await g.startAgent({ procType: 'primary', vdevs: [`net_vhost0,iface=${sock},queues=1`] });
    await p.use(F).startPort(0);
    expect(await p.use(F).attachWhileClosing(`net_virtio_user0,path=${sock},queues=1`)).toBe('CLOSED');
  });

  it('net_tap: toggling the kernel interface with ip link gives link events (through netlink)', async (t) => {
    const why = tapUnavailable();
    if (why) {
      console.log(`skipped net_tap test: ${why}`);
      t.skip();
      return;
    }
    const g = group('itap');
    const iface = `mpbt${process.pid % 100000}`;
    const p = await g.startAgent({ procType: 'primary', vdevs: [`net_tap0,iface=${iface}`] });
    const ev = events(p);
    expect(await p.use(F).portInfo(0)).toMatchObject({ driver: 'net_tap', lscSupported: true, lscVia: 'netlink', ifName: iface });
    expect(await p.use(F).startPort(0)).toEqual({ lscArmed: true });
    await p.use(F).followLsc('tap-lsc', 0);
    await p.use(F).followLink('tap', 0);
    await linkOf(ev, 'tap', 'up');
    execFileSync('ip', ['link', 'set', iface, 'down']);
    const down = await ev.wait<LinkEvent>('lsc', (e) => e.details.status === 'down');
    expect(down).toMatchObject({ source: { portId: 0, device: 'net_tap0' }, details: { status: 'down', via: 'netlink' } });
    await linkOf(ev, 'tap', 'down');
    execFileSync('ip', ['link', 'set', iface, 'up']);
    const up = await ev.wait<LinkEvent>('lsc', (e) => e.details.status === 'up');
    expect(up.details.via).toBe('netlink');
    expect(up.seq).toBeGreaterThan(down.seq);
  });

  it('10,000 subscribe/unsubscribe cycles leave no native registration behind', async () => {
    const g = group('ileak');
    const sock = vhostSocket(g);
    const p = await g.startAgent({ procType: 'primary', vdevs: ['net_null0', `net_vhost0,iface=${sock},queues=1`] });
    const { before, after } = await p.use(F).churn(10_000, 1, 0);
    expect(after).toEqual(before);
    expect(after).toMatchObject({ holds: 0, alarms: 0, native: { ethRegistrations: 0, alarms: 0, netlinkPorts: 0, queued: 0 } });
  });
});
