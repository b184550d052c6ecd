/**
 * {@link Interrupts}: interrupt and event sources of the group as observables, the same API in
 * every process. The primary watches the sources through DPDK; secondaries see the events the
 * primary relays, and ask it to watch or stop watching a source.
 *
 * ```ts
 * const intr = rt.interrupts;
 * intr.linkState$(0).subscribe((link) => console.log('port 0 is', link.status));
 * rt.interrupts$.pipe(ofType('new', 'destroy')).subscribe(console.log);
 * await intr.attach('net_null1'); // hotplug: a `new` event in every process
 * ```
 */
import { EMPTY, Observable, distinctUntilChanged, map, take, type Subscriber } from 'rxjs';
import { MpBusError, ErrorCodes } from '../errors.js';
import { ofAlarm, ofFd, ofPort, ofType } from './operators.js';
import { isPrimaryClosing, type Hold, type InterruptBackend } from './backend.js';
import type { PrimarySources, Release } from './primary.js';
import type {
  AlarmEvent,
  EventLoss,
  FdEvent,
  InterruptEvent,
  InterruptEventOf,
  InterruptType,
  LinkEvent,
  LinkState,
  PortEvent,
  PortInfo,
  RelayStats,
  WatchSpec,
} from './types.js';
import { validatePort, validateSignalCount, validateWatch } from './validate.js';

/** A held watch: the primary keeps watching the source until every holder released it. */
export interface Watch {
  readonly spec: WatchSpec;
  /** Stops holding the source (idempotent). */
  release(): void;
}

/** A user event source: an eventfd watched by the EAL interrupt thread (primary only). */
export interface EventSource {
  readonly name: string;
  /** The eventfd: any code (or another process it was passed to) may write to it. */
  readonly fd: number;
  /** `fd` events of this source, in every process. */
  readonly events$: Observable<FdEvent>;
  /**
   * Adds `n` (default 1) to the eventfd counter (wakes the interrupt thread).
   *
   * @throws {MpBusError} `INVALID_OPTION` for an `n` that is not an integer from 1 to 2^53-1;
   *   `CLOSED` once the source or the runtime closed.
   */
  signal(n?: number): void;
  /** Stops watching and closes the eventfd (the runtime's close does it for sources still open). */
  close(): void;
}

function sameLink(a: LinkState, b: LinkState): boolean {
  return a.status === b.status && a.speedMbps === b.speedMbps && a.duplex === b.duplex && a.autoneg === b.autoneg;
}

export class Interrupts {
  /** Every interrupt event this process receives, in the primary's order. Hot. */
  readonly events$: Observable<InterruptEvent>;
  /**
   * Events this process missed for good: a secondary that did not read its rte_mp socket
   * (stopped, starved) gets the events it missed replayed from the primary's history of the
   * last 4096; one that missed more gets an {@link EventLoss} here instead, and every
   * `linkState$` of it emits the current state again. Never emits in the primary.
   */
  readonly lost$: Observable<EventLoss>;

  constructor(
    private readonly backend: InterruptBackend,
    /** Present in the primary only: the native sources. */
    private readonly local: PrimarySources | undefined,
    /** Present in the primary only: the relay's counters. */
    private readonly relayCounters?: () => RelayStats,
  ) {
    this.events$ = backend.events$;
    this.lost$ = backend.losses$ ?? EMPTY;
    this.events$.subscribe({
      complete: () => this.end(),
      error: (err: unknown) => this.end(err),
    });
  }

  private end(err?: unknown): void {
    this.ended = true;
    this.endedBy = err;
    // their eventfds were left open after the runtime closed, and signal() still wrote to them
    for (const close of [...this.openSources]) close();
  }

  /** The close of each event source not closed yet (run when the events end). */
  private readonly openSources = new Set<() => void>();

