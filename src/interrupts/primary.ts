/**
 * The primary's side of interrupts: owns the native sources, counts who watches what, keeps the
 * last link state of every port, and turns native events into {@link InterruptEvent}s in the
 * order DPDK's threads saw them. Only the primary receives interrupts (DPDK's rule); secondaries
 * reach these sources through the relay.
 */
import { Subject } from 'rxjs';
import type { Logger } from 'pino';
import { MpBusError, ErrorCodes } from '../errors.js';
import { interruptsNative, type InterruptsBinding, type NativeInterruptEvent, type NativeLink, type NativePortInfo } from '../native/interrupts.js';
import type { InterruptEvent, LinkState, PortInfo, WatchSpec } from './types.js';
import { validatePort, validateWatch } from './validate.js';

/** A NEW port not attached yet is named again after this (DPDK attaches it microseconds later). */
const NAME_RETRY_MS = 1;
const NAME_RETRIES = 100;

/** Releases one hold on a watched source; calling it again does nothing. */
export type Release = () => void;

/** The current link of a port and the last event seq it reflects. */
export interface LinkSnapshot {
  link: LinkState;
  seq: number;
}

interface AlarmInfo {
  name: string;
  delayMs: number;
  periodic: boolean;
}

function toLink(l: NativeLink): LinkState {
  return { status: l.status, speedMbps: l.speedMbps, duplex: l.duplex, autoneg: l.autoneg };
}

function toPortInfo(p: NativePortInfo): PortInfo {
  const info: PortInfo = {
    portId: p.portId,
    device: p.name,
    driver: p.driver,
    lscSupported: p.lscInterrupt,
    lscVia: !p.lscInterrupt ? 'none' : p.driver === 'net_tap' ? 'netlink' : 'interrupt',
    started: p.started,
    link: toLink(p.link),
  };
  if (p.ifName !== undefined) info.ifName = p.ifName;
  return info;
}

/** Native errors about ports become the codes the API documents. */
export function portError(err: unknown, port: number, what: string): unknown {
  if (!(err instanceof MpBusError)) return err;
  if (err.code === 'ENODEV') return new MpBusError(ErrorCodes.unknownPort, `${what}: ${err.message}`, { cause: err, errno: err.errno });
  if (err.code === 'ENOTSUP') return new MpBusError(ErrorCodes.notSupported, `${what}: ${err.message}`, { cause: err, errno: err.errno });
  void port;
  return err;
}

/** A detach's failure: DPDK's message names the device already ("cannot detach device 'x': ..."). */
function detachError(err: unknown): unknown {
  if (err instanceof MpBusError && err.code === 'ENODEV') {
    return new MpBusError(ErrorCodes.unknownPort, `${err.message}: no device of that name is attached (ports() lists those that are)`, {
      cause: err,
      errno: err.errno,
    });
  }
  return portError(err, -1, 'cannot detach');
}

/**
 * An attach's failure as the user can act on it: DPDK reports a devargs no bus or driver takes
 * (`net_bogus0`) as EFAULT ("Bad address"), which names neither the cause nor the fix.
 */
function attachError(err: unknown, devargs: string): unknown {
  if (!(err instanceof MpBusError) || err.code !== 'EFAULT' || !err.message.includes('failed to parse device')) return err;
  const driver = devargs.split(',')[0]!.replace(/[0-9]+$/, '');
  return new MpBusError(
    ErrorCodes.notFound,
    `cannot attach device '${devargs}': no DPDK driver is named '${driver}' (virtual devices are named by their driver and a number: net_null1, net_ring1, net_tap1, net_vhost1)`,
    { cause: err, errno: err.errno },
  );
}

export class PrimarySources {
  /** Every event, in order. Hot: subscribers see what happens after they subscribe. */
  readonly events$ = new Subject<InterruptEvent>();
  private readonly native: InterruptsBinding = interruptsNative();
  private readonly holds = new Map<string, { count: number; unwatch: () => void }>();
  private readonly alarms = new Map<number, AlarmInfo>();
  private readonly fdNames = new Map<number, string>();
  private readonly links = new Map<number, LinkState>();
  /** Events held back until a NEW port can be named (see drain). */
  private unnamed: NativeInterruptEvent[] = [];
  private nameRetries = 0;
  private nameTimer: NodeJS.Timeout | undefined;
  private nextAlarmId = 1;
  private lastSeq = 0;
  private closed = false;
  /** The hotplugs called so far, ended (see oneAtATime). */
  private hotplugs: Promise<void> = Promise.resolve();

