/**
 * Typing of native/intr_*.cc: the primary's interrupt and event sources (ethdev events,
 * hotplug, EAL alarms, fds on the EAL interrupt thread). No policy here: src/interrupts/ validates
 * arguments, counts references and decides what to watch.
 */
import { addon } from './addon.js';

/** One event as native code queued it, in the order DPDK's threads saw them. */
export interface NativeInterruptEvent {
  /** Order in this process, from 1. */
  seq: number;
  type: 'lsc' | 'removal' | 'new' | 'destroy' | 'alarm' | 'fd';
  /** ms since the epoch when the callback ran (like Date.now(), with a fraction). */
  timestamp: number;
  portId?: number;
  device?: string;
  /** lsc only: the link as read in the callback. */
  linkUp?: boolean;
  speedMbps?: number;
  fullDuplex?: boolean;
  autoneg?: boolean;
  /** lsc only: 'interrupt' (the PMD raised RTE_ETH_EVENT_INTR_LSC), 'netlink' (net_tap, see docs) or 'port-control'. */
  via?: 'interrupt' | 'netlink' | 'port-control';
  /** alarm / fd: the id given when the source was set up. */
  sourceId?: number;
  /** fd of kind eventfd: the counter read. */
  value?: number;
  /** fd of kind raw: bytes read and discarded. */
  bytes?: number;
}

export interface NativeLink {
  status: 'up' | 'down';
  speedMbps: number;
  duplex: 'full' | 'half';
  autoneg: boolean;
}

export interface NativePortInfo {
  portId: number;
  name: string;
  driver: string;
  /** The PMD sets RTE_ETH_DEV_INTR_LSC. */
  lscInterrupt: boolean;
  /** The PMD sets RTE_ETH_DEV_INTR_RMV. */
  removalInterrupt: boolean;
  /** Kernel interface index (net_tap, af_packet...), 0 when none. */
  ifIndex: number;
  ifName?: string;
  /** Started by this process through intrPortStart. */
  started: boolean;
  link: NativeLink;
}

export interface InterruptsBinding {
  /** Starts queueing events; `wake` runs on the JS thread once per burst, then call intrDrain. */
  intrOpen(wake: () => void): void;
  intrDrain(): NativeInterruptEvent[];
  /** Unregisters every callback, cancels alarms, unwatches fds, stops ports this process started. */
  intrClose(): void;
  intrStats(): { ethRegistrations: number; netlinkPorts: number; alarms: number; fdSources: number; queued: number; dropped: number };
  /** port -1 = every port (RTE_ETH_ALL). Returns how LSC is observed. Throws ENODEV, ENOTSUP. */
  intrWatchEth(port: number, event: 'lsc' | 'removal' | 'new' | 'destroy'): 'interrupt' | 'netlink';
  intrUnwatchEth(port: number, event: 'lsc' | 'removal' | 'new' | 'destroy'): boolean;
  intrPorts(): number[];
  intrPortInfo(port: number): NativePortInfo;
  intrLinkGet(port: number): NativeLink;
  /** Configures one rx and one tx queue and starts; returns whether the LSC interrupt was armed. */
  intrPortStart(port: number, lsc: boolean): boolean;
  intrPortStop(port: number): void;
  /** Queues an lsc event (via 'port-control') with the port's link as read now. */
  intrPostLink(port: number): void;
  /** rte_dev_probe(devargs) / rte_dev_remove of a port's device (by its name). */
  intrHotplug(attach: boolean, devargsOrName: string): Promise<{ device: string; portId?: number }>;
  intrAlarmSet(id: number, delayUs: number, periodic: boolean): void;
  intrAlarmCancel(id: number): void;
  /** Watches fd on the EAL interrupt thread; returns the source id. The caller keeps the fd. */
  intrFdWatch(fd: number, kind: 'eventfd' | 'raw'): number;
  intrFdUnwatch(sourceId: number): boolean;
  eventfdOpen(): number;
  eventfdWrite(fd: number, value: number): void;
  eventfdClose(fd: number): void;
}

/** The interrupt functions of the addon (loaded on first use). */
export function interruptsNative(): InterruptsBinding {
  return addon() as unknown as InterruptsBinding;
}