  /** Set once the event stream ended (the runtime closed, or a lost primary closed it). */
  private ended = false;
  /** What ended it with an error (PRIMARY_LOST: a secondary's primary is gone). */
  private endedBy: unknown;

  /**
   * A watched stream subscribed after the events ended fails with CLOSED: it could never emit,
   * and a completion would read as "done" (`firstValueFrom` would give an EmptyError).
   */
  private failIfEnded(subscriber: Subscriber<unknown>): boolean {
    if (!this.ended) return false;
    subscriber.error(
      this.endedBy ??
        new MpBusError(ErrorCodes.closed, 'interrupts ended with the runtime (closed, or its primary lost): start a new process to join a group again'),
    );
    return true;
  }

  /** Events of some types, optionally of one port: `on('lsc', 0)`. Watches nothing by itself. */
  on<T extends InterruptType>(types: T | T[], port?: number): Observable<InterruptEventOf<T>> {
    const list = Array.isArray(types) ? types : [types];
    const typed = this.events$.pipe(ofType(...list));
    if (port === undefined) return typed;
    validatePort(port);
    return typed.pipe(ofPort(port));
  }

  /**
   * Asks the primary to watch a source until {@link Watch.release}. Several holders of one
   * source share one native registration.
   * @throws {MpBusError} `UNKNOWN_PORT`, `NOT_SUPPORTED` (the PMD has no such interrupt), `INVALID_OPTION`.
   */
  async watch(spec: WatchSpec): Promise<Watch> {
    validateWatch(spec);
    const hold = this.backend.hold(spec);
    try {
      await hold.ready;
    } catch (err) {
      hold.release();
      throw err;
    }
    return { spec, release: hold.release };
  }

  /** Subscribes `stream`, holding `spec` watched while subscribed; errors of the watch go to the subscriber. */
  private holding<T>(spec: WatchSpec, stream: Observable<T>): Observable<T> {
    return new Observable<T>((subscriber) => {
      if (this.failIfEnded(subscriber)) return;
      // Subscribe first: nothing that happens once the watch is in place can be missed.
      const inner = stream.subscribe(subscriber);
      let hold: Hold | undefined;
      try {
        hold = this.backend.hold(spec);
        hold.ready?.catch((err: unknown) => failUnlessPrimaryCloses(subscriber, err));
      } catch (err) {
        subscriber.error(err);
      }
      return () => {
        inner.unsubscribe();
        hold?.release();
      };
    });
  }

  /** Link status changes of a port, watched while subscribed. Errors: `UNKNOWN_PORT`, `NOT_SUPPORTED`. */
  link$(port: number): Observable<LinkEvent> {
    validatePort(port);
    return this.holding({ type: 'lsc', port }, this.on('lsc', port));
  }