  constructor(private readonly log: Logger) {
    this.native.intrOpen(() => this.drain());
  }

  /** @internal the addon's interrupt functions (eventfds for event sources). */
  get nativeBinding(): InterruptsBinding {
    return this.native;
  }

  /** The seq of the last event emitted. */
  get seq(): number {
    return this.lastSeq;
  }

  /** Counts for leak checks: native registrations and the holds behind them. */
  stats(): { holds: number; alarms: number; fds: number; native: ReturnType<InterruptsBinding['intrStats']> } {
    return { holds: this.holds.size, alarms: this.alarms.size, fds: this.fdNames.size, native: this.native.intrStats() };
  }

  private drain(): void {
    if (this.closed) return;
    const batch = this.unnamed.length > 0 ? [...this.unnamed.splice(0), ...this.native.intrDrain()] : this.native.intrDrain();
    for (let i = 0; i < batch.length; i++) {
      const ev = batch[i]!;
      // DPDK raises NEW just before it marks the port attached: a drain that runs in between
      // cannot name the port yet. Wait a moment with this event and the ones after it (order).
      if (ev.type === 'new' && !ev.device) {
        ev.device = this.portName(ev.portId!);
        if (!ev.device && this.nameRetries < NAME_RETRIES) {
          this.nameRetries += 1;
          this.unnamed = batch.slice(i);
          this.nameTimer ??= setTimeout(() => {
            this.nameTimer = undefined;
            this.drain();
          }, NAME_RETRY_MS);
          return;
        }
        this.nameRetries = 0;
      }
      const event = this.toEvent(ev);
      if (event) this.events$.next(event);
    }
  }

  private portName(port: number): string {
    try {
      return this.native.intrPortInfo(port).name;
    } catch {
      return ''; // not attached yet (or gone again)
    }
  }

  private toEvent(ev: NativeInterruptEvent): InterruptEvent | undefined {
    const base = { timestamp: ev.timestamp };
    switch (ev.type) {
      case 'lsc': {
        const port = ev.portId!;
        const link: LinkState = {
          status: ev.linkUp ? 'up' : 'down',
          speedMbps: ev.speedMbps ?? 0,
          duplex: ev.fullDuplex ? 'full' : 'half',
          autoneg: ev.autoneg ?? false,
        };
        const via = ev.via ?? 'interrupt';
        // Kernel messages and reads after start/stop repeat what is known: only changes count.
        // A PMD's own interrupt always counts (it may report a speed or duplex change).
        const known = this.links.get(port);
        if (via !== 'interrupt' && known && known.status === link.status) return undefined;
        this.links.set(port, link);
        return { ...base, seq: ++this.lastSeq, type: 'lsc', source: { portId: port, device: ev.device ?? '' }, details: { ...link, via } };
      }
      case 'new':
      case 'destroy':
      case 'removal':
        if (ev.type !== 'removal') this.links.delete(ev.portId!);
        return { ...base, seq: ++this.lastSeq, type: ev.type, source: { portId: ev.portId!, device: ev.device ?? '' }, details: {} };
      case 'alarm': {
        const alarm = this.alarms.get(ev.sourceId!);
        if (!alarm) return undefined; // cancelled while its event was queued
        if (!alarm.periodic) this.alarms.delete(ev.sourceId!);
        return { ...base, seq: ++this.lastSeq, type: 'alarm', source: { alarm: alarm.name }, details: { periodic: alarm.periodic, delayMs: alarm.delayMs } };
      }
      case 'fd': {
        const name = this.fdNames.get(ev.sourceId!);
        if (name === undefined) return undefined;
        const details: { value?: number; bytes?: number } = {};
        if (ev.bytes) details.bytes = ev.bytes;
        else details.value = ev.value ?? 0;
        return { ...base, seq: ++this.lastSeq, type: 'fd', source: { fd: name }, details };
      }
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new MpBusError(ErrorCodes.closed, 'interrupts are closed (the runtime is closing)');
  }

  /**
   * Starts watching a source, or adds a hold on one already watched. Resolves with the release.
   * @throws {MpBusError} `UNKNOWN_PORT`, `NOT_SUPPORTED` (the PMD has no such interrupt), `INVALID_OPTION`.
   */
  acquire(spec: WatchSpec): Release {
    this.assertOpen();
    validateWatch(spec);
    if (spec.type === 'alarm') return this.setAlarm(spec.name, spec.delayMs, spec.periodic ?? false);
    const key = spec.type === 'ports' ? 'ports' : `${spec.type}:${spec.port}`;
    let hold = this.holds.get(key);
    if (!hold) {
      hold = { count: 0, unwatch: this.watchNative(spec) };
      this.holds.set(key, hold);
    }
    hold.count += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const h = this.holds.get(key);
      if (!h || --h.count > 0) return;
      this.holds.delete(key);
      if (!this.closed) h.unwatch();
    };
  }

