/**
 * Ports read by polling, in any process: the list, info, link state and counters of the group's
 * ethdev ports, read from shared memory by this process itself. For a secondary whose primary is
 * a C DPDK program (testpmd, an application of one's own), which relays no interrupt event: there
 * `rt.interrupts` fails with ENOTREADY, and `PolledPorts` is how to see the ports.
 */
import { Observable, distinctUntilChanged, timer } from 'rxjs';
import { ErrorCodes, MpBusError } from '../errors.js';
import type { LinkState } from '../interrupts/types.js';
import { addon } from '../native/addon.js';
import { interruptsNative, type NativeLink } from '../native/interrupts.js';
import { validatePort } from '../interrupts/validate.js';
import { checkedOptions, optionKeys } from '../validation.js';
import type { Runtime } from '../runtime/runtime.js';

/** A port's basic counters since it was last reset (`rte_eth_stats_get`). */
export interface PortStats {
  ipackets: number;
  opackets: number;
  ibytes: number;
  obytes: number;
  /** Dropped by the device for lack of room in the rx queue. */
  imissed: number;
  ierrors: number;
  oerrors: number;
  /** rx mbuf allocation failures. */
  rxNoMbuf: number;
}

/** What a poll reads of a port (no `started`: only the process that started a port knows). */
export interface PolledPortInfo {
  portId: number;
  device: string;
  driver: string;
  /** The PMD can report link changes by interrupt (to the primary only). */
  lscSupported: boolean;
  ifName?: string;
  link: LinkState;
}

export interface PolledPortsOptions {
  /** How often the observables read, in ms (default 500, at least 10). */
  intervalMs?: number | undefined;
}

interface PortStatsBinding {
  ethStats(port: number): PortStats;
}

function toLink(l: NativeLink): LinkState {
  return { status: l.status, speedMbps: l.speedMbps, duplex: l.duplex, autoneg: l.autoneg };
}

const POLLED_PORTS_OPTION_KEYS = optionKeys<PolledPortsOptions>({ intervalMs: true });

const sameLink = (a: LinkState, b: LinkState): boolean =>
  a.status === b.status && a.speedMbps === b.speedMbps && a.duplex === b.duplex && a.autoneg === b.autoneg;

export class PolledPorts {
  readonly intervalMs: number;
  private readonly native = interruptsNative();

  /** Polls the ports of `rt`'s group (the runtime must be open while it is used). */
  constructor(
    private readonly rt: Runtime,
    options: PolledPortsOptions = {},
  ) {
    checkedOptions(options, POLLED_PORTS_OPTION_KEYS, 'PolledPorts options');
    rt.assertOpen();
    const intervalMs = options.intervalMs ?? 500;
    if (typeof intervalMs !== 'number' || !Number.isFinite(intervalMs) || intervalMs < 10) {
      throw new MpBusError(ErrorCodes.invalidOption, `PolledPorts intervalMs must be a number of ms >= 10, got ${String(intervalMs)}`);
    }
    this.intervalMs = intervalMs;
  }

  /** The ids of the group's ports, as this process sees them. */
  ports(): number[] {
    this.rt.assertOpen();
    return this.native.intrPorts();
  }

  /** A port's device, driver and link, read now. @throws {MpBusError} `ENODEV` for an unknown port. */
  info(port: number): PolledPortInfo {
    this.rt.assertOpen();
    validatePort(port);
    const p = this.native.intrPortInfo(port);
    return {
      portId: p.portId,
      device: p.name,
      driver: p.driver,
      lscSupported: p.lscInterrupt,
      ...(p.ifName ? { ifName: p.ifName } : {}),
      link: toLink(p.link),
    };
  }

  /** A port's link, read now (`rte_eth_link_get_nowait`). */
  link(port: number): LinkState {
    this.rt.assertOpen();
    validatePort(port);
    return toLink(this.native.intrLinkGet(port));
  }

  /** A port's counters, read now. */
  stats(port: number): PortStats {
    this.rt.assertOpen();
    validatePort(port);
    return (addon() as unknown as PortStatsBinding).ethStats(port);
  }

  /**
   * The link now, then each change seen by a poll every `intervalMs`. Completes when the
   * runtime closes or the primary closes the port (a C primary closes its ports as it quits);
   * fails with ENODEV for a port that is not there at the first poll, and with CLOSED when
   * subscribed after the runtime closed.
   */
  linkState$(port: number): Observable<LinkState> {
    return this.polled(() => () => this.link(port)).pipe(distinctUntilChanged(sameLink));
  }

  /** The counters every `intervalMs`, with packets per second since the previous poll (ends as {@link linkState$} does). */
  stats$(port: number): Observable<PortStats & { rxPps: number; txPps: number }> {
    return this.polled(() => {
      let last: { at: number; s: PortStats } | undefined; // each subscriber's own previous poll
      return () => {
        const s = this.stats(port);
        const at = performance.now();
        const dt = last ? (at - last.at) / 1000 : 0;
        const rxPps = last && dt > 0 ? Math.max(0, (s.ipackets - last.s.ipackets) / dt) : 0;
        const txPps = last && dt > 0 ? Math.max(0, (s.opackets - last.s.opackets) / dt) : 0;
        last = { at, s };
        return { ...s, rxPps, txPps };
      };
    });
  }

  /**
   * What `reader()` makes (one reader per subscriber, so state such as a previous poll is its
   * own) read now and every `intervalMs`, completed as the runtime or the port closes: a subscriber without
   * an error callback (the docs' own example) crashed the process with CLOSED at every close,
   * `onPrimaryLost: 'close'` included, where the process is meant to live on.
   */
  private polled<T>(reader: () => () => T): Observable<T> {
    return new Observable<T>((sub) => {
      const read = reader();
      if (this.rt.closed) {
        sub.error(new MpBusError(ErrorCodes.closed, 'the runtime is closed: poll the ports of a runtime that is open'));
        return;
      }
      const unhook = this.rt.onClose(() => sub.complete());
      let seen = false;
      const ticks = timer(0, this.intervalMs).subscribe(() => {
        if (this.rt.closed) {
          sub.complete();
          return;
        }
        let value: T;
        try {
          value = read();
        } catch (err) {
          // a port read before and gone now was closed by the primary: nothing more to poll
          if (seen && err instanceof MpBusError && err.code === 'ENODEV') sub.complete();
          else sub.error(err);
          return;
        }
        seen = true;
        sub.next(value);
      });
      return () => {
        ticks.unsubscribe();
        unhook();
      };
    });
  }
}
