/** The shapes of interrupt events and watch requests, the same in every process of a group. */

/** What happened. */
export type InterruptType = 'lsc' | 'removal' | 'new' | 'destroy' | 'alarm' | 'fd';

/** A port's link as DPDK reports it. */
export interface LinkState {
  status: 'up' | 'down';
  /** 0 when unknown. */
  speedMbps: number;
  duplex: 'full' | 'half';
  autoneg: boolean;
}

/**
 * How a link state became known: `interrupt` (the PMD raised RTE_ETH_EVENT_INTR_LSC), `netlink`
 * (the kernel announced it; net_tap raises no LSC event itself, see docs/interrupts.md),
 * `port-control` (read after mpbus started or stopped the port), `snapshot` (read on request).
 */
export type LinkVia = 'interrupt' | 'netlink' | 'port-control' | 'snapshot';

interface EventBase {
  /** Order of the event in the primary, from 1: every process sees the same order. */
  seq: number;
  /** When the primary's callback ran, ms since the epoch (like Date.now()). */
  timestamp: number;
}

/** Link status change of a port. */
export interface LinkEvent extends EventBase {
  type: 'lsc';
  source: { portId: number; device: string };
  details: LinkState & { via: LinkVia };
}

/** A port appeared (`new`), was released (`destroy`) or its device was removed under it (`removal`). */
export interface PortEvent extends EventBase {
  type: 'new' | 'destroy' | 'removal';
  source: { portId: number; device: string };
  details: Record<string, never>;
}

/** An EAL alarm (rte_eal_alarm_set) fired. */
export interface AlarmEvent extends EventBase {
  type: 'alarm';
  source: { alarm: string };
  details: { periodic: boolean; delayMs: number };
}

/** A user fd watched by the EAL interrupt thread became readable. */
export interface FdEvent extends EventBase {
  type: 'fd';
  source: { fd: string };
  /** eventfd sources: the counter read (the sum of the writes since the last event). Raw fds: bytes read. */
  details: { value?: number; bytes?: number };
}

/** Every event `rt.interrupts$` emits. Narrow on `type`. */
export type InterruptEvent = LinkEvent | PortEvent | AlarmEvent | FdEvent;

/**
 * The events of the types `T`, as `ofType` and `on` emit them: each kind of event that has one
 * of them, its `type` narrowed to those (`ofType('new', 'destroy')` gives `PortEvent`s whose
 * `type` is `'new' | 'destroy'`). `Extract<InterruptEvent, { type: T }>` would give `never`
 * there: `PortEvent` carries three types, and is not one of `{ type: 'new' | 'destroy' }`.
 */
export type InterruptEventOf<T extends InterruptType> = InterruptEvent extends infer E
  ? E extends InterruptEvent
    ? [Extract<E['type'], T>] extends [never]
      ? never
      : E & { type: Extract<E['type'], T> }
    : never
  : never;

/**
 * Events a secondary could not get: the primary keeps a bounded history (the last 4096 events)
 * for secondaries that missed broadcasts (stopped, starved); one that comes back after more
 * than that gets this instead of the events `from`..`to` (inclusive), and its `linkState$`
 * subscribers get the current link state again. See docs/interrupts.md.
 */
export interface EventLoss {
  from: number;
  to: number;
  reason: string;
}

/** A source the primary can watch, on behalf of any process. */
export type WatchSpec =
  | { type: 'lsc'; port: number }
  | { type: 'removal'; port: number }
  /** NEW and DESTROY events of every port, present and future (hotplug). */
  | { type: 'ports' }
  | { type: 'alarm'; name: string; delayMs: number; periodic?: boolean };

/** A port as the primary knows it. */
export interface PortInfo {
  portId: number;
  device: string;
  driver: string;
  /** The PMD can report link changes (RTE_ETH_DEV_INTR_LSC). */
  lscSupported: boolean;
  /** How mpbus observes link changes of this port when watched. */
  lscVia: 'interrupt' | 'netlink' | 'none';
  started: boolean;
  ifName?: string;
  link: LinkState;
}

/** Counters of the primary's relay (`rt.interrupts.relayStats()`). */
export interface RelayStats {
  /** Broadcasts of events (each one batch) and the events they carried. */
  batches: number;
  events: number;
  largestBatch: number;
  /** Broadcasts (events or beacons) that did not reach every secondary. */
  failed: number;
  beacons: number;
  /** Replay requests answered, and those that reached past the history. */
  replays: number;
  lossesReported: number;
  /** Events in the history now. */
  history: number;
}
