/**
 * The relay: interrupts fire only in the primary (DPDK's rule), so the primary broadcasts each
 * event over rte_mp to every secondary, and answers secondaries that ask it to watch a source,
 * read a link, start a port or hotplug a device.
 *
 * - `mpbus.intr.event`: primary -> every secondary, `{ events }` in the primary's order, or a
 *   beacon `{ latest }`. One broadcast is in flight at a time (on the bus's sender thread);
 *   events that come meanwhile go out together in the next, so a secondary that does not read
 *   (each broadcast then waits the socket's send timeout for it) costs the others about one
 *   timeout per batch, not one per event.
 * - When a broadcast did not reach every secondary, some secondary missed events: the primary
 *   keeps the last {@link HISTORY_LIMIT} events and sends a beacon with its latest seq every
 *   {@link BEACON_INTERVAL_MS} until a broadcast reaches everyone. A secondary that sees a seq
 *   beyond the next one it expects (in events or a beacon) asks for the missing ones (`replay`)
 *   and delivers them before anything newer; what the history lost is reported as an
 *   {@link EventLoss}.
 * - `mpbus.intr.ctl`: secondary -> primary requests `{ op, ... }`, answered with
 *   `{ ok: true, value }` or `{ ok: false, code, message }` so typed errors cross intact.
 *
 * A secondary's holds are tagged with its pid; the primary drops the holds of processes that
 * died (checked while any remote hold exists), so a crashed secondary leaks no registration.
 */
import { Subject, Subscription } from 'rxjs';
import type { Logger } from 'pino';
import { MpBusError, ErrorCodes } from '../errors.js';
import type { MpBus } from '../bus/index.js';
import type { Hold, InterruptBackend } from './backend.js';
import type { LinkSnapshot, PrimarySources, Release } from './primary.js';
import type { EventLoss, InterruptEvent, LinkState, PortInfo, RelayStats, WatchSpec } from './types.js';
import { validatePort, validateWatch } from './validate.js';

export const EVENT_NAME = 'mpbus.intr.event';
export const CONTROL_NAME = 'mpbus.intr.ctl';
const CONTROL_TIMEOUT_MS = 5000;
/** Hotplug waits for every secondary to attach the device too (DPDK's own rte_mp request). */
const HOTPLUG_TIMEOUT_MS = 20_000;
const REAP_INTERVAL_MS = 2000;
/** Events the primary keeps for secondaries that missed broadcasts (trimmed in bulk at twice this: a few MB at most). */
export const HISTORY_LIMIT = 4096;
/** While some secondary missed a broadcast, the primary tells its latest seq this often. */
export const BEACON_INTERVAL_MS = 250;
/** A secondary whose replay request failed (primary busy, gone) tries again after this. */
const REPLAY_RETRY_MS = 1000;

/** What the primary broadcasts on {@link EVENT_NAME}. */
type EventMessage = { events: InterruptEvent[] } | { latest: number };

/** The answer to `replay`: the events from `from` on that the history still has. */
interface ReplayReply {
  events: InterruptEvent[];
  lost?: { from: number; to: number };
}

export type ControlRequest =
  | { op: 'watch'; id: number; spec: WatchSpec }
  | { op: 'release'; id: number }
  | { op: 'snapshot'; port: number }
  | { op: 'portInfo'; port: number }
  | { op: 'ports' }
  | { op: 'startPort'; port: number; lsc: boolean }
  | { op: 'stopPort'; port: number }
  | { op: 'attach'; devargs: string }
  | { op: 'detach'; device: string }
  | { op: 'replay'; from: number };