  /**
   * The port's link: the current state first, then every change. A late subscriber gets the
   * state as it is, not the history. The link status interrupt is watched while subscribed when
   * the PMD has one; for other PMDs (net_null, net_ring) changes come from starting and stopping
   * the port through {@link startPort}/{@link stopPort}. Completes when the port's device is
   * removed (`detach`), and when the runtime closes. Errors: `UNKNOWN_PORT`.
   */
  linkState$(port: number): Observable<LinkState> {
    validatePort(port);
    return new Observable<LinkState>((subscriber) => {
      if (this.failIfEnded(subscriber)) return;
      let hold: Hold | undefined;
      let done = false;
      /** The seq the state given last reflects (-1: no state yet); older events are history. */
      let floor = -1;
      const early: LinkEvent[] = [];
      const inner = this.on('lsc', port).subscribe({
        next: (e) => {
          if (floor < 0) early.push(e);
          else if (e.seq > floor) subscriber.next(e.details);
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      // The port's device removed (detach): nothing more will come of this port (a device
      // attached later may take its id: a new subscription follows that one). DESTROY events
      // come only while `ports` is watched: held here too.
      const gone = this.on('destroy', port).subscribe(() => subscriber.complete());
      let portsHold: Hold | undefined;
      try {
        portsHold = this.backend.hold({ type: 'ports' });
        portsHold.ready?.catch(() => undefined); // without it the stream goes quiet at a detach instead of completing
      } catch {
        // (idem)
      }
      const snapshot = async (): Promise<void> => {
        const snap = await this.backend.linkSnapshot(port);
        if (done || snap.seq < floor) return;
        floor = snap.seq;
        subscriber.next(snap.link);
        for (const e of early.splice(0)) if (e.seq > floor) subscriber.next(e.details);
      };
      const start = async (): Promise<void> => {
        try {
          hold = this.backend.hold({ type: 'lsc', port });
          await hold.ready;
        } catch (err) {
          // No link interrupt on this PMD: the state and port-control changes still come.
          if (!(err instanceof MpBusError && err.code === ErrorCodes.notSupported)) throw err;
        }
        if (done) return;
        await snapshot();
      };
      start().catch((err: unknown) => failUnlessPrimaryCloses(subscriber, err));
      // Missed events may have changed the link: the state as it is now replaces them.
      const losses = this.lost$.subscribe(() => {
        if (floor >= 0) snapshot().catch((err: unknown) => failUnlessPrimaryCloses(subscriber, err));
      });
      return () => {
        done = true;
        inner.unsubscribe();
        gone.unsubscribe();
        losses.unsubscribe();
        hold?.release();
        portsHold?.release();
      };
    }).pipe(
      map((l): LinkState => ({ status: l.status, speedMbps: l.speedMbps, duplex: l.duplex, autoneg: l.autoneg })),
      distinctUntilChanged(sameLink),
    );
  }

  /** Ports appearing and going (`new`, `destroy`: hotplug included), watched while subscribed. */
  ports$(): Observable<PortEvent> {
    return this.holding({ type: 'ports' }, this.on(['new', 'destroy']));
  }

  /** Removal events of a port (`RTE_ETH_EVENT_INTR_RMV`), watched while subscribed. */
  removal$(port: number): Observable<PortEvent> {
    validatePort(port);
    return this.holding({ type: 'removal', port }, this.on('removal', port));
  }

  /**
   * An EAL alarm (`rte_eal_alarm_set`) set in the primary while subscribed: one event after
   * `delayMs` (then completes), or one every `delayMs` with `periodic`. Unsubscribing cancels it.
   * Alarms of one name share their events: give each its own name.
   */
  alarm$(name: string, delayMs: number, options: { periodic?: boolean } = {}): Observable<AlarmEvent> {
    const spec: WatchSpec = { type: 'alarm', name, delayMs, periodic: options.periodic ?? false };
    validateWatch(spec);
    const events = this.events$.pipe(ofAlarm(name));
    return this.holding(spec, options.periodic ? events : events.pipe(take(1)));
  }

  private requireLocal(what: string): PrimarySources {
    if (!this.local) throw new MpBusError(ErrorCodes.primaryOnly, `${what} is done in the primary: only its EAL interrupt thread watches fds`);
    return this.local;
  }

  /**
   * Watches an fd on the EAL interrupt thread (primary only): an `fd` event named `name` each
   * time it becomes readable; every process sees them. `eventfd` sources report the counter;
   * `raw` ones are read and their bytes counted. The caller keeps the fd.
   */
  fd$(fd: number, name: string, kind: 'eventfd' | 'raw' = 'raw'): Observable<FdEvent> {
    const local = this.requireLocal('watching an fd');
    return new Observable<FdEvent>((subscriber) => {
      const inner = this.events$.pipe(ofFd(name)).subscribe(subscriber);
      let release: Release | undefined;
      try {
        release = local.watchFd(fd, name, kind);
      } catch (err) {
        subscriber.error(err);
      }
      return () => {
        inner.unsubscribe();
        release?.();
      };
    });
  }

  /** Creates an eventfd watched by the EAL interrupt thread (primary only): a user interrupt source. */
  eventSource(name: string): EventSource {
    const local = this.requireLocal('creating an event source');
    const native = local.nativeBinding;
    const fd = native.eventfdOpen();
    let release: Release;
    try {
      release = local.watchFd(fd, name, 'eventfd');
    } catch (err) {
      native.eventfdClose(fd);
      throw err;
    }
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      this.openSources.delete(close);
      release();
      native.eventfdClose(fd);
    };
    this.openSources.add(close);
    return {
      name,
      fd,
      events$: this.events$.pipe(ofFd(name)),
      signal: (n = 1) => {
        if (closed) throw new MpBusError(ErrorCodes.closed, `event source '${name}' is closed${this.ended ? ' (with the runtime)' : ''}`);
        validateSignalCount(n);
        native.eventfdWrite(fd, n);
      },
      close,
    };
  }

  /** The port as the primary knows it. Errors: `UNKNOWN_PORT`. */
  async portInfo(port: number): Promise<PortInfo> {
    validatePort(port);
    return this.backend.portInfo(port);
  }

  /** Every ethdev port of the group. */
  async ports(): Promise<PortInfo[]> {
    return this.backend.ports();
  }

  /**
   * Starts a port in the primary (one rx and one tx queue), arming its link status interrupt
   * when the PMD has one. Errors: `UNKNOWN_PORT`.
   */
  async startPort(port: number, options: { lsc?: boolean } = {}): Promise<{ lscArmed: boolean }> {
    validatePort(port);
    return this.backend.startPort(port, options.lsc ?? true);
  }

  async stopPort(port: number): Promise<void> {
    validatePort(port);
    await this.backend.stopPort(port);
  }

  /** Hotplugs a vdev in the primary (every secondary attaches it too), e.g. `net_null1`. */
  async attach(devargs: string): Promise<{ device: string; portId?: number }> {
    if (typeof devargs !== 'string' || !/^[A-Za-z0-9_]+[0-9](,.*)?$/.test(devargs)) {
      throw new MpBusError(ErrorCodes.invalidOption, `devargs must look like 'net_null1' or 'net_ring1,nodeaction=...', got ${JSON.stringify(devargs)}`);
    }
    return this.backend.attach(devargs);
  }

  /** Removes a hotplugged (or any) device by name, e.g. `net_null1`, stopping its port first. */
  async detach(device: string): Promise<{ device: string; portId?: number }> {
    if (typeof device !== 'string' || !/^[A-Za-z0-9_]+$/.test(device)) {
      throw new MpBusError(ErrorCodes.invalidOption, `a device name looks like 'net_null1', got ${JSON.stringify(device)}`);
    }
    return this.backend.detach(device);
  }

  /**
   * Primary only: the relay's counters: batches broadcast, broadcasts that missed a secondary,
   * beacons, replays served (see docs/interrupts.md).
   */
  relayStats(): RelayStats {
    if (!this.relayCounters) throw new MpBusError(ErrorCodes.primaryOnly, 'the relay runs in the primary: read its stats there');
    return this.relayCounters();
  }

  /** Primary only: native registrations and holds, for leak checks. */
  stats(): ReturnType<PrimarySources['stats']> {
    return this.requireLocal('reading native interrupt stats').stats();
  }
}

/**
 * Fails a stream with `err`, unless the primary has begun to close (the relay no longer serves
 * it): then the stream waits for the end that brings, completing when this process's runtime
 * closes, or failing with PRIMARY_LOST from the relay (`onPrimaryLost: 'ignore'`). A subscription
 * that started just as Ctrl-C reached the whole group failed instead, and a subscriber without
 * an error callback printed its stack.
 */
function failUnlessPrimaryCloses(subscriber: Subscriber<unknown>, err: unknown): void {
  if (!isPrimaryClosing(err)) subscriber.error(err);
}