  /** {@link acquire} as the backend's hold: errors are thrown at once, nothing to wait for. */
  hold(spec: WatchSpec): { ready: undefined; release: Release } {
    return { ready: undefined, release: this.acquire(spec) };
  }

  private watchNative(spec: Exclude<WatchSpec, { type: 'alarm' }>): () => void {
    if (spec.type === 'ports') {
      this.native.intrWatchEth(-1, 'new');
      try {
        this.native.intrWatchEth(-1, 'destroy');
      } catch (err) {
        this.native.intrUnwatchEth(-1, 'new');
        throw err;
      }
      return () => {
        this.native.intrUnwatchEth(-1, 'new');
        this.native.intrUnwatchEth(-1, 'destroy');
      };
    }
    const { port, type } = spec;
    try {
      const via = this.native.intrWatchEth(port, type);
      this.log.debug({ port, type, via }, 'watching');
    } catch (err) {
      throw portError(err, port, `cannot watch ${type === 'lsc' ? 'link status' : 'removal'} of port ${port}`);
    }
    if (type === 'lsc' && !this.links.has(port)) this.links.set(port, toLink(this.native.intrLinkGet(port)));
    return () => this.native.intrUnwatchEth(port, type);
  }

  private setAlarm(name: string, delayMs: number, periodic: boolean): Release {
    const id = this.nextAlarmId++;
    this.alarms.set(id, { name, delayMs, periodic });
    try {
      this.native.intrAlarmSet(id, Math.round(delayMs * 1000), periodic);
    } catch (err) {
      this.alarms.delete(id);
      throw err;
    }
    return () => {
      if (!this.alarms.delete(id) || this.closed) return;
      this.native.intrAlarmCancel(id);
    };
  }

  /**
   * Watches an fd on the EAL interrupt thread: each time it becomes readable an `fd` event named
   * `name` is emitted (`eventfd` sources report the counter). The caller keeps owning the fd.
   */
  watchFd(fd: number, name: string, kind: 'eventfd' | 'raw'): Release {
    this.assertOpen();
    if (!Number.isInteger(fd) || fd < 0) throw new MpBusError(ErrorCodes.invalidOption, `fd must be a non-negative integer, got ${String(fd)}`);
    const id = this.native.intrFdWatch(fd, kind);
    this.fdNames.set(id, name);
    return () => {
      if (!this.fdNames.delete(id) || this.closed) return;
      this.native.intrFdUnwatch(id);
    };
  }

  /** The port's link: the last one events reported, else read now. */
  linkSnapshot(port: number): LinkSnapshot {
    this.assertOpen();
    validatePort(port);
    let link = this.links.get(port);
    if (!link) {
      try {
        link = toLink(this.native.intrLinkGet(port));
      } catch (err) {
        throw portError(err, port, `cannot read the link of port ${port}`);
      }
    }
    return { link, seq: this.lastSeq };
  }

  portInfo(port: number): PortInfo {
    this.assertOpen();
    validatePort(port);
    try {
      return toPortInfo(this.native.intrPortInfo(port));
    } catch (err) {
      throw portError(err, port, `no information on port ${port}`);
    }
  }

  ports(): PortInfo[] {
    this.assertOpen();
    return this.native.intrPorts().map((p) => toPortInfo(this.native.intrPortInfo(p)));
  }

