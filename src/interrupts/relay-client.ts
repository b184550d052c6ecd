/**
 * A secondary's interrupts (see relay-protocol.ts): the events of the primary's broadcasts,
 * delivered in seq order (a gap is buffered past and filled by a replay; what the primary's
 * history lost is reported), and control requests for everything else.
 */
import { Subject, Subscription } from 'rxjs';
import type { Logger } from 'pino';
import { MpBusError, ErrorCodes } from '../errors.js';
import type { MpBus } from '../bus/index.js';
import { primaryClosing, type Hold, type InterruptBackend } from './backend.js';
import type { LinkSnapshot, Release } from './primary.js';
import {
  CONTROL_NAME,
  CONTROL_TIMEOUT_MS,
  EVENT_NAME,
  END_WAIT_MS,
  HISTORY_LIMIT,
  HOTPLUG_TIMEOUT_MS,
  REPLAY_RETRY_MS,
  isObject,
  plausibleEvent,
  type ControlReply,
  type ControlRequest,
  type RelayEndFile,
  type ReplayReply,
} from './relay-protocol.js';
import type { EventLoss, InterruptEvent, LinkState, PortInfo, WatchSpec } from './types.js';
import { validatePort, validateWatch } from './validate.js';

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
  /** The primary's last seq, from its `end` message (it closed). */
  private endSeq: number | undefined;
  /** How the primary went, once this process learnt it: nothing is asked of it any more. */
  private primaryWent: 'left' | 'died' | undefined;
  private primaryPid: number | undefined;
  private nextHoldId = 1;
  private readonly subscriptions = new Subscription();

  /** `primaryServes`: false under a primary that is not mpbus (a C program), which serves no relay: every call is `ENOTREADY` at once. */
  constructor(
    private readonly bus: MpBus,
    private readonly log: Logger,
    private readonly primaryServes = true,
    /** Where its primary recorded its last seq (read when the primary's `end` did not come). */
    private readonly endFile?: RelayEndFile,
  ) {
    this.subscriptions.add(
      bus.messages$<unknown>(EVENT_NAME).subscribe({
        next: (msg) => {
          if (msg.raw || msg.role !== 'primary' || !this.take(msg.value)) {
            this.log.warn({ senderPid: msg.pid, raw: msg.raw }, 'dropped a malformed interrupt event message');
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
      if (value.end === true) this.endSeq = latest;
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
    // (a primary that went answers nothing: what is missing is reported when this process closes)
    if (this.replaying || this.closed || this.retryTimer || this.primaryWent) return;
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
        if (this.closed || this.primaryWent) return;
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
    if (this.primaryGone) throw this.primaryGone;
    if (!this.primaryServes) {
      // DPDK's rte_mp drops a request for an action the peer never registered, without a reply:
      // asking a C primary would only time out.
      throw new MpBusError(
        ErrorCodes.notReady,
        'the primary of this group is not an mpbus process, so nothing relays its interrupts: link state, port info and hotplug need an mpbus primary (see docs/interrupts.md)',
      );
    }
    let replies: ControlReply[];
    try {
      replies = await this.bus.requestAll<ControlReply>(CONTROL_NAME, request, { timeoutMs });
    } catch (err) {
      if (err instanceof MpBusError && err.code === 'NO_HANDLER') {
        // An mpbus primary (primaryServes) no longer serving the relay has begun to close: the
        // code a process that is ending drops (Ctrl-C reaching the whole group printed this
        // failure's stack from a secondary whose subscription started just then).
        throw primaryClosing(err);
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
      this.call({ op: 'release', id }).catch((err: unknown) =>
        this.log.debug({ err, id }, 'release not delivered (the primary drops it when this process dies)'),
      );
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

  /** Set when the primary is gone: what every stream and call fails with from then on. */
  private primaryGone: MpBusError | undefined;

  /**
   * The primary is gone and the process lives on (`onPrimaryLost: 'ignore'`): nothing relays
   * interrupts any more, so the streams fail with PRIMARY_LOST, and so does every later call, at
   * once; a subscriber (`linkState$`, `alarm$`) would otherwise wait for an event that cannot come.
   */
  primaryLost(pid: number | undefined, reason: 'died' | 'left'): void {
    if (this.closed || this.primaryGone) return;
    this.primaryLeaving(reason, pid);
    this.primaryGone = new MpBusError(
      ErrorCodes.primaryLost,
      `the primary${pid === undefined ? '' : ` (pid ${pid})`} ${reason === 'died' ? 'died' : 'left the group'}: no process relays interrupts to this one any more; start a new group to watch them again`,
    );
    // calls fail at once; the streams once what the primary sent before it went is delivered (or reported lost)
    void this.settle().then(() => this.close());
  }

  /** The primary left or died (any `onPrimaryLost` policy): no replay is asked of it any more. */
  primaryLeaving(reason: 'left' | 'died', pid?: number): void {
    this.primaryWent ??= reason;
    this.primaryPid ??= pid;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /**
   * The primary went: delivers what already reached this process (its rte_mp inbox is read
   * between turns of the event loop) and, when the primary left, waits up to {@link END_WAIT_MS}
   * for its `end`; then reports on `lost$` every event it announced that never came. Before, the
   * runtime's close completed the stream at once: events already in the inbox were dropped, and
   * none of it was reported.
   */
  async settle(): Promise<void> {
    const until = performance.now() + END_WAIT_MS;
    do {
      await new Promise((resolve) => setImmediate(resolve));
      if (this.endSeq !== undefined && this.lastSeq >= this.endSeq) return;
    } while (this.primaryWent === 'left' && this.endSeq === undefined && performance.now() < until);
    // The end broadcast did not come (this process's socket was full when it was sent: stopped,
    // starved): the primary wrote it down too. Read only now, since the broadcasts before it may
    // still be on their way.
    if (this.endSeq === undefined && this.primaryWent === 'left' && this.primaryPid !== undefined && this.synced) {
      const recorded = this.endFile?.read(this.primaryPid);
      if (recorded !== undefined) {
        this.endSeq = recorded;
        this.knownLatest = Math.max(this.knownLatest, recorded);
      }
    }
    // a few more turns for what the end's batch carried (or, when the primary died, what it sent last)
    for (let turn = 0; turn < 3 && this.lastSeq < this.lastAnnounced(); turn++) await new Promise((resolve) => setImmediate(resolve));
    this.reportMissing();
  }

  /** The last seq this process knows the primary sent. */
  private lastAnnounced(): number {
    return Math.max(this.endSeq ?? 0, this.knownLatest);
  }

  /** Reports each run of announced events that never came, delivering those that came after it. */
  private reportMissing(): void {
    const last = this.lastAnnounced();
    while (this.synced && this.lastSeq < last) {
      let next = last + 1;
      for (const seq of this.early.keys()) if (seq > this.lastSeq && seq < next) next = seq;
      const loss: EventLoss = {
        from: this.lastSeq + 1,
        to: next - 1,
        reason: `the primary ${this.primaryWent === 'died' ? 'died' : 'left'} before this process received events ${this.lastSeq + 1}..${next - 1} (it did not read its rte_mp socket in time: busy, stopped or starved)`,
      };
      this.lastSeq = next - 1;
      this.log.warn(loss, 'interrupt events lost');
      this.lossSubject.next(loss);
      this.deliverEarly();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.subscriptions.unsubscribe();
    // (closed while it settled after its primary went, 'ignore': the streams still say why)
    if (this.primaryGone) this.subject.error(this.primaryGone);
    else this.subject.complete();
    this.lossSubject.complete();
  }
}