type ControlReply = { ok: true; value?: unknown } | { ok: false; code: string; message: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function failure(err: unknown): ControlReply {
  if (err instanceof MpBusError) return { ok: false, code: err.code, message: err.message };
  return { ok: false, code: 'ERROR', message: err instanceof Error ? err.message : String(err) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The primary's relay: what {@link serveRelay} returns. */
export interface RelayServer {
  /** Answers one control request of the secondary `pid`. */
  handle(req: ControlRequest, pid: number): Promise<unknown>;
  /** The teardown, to run before the sources close. */
  stop(): void;
  stats(): RelayStats;
}

/**
 * Primary: answers control requests on {@link CONTROL_NAME} with the server `serve()` gives,
 * which may create it on the first request (the primary then serves without having used
 * interrupts itself). Unsubscribe to stop answering.
 */
export function serveControl(bus: MpBus, serve: () => RelayServer): Subscription {
  return bus.handle<ControlRequest, ControlReply>(CONTROL_NAME, async (req, msg) => {
    if (!isObject(req) || typeof req.op !== 'string' || typeof msg.pid !== 'number') {
      return { ok: false, code: ErrorCodes.invalidOption, message: 'malformed interrupt control request' };
    }
    try {
      return { ok: true, value: await serve().handle(req, msg.pid) };
    } catch (err) {
      return failure(err);
    }
  });
}

/** Primary: broadcasts every event of `sources` and answers control requests about them. */
export function serveRelay(sources: PrimarySources, bus: MpBus, log: Logger): RelayServer {
  const remoteHolds = new Map<string, { pid: number; release: Release }>();
  let reaper: NodeJS.Timeout | undefined;
  const relay = new EventRelay(bus, log);

  const reap = (): void => {
    for (const [key, hold] of remoteHolds) {
      if (alive(hold.pid)) continue;
      remoteHolds.delete(key);
      hold.release();
      log.info({ pid: hold.pid }, 'released a watch of a dead secondary');
    }
    if (remoteHolds.size === 0 && reaper) {
      clearInterval(reaper);
      reaper = undefined;
    }
  };

  const handle = async (req: ControlRequest, pid: number): Promise<unknown> => {
    switch (req.op) {
      case 'watch': {
        validateWatch(req.spec);
        const key = `${pid}:${req.id}`;
        if (remoteHolds.has(key)) throw new MpBusError(ErrorCodes.invalidOption, `watch ${req.id} of pid ${pid} is already held`);
        remoteHolds.set(key, { pid, release: sources.acquire(req.spec) });
        reaper ??= setInterval(reap, REAP_INTERVAL_MS).unref();
        return undefined;
      }
      case 'release': {
        const key = `${pid}:${req.id}`;
        const hold = remoteHolds.get(key);
        remoteHolds.delete(key);
        hold?.release();
        return hold !== undefined;
      }
      case 'snapshot':
        return sources.linkSnapshot(req.port);
      case 'portInfo':
        return sources.portInfo(req.port);
      case 'ports':
        return sources.ports();
      case 'startPort':
        return sources.startPort(req.port, req.lsc !== false);
      case 'stopPort':
        sources.stopPort(req.port);
        return undefined;
      case 'attach':
        if (typeof req.devargs !== 'string') throw new MpBusError(ErrorCodes.invalidOption, 'attach needs devargs');
        return sources.attach(req.devargs);
      case 'detach':
        if (typeof req.device !== 'string') throw new MpBusError(ErrorCodes.invalidOption, 'detach needs a device name');
        return sources.detach(req.device);
      case 'replay':
        if (!Number.isSafeInteger(req.from) || req.from < 1) throw new MpBusError(ErrorCodes.invalidOption, 'replay needs a seq to start from');
        return relay.replay(req.from);
      default:
        throw new MpBusError(ErrorCodes.invalidOption, `unknown interrupt control op ${JSON.stringify((req as { op?: unknown }).op)}`);
    }
  };

  const events: Subscription = sources.events$.subscribe((event) => relay.push(event));

  const stop = (): void => {
    events.unsubscribe();
    relay.close();
    if (reaper) clearInterval(reaper);
    for (const hold of remoteHolds.values()) hold.release();
    remoteHolds.clear();
  };
  return { handle, stop, stats: () => relay.stats() };
}

/**
 * The primary's broadcasts of events: one in flight at a time, the events that come meanwhile
 * batched into the next, a bounded history for replays, beacons while some secondary missed one.
 */
class EventRelay {
  private readonly history: InterruptEvent[] = [];
  private pending: InterruptEvent[] = [];
  private inFlight = false;
  private latest = 0;
  /** Some broadcast did not reach every secondary, and none has since. */
  private missed = false;
  private beacon: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counts = { batches: 0, events: 0, largestBatch: 0, failed: 0, beacons: 0, replays: 0, lossesReported: 0 };

  /** `primaryServes`: false under a primary that is not mpbus (a C program), which serves no relay: every call is `ENOTREADY` at once. */
  constructor(
    private readonly bus: MpBus,
    private readonly log: Logger,
    private readonly primaryServes = true,
  ) {}

  stats(): RelayStats {
    return { ...this.counts, history: Math.min(this.history.length, HISTORY_LIMIT) };
  }

  push(event: InterruptEvent): void {
    this.history.push(event);
    // Trimmed in bulk, so keeping the history costs O(1) per event.
    if (this.history.length >= 2 * HISTORY_LIMIT) this.history.splice(0, this.history.length - HISTORY_LIMIT);
    this.latest = event.seq;
    this.pending.push(event);
    this.flush();
  }

  /** The events from `from` on; those the history no longer has are reported as lost. */
  replay(from: number): ReplayReply {
    const oldest = this.history[0]?.seq ?? this.latest + 1;
    const start = Math.max(from, oldest, this.latest - HISTORY_LIMIT + 1);
    const reply: ReplayReply = { events: this.history.slice(Math.max(0, start - oldest)) };
    this.counts.replays += 1;
    if (from < start) {
      reply.lost = { from, to: start - 1 };
      this.counts.lossesReported += 1;
    }
    return reply;
  }

  private flush(): void {
    if (this.inFlight || this.closed || this.pending.length === 0) return;
    const events = this.pending;
    this.pending = [];
    this.counts.batches += 1;
    this.counts.events += events.length;
    this.counts.largestBatch = Math.max(this.counts.largestBatch, events.length);
    this.send({ events });
  }

  private send(message: EventMessage): void {
    this.inFlight = true;
    try {
      this.bus.broadcast(EVENT_NAME, message, { onSent: (err) => this.sent(err) });
    } catch (err) {
      // The bus is closing (or the value cannot be encoded: a bug): the primary's own
      // subscribers got the events; secondaries that see a later seq ask for these.
      this.inFlight = false;
      this.log.debug({ err }, 'events not relayed');
    }
  }

  private sent(err: MpBusError | undefined): void {
    this.inFlight = false;
    if (this.closed) return;
    if (err) {
      this.counts.failed += 1;
      if (!this.missed) this.log.info({ err: err.message, latest: this.latest }, 'a secondary missed events: beaconing until every secondary gets a broadcast');
      this.missed = true;
      this.beacon ??= setInterval(() => this.sendBeacon(), BEACON_INTERVAL_MS).unref();
    } else if (this.missed) {
      // Every secondary got a message with the latest seq: each one that missed something
      // now sees the gap and asks for a replay.
      this.missed = false;
      clearInterval(this.beacon);
      this.beacon = undefined;
    }
    this.flush();
  }

  private sendBeacon(): void {
    if (this.inFlight || this.closed || this.pending.length > 0) return;
    this.counts.beacons += 1;
    this.send({ latest: this.latest });
  }

  close(): void {
    this.closed = true;
    if (this.beacon) clearInterval(this.beacon);
    this.beacon = undefined;
  }
}

const EVENT_TYPES = new Set(['lsc', 'removal', 'new', 'destroy', 'alarm', 'fd']);

/** A relayed event is another process's bytes: check its shape before anyone sees it. */
function plausibleEvent(v: unknown): v is InterruptEvent {
  return (
    isObject(v) &&
    typeof v.type === 'string' &&
    EVENT_TYPES.has(v.type) &&
    typeof v.seq === 'number' &&
    Number.isSafeInteger(v.seq) &&
    typeof v.timestamp === 'number' &&
    isObject(v.source) &&
    isObject(v.details)
  );
}

/** Secondary: events from the primary's broadcasts, requests for everything else. */
export class RelayClient implements InterruptBackend {
  private readonly subject = new Subject<InterruptEvent>();
  readonly events$ = this.subject.asObservable();
  private readonly lossSubject = new Subject<EventLoss>();
  /** Events this process will never get (the primary's history no longer had them). */
  readonly losses$ = this.lossSubject.asObservable();
  /** The seq of the last event delivered here. */
  private lastSeq = 0;
  /** Set by the first message: a process starts from the events after it subscribed (late joiners get state, not history). */
  private synced = false;
  /** The highest seq the primary said exists. */
  private knownLatest = 0;
  /** Events past a gap, waiting for the replay that fills it. */
  private readonly early = new Map<number, InterruptEvent>();
  private replaying = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private nextHoldId = 1;
  private readonly subscriptions = new Subscription();

  /** `primaryServes`: false under a primary that is not mpbus (a C program), which serves no relay: every call is `ENOTREADY` at once. */
  constructor(
    private readonly bus: MpBus,
    private readonly log: Logger,
    private readonly primaryServes = true,
  ) {
    this.subscriptions.add(
      bus.messages$<unknown>(EVENT_NAME).subscribe({
        next: (msg) => {
          if (msg.raw || msg.role !== 'primary' || !this.take(msg.value)) {
            this.log.warn({ pid: msg.pid, raw: msg.raw }, 'dropped a malformed interrupt event message');
          }
          this.checkGap();
        },
        complete: () => this.subject.complete(),
      }),
    );
    // A batch whose shared-memory buffer expired before this process read it (stopped for longer
    // than the bus's TTL): ask the primary for whatever came after the last event delivered.
    this.subscriptions.add(
      bus.errors$.subscribe((err) => {
        if (err.code === 'PAYLOAD_GONE' && this.synced) this.startReplay();
      }),
    );
  }

  /** Takes an events message or a beacon; false if it is neither. */
  private take(value: unknown): boolean {
    if (!isObject(value)) return false;
    if (Array.isArray(value.events)) {
      let ok = true;
      for (const e of value.events as unknown[]) {
        if (plausibleEvent(e)) this.accept(e);
        else ok = false;
      }
      return ok;
    }
    if (Number.isSafeInteger(value.latest)) {
      const latest = value.latest as number;
      if (!this.synced) {
        this.synced = true;
        this.lastSeq = latest;
      }
      this.knownLatest = Math.max(this.knownLatest, latest);
      return true;
    }
    return false;
  }

  private accept(e: InterruptEvent): void {
    if (!this.synced) {
      this.synced = true;
      this.lastSeq = e.seq - 1;
    }
    // Order is the primary's: anything not newer than what was delivered is a duplicate.
    if (e.seq <= this.lastSeq) return;
    this.knownLatest = Math.max(this.knownLatest, e.seq);
    if (e.seq === this.lastSeq + 1) {
      this.deliver(e);
      this.deliverEarly();
    } else if (this.early.size < 4 * HISTORY_LIMIT) {
      this.early.set(e.seq, e); // beyond that the replay fetches them again
    }
  }

  private deliver(e: InterruptEvent): void {
    this.lastSeq = e.seq;
    this.subject.next(e);
  }

  private deliverEarly(): void {
    for (let e = this.early.get(this.lastSeq + 1); e !== undefined; e = this.early.get(this.lastSeq + 1)) {
      this.early.delete(e.seq);
      this.deliver(e);
    }
    if (this.early.size > 0) for (const seq of this.early.keys()) if (seq <= this.lastSeq) this.early.delete(seq);
  }

  private checkGap(): void {
    if (this.knownLatest > this.lastSeq) this.startReplay();
  }

  /** Asks the primary for the events after the last delivered; newer ones wait in `early`. */
  private startReplay(): void {
    if (this.replaying || this.closed || this.retryTimer) return;
    this.replaying = true;
    const from = this.lastSeq + 1;
    this.call<ReplayReply>({ op: 'replay', from }).then(
      (reply) => {
        this.replaying = false;
        if (this.closed) return;
        this.applyReplay(reply);
        this.checkGap();
      },
      (err: unknown) => {
        this.replaying = false;
        if (this.closed) return;
        this.log.warn({ err, from }, 'missed interrupt events could not be fetched yet: retrying');
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.checkGap();
        }, REPLAY_RETRY_MS);
        this.retryTimer.unref();
      },
    );
  }

  private applyReplay(reply: ReplayReply): void {
    if (!isObject(reply) || !Array.isArray(reply.events)) {
      this.log.warn('malformed replay from the primary');
      return;
    }
    const lost = reply.lost;
    if (isObject(lost) && Number.isSafeInteger(lost.to) && lost.to > this.lastSeq) {
      const loss: EventLoss = {
        from: this.lastSeq + 1,
        to: lost.to,
        reason: `this process missed events ${this.lastSeq + 1}..${lost.to} (it did not read its rte_mp socket for a while: stopped or starved), and the primary keeps only the last ${HISTORY_LIMIT}`,
      };
      this.lastSeq = lost.to;
      this.log.warn(loss, 'interrupt events lost');
      this.lossSubject.next(loss);
    }
    for (const e of reply.events as unknown[]) {
      if (plausibleEvent(e)) this.accept(e);
    }
    this.deliverEarly();
  }

  private async call<T>(request: ControlRequest, timeoutMs = CONTROL_TIMEOUT_MS): Promise<T> {
    if (!this.primaryServes) {
      // DPDK's rte_mp drops a request for an action the peer never registered, without a reply:
      // asking a C primary would only time out.
      throw new MpBusError(ErrorCodes.notReady, "the primary of this group is not an mpbus process, so nothing relays its interrupts: link state, port info and hotplug need an mpbus primary (see docs/interrupts.md)");
    }
    let replies: ControlReply[];
    try {
      replies = await this.bus.requestAll<ControlReply>(CONTROL_NAME, request, { timeoutMs });
    } catch (err) {
      if (err instanceof MpBusError && err.code === 'NO_HANDLER') {
        throw new MpBusError(ErrorCodes.notReady, 'the primary does not serve interrupts: it is not an mpbus primary, or it stopped serving (its runtime is closing)', { cause: err });
      }
      throw err;
    }
    const reply = replies[0];
    if (!isObject(reply) || typeof reply.ok !== 'boolean') throw new MpBusError(ErrorCodes.notReady, 'malformed reply from the primary');
    if (!reply.ok) throw new MpBusError(String(reply.code), `the primary says: ${String(reply.message)}`);
    return reply.value as T;
  }

  /**
   * Asks the primary to watch `spec` from the next turn of the event loop: a hold released
   * before then costs no request at all (subscribe/unsubscribe churn stays local).
   */
  hold(spec: WatchSpec): Hold {
    validateWatch(spec);
    const id = this.nextHoldId++;
    let state: 'waiting' | 'sent' | 'accepted' | 'released' = 'waiting';
    const sendRelease = (): void => {
      this.call({ op: 'release', id }).catch((err: unknown) => this.log.debug({ err, id }, 'release not delivered (the primary drops it when this process dies)'));
    };
    const ready = new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        if (state === 'released') {
          resolve();
          return;
        }
        state = 'sent';
        this.call({ op: 'watch', id, spec }).then(
          () => {
            if (state === 'released') sendRelease();
            else state = 'accepted';
            resolve();
          },
          (err: unknown) => {
            state = 'released';
            reject(err);
          },
        );
      });
    });
    const release: Release = () => {
      const was = state;
      state = 'released';
      if (was === 'accepted') sendRelease();
      // 'sent': the watch's answer sends the release; 'waiting': nothing was asked.
    };
    return { ready, release };
  }

  async linkSnapshot(port: number): Promise<LinkSnapshot> {
    validatePort(port);
    const snap = await this.call<{ link: LinkState; seq: number }>({ op: 'snapshot', port });
    return snap;
  }

  portInfo(port: number): Promise<PortInfo> {
    return this.call({ op: 'portInfo', port });
  }

  ports(): Promise<PortInfo[]> {
    return this.call({ op: 'ports' });
  }

  startPort(port: number, lsc: boolean): Promise<{ lscArmed: boolean }> {
    return this.call({ op: 'startPort', port, lsc });
  }

  async stopPort(port: number): Promise<void> {
    await this.call({ op: 'stopPort', port });
  }

  attach(devargs: string): Promise<{ device: string; portId?: number }> {
    return this.call({ op: 'attach', devargs }, HOTPLUG_TIMEOUT_MS);
  }

  detach(device: string): Promise<{ device: string; portId?: number }> {
    return this.call({ op: 'detach', device }, HOTPLUG_TIMEOUT_MS);
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.subscriptions.unsubscribe();
    this.subject.complete();
    this.lossSubject.complete();
  }
}