  /**
   * Starts a port (one rx and one tx queue) with its link status interrupt armed when the PMD has
   * one (`intr_conf.lsc = 1` at configure: net_tap and others arm it only then), then reports its
   * link in order with the interrupts.
   */
  startPort(port: number, lsc = true): { lscArmed: boolean } {
    this.assertOpen();
    validatePort(port);
    let lscArmed: boolean;
    try {
      lscArmed = this.native.intrPortStart(port, lsc);
    } catch (err) {
      throw portError(err, port, `cannot start port ${port}`);
    }
    this.native.intrPostLink(port);
    return { lscArmed };
  }

  stopPort(port: number): void {
    this.assertOpen();
    validatePort(port);
    try {
      this.native.intrPortStop(port);
    } catch (err) {
      throw portError(err, port, `cannot stop port ${port}`);
    }
    this.native.intrPostLink(port);
  }

  /**
   * Hotplugs a device (`rte_dev_probe`), e.g. `net_null1` or `net_ring1`. Every secondary
   * attaches it too. Hotplugs run one at a time, in call order (see {@link oneAtATime}).
   */
  attach(devargs: string): Promise<{ device: string; portId?: number }> {
    this.assertOpen();
    return this.oneAtATime(async () => {
      let result: { device: string; portId?: number };
      try {
        this.assertOpen();
        result = await this.native.intrHotplug(true, devargs);
      } catch (err) {
        throw this.closedMeanwhile(err, `cannot attach '${devargs}'`) ?? attachError(err, devargs);
      }
      // A port id is reused once its device is gone: what was known of the old port's link is not this one's.
      if (result.portId !== undefined) this.links.delete(result.portId);
      // The NEW event was queued during the probe, before the port was attached, when its name
      // could not be read yet: drain now, while the port is surely still there to name it.
      this.drain();
      return result;
    });
  }

  /** Stops the port if this process started it, and removes its device (`rte_dev_remove`); one at a time with attaches. */
  detach(device: string): Promise<{ device: string; portId?: number }> {
    this.assertOpen();
    return this.oneAtATime(async () => {
      try {
        this.assertOpen();
        const result = await this.native.intrHotplug(false, device);
        // (the DESTROY event that forgets it comes only while `ports` is watched)
        if (result.portId !== undefined) this.links.delete(result.portId);
        this.drain();
        return result;
      } catch (err) {
        throw this.closedMeanwhile(err, `cannot detach '${device}'`) ?? detachError(err);
      }
    });
  }

  /**
   * Runs a hotplug after those called before it have ended. DPDK lets a process have one hotplug
   * request pending with each secondary (`eal_dev_mp_request`): a second attach while the first
   * waits for the secondaries' answers failed with ENOMSG ("No message of desired type"), and
   * DPDK's rollback left the secondaries' devices unlike the primary's.
   */
  private oneAtATime<T>(hotplug: () => Promise<T>): Promise<T> {
    const run = this.hotplugs.then(hotplug, hotplug);
    this.hotplugs = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Resolves once no hotplug runs (the close waits for it: DPDK's cleanup must not run under a probe). */
  hotplugsEnded(): Promise<void> {
    return this.hotplugs;
  }

  /**
   * A hotplug that failed because the runtime closed while it ran (the close stops the ports
   * this process started: a virtio_user frontend then finds its vhost backend gone, EPERM) is
   * CLOSED, which a process ending on Ctrl-C drops, rather than DPDK's error of the moment.
   */
  private closedMeanwhile(err: unknown, what: string): MpBusError | undefined {
    if (!this.closed) return undefined;
    if (err instanceof MpBusError && err.code === ErrorCodes.closed) return err; // queued, and never ran
    return new MpBusError(ErrorCodes.closed, `${what}: the runtime closed while it ran`, { cause: err });
  }

  /** Releases every native registration (before rte_eal_cleanup) and completes events$. */
  close(): void {
    if (this.closed) return;
    this.nameRetries = NAME_RETRIES; // closing: name what can be named, emit everything
    this.drain();
    if (this.nameTimer) clearTimeout(this.nameTimer);
    this.closed = true;
    this.native.intrClose();
    this.holds.clear();
    this.alarms.clear();
    this.fdNames.clear();
    this.events$.complete();
  }
}
