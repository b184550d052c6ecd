/**
 * {@link MpBus}: DPDK's rte_mp IPC (messages, requests, replies, fds) as RxJS and promises.
 *
 * ```ts
 * const bus = MpBus.open();                       // after Runtime.start()
 * bus.handle('add', ({ a, b }) => a + b);          // in the primary
 * const [sum] = await bus.requestAll('add', { a: 1, b: 2 });   // in a secondary
 * bus.messages$('tick').subscribe((m) => console.log(m.pid, m.value));
 * ```
 *
 * What mpbus adds to plain rte_mp (see docs/ipc.md):
 * - Handlers run on the Node main thread; native code copies each message and its sender's
 *   socket path off DPDK's IPC thread and the reply is sent later with that saved path.
 * - Requests with values travel on "lanes": DPDK allows one pending request per (peer, name),
 *   so each process registers `lanes` internal action names and puts the handler name, a
 *   correlation id and a deadline in a small header. Many requests to one name run at once;
 *   more than `lanes` wait in a queue, never failing with EEXIST.
 * - A reply is only sent before the requester's deadline, a slot that timed out rests for
 *   `quarantineMs`, and every reply's correlation id is checked: a late reply never answers
 *   another request.
 * - Values too large for the 256-byte param travel in rte_malloc'd shared memory.
 */
import { closeSync, readdirSync } from 'node:fs';
import { Observable, Subject, Subscription, defer, from } from 'rxjs';
import { MpBusError } from '../errors.js';
import { logger } from '../log.js';
import { mpNative, type MpBinding, type NativeIncoming, type NativeMpEvent, type NativeReply, type NativeRequestDone, type NativeSendDone } from '../native/mp.js';
import { Runtime } from '../runtime/runtime.js';
import {
  EnvelopeKind,
  decodeValue,
  encodeValue,
  hasEnvelope,
  inlineCapacity,
  monotonicMs,
  readEnvelope,
  writeEnvelope,
  type Envelope,
  type EnvelopeHead,
  type LargeRef,
} from './envelope.js';
import { CorrelationIds, answers, completes, startWaiting, type Slot as RequestSlot, type SlotPool as RequestSlotPool } from './request-slots.js';
import {
  MpErrorCodes,
  MpReplyWith,
  type MpBusOptions,
  type MpHandler,
  type MpMessage,
  type MpMessageOptions,
  type MpReply,
  type MpRequestOptions,
  type MpRequestResult,
  type MpRole,
  type MpSendOptions,
} from './types.js';

/** Names starting with this are mpbus's own (lanes); user names may not use it. */
export const RESERVED_NAME_PREFIX = 'mpbus:';
const LANE_PREFIX = `${RESERVED_NAME_PREFIX}lane:`;
const DEFAULT_TIMEOUT_MS = 5000;
/** Extra wait, past a request's timeout, before mpbus stops waiting for DPDK's callback. */
const DPDK_CALLBACK_GRACE_MS = 2000;
/**
 * How long the primary's rte_mp socket waits for a secondary whose receive queue is full before
 * DPDK gives up on that one (EAGAIN) and goes on with the next. A healthy secondary's IPC
 * thread empties its queue within microseconds (it only copies each datagram into an inbox),
 * and even on a loaded 2-vCPU machine a runnable thread gets a CPU within a few milliseconds;
 * a queue that stays full for 100 ms belongs to a process that cannot run (SIGSTOP, a debugger)
 * or is dying. Short enough that such a peer costs the others little, long enough not to give up
 * on a merely busy one.
 */
export const PEER_SEND_TIMEOUT_MS = 100;
/**
 * The send timeout while a secondary is known not to read (a send failed and none has fully
 * succeeded since): every message would otherwise wait the full timeout for that peer, delaying
 * the others by as much. 10 ms still lets a healthy but descheduled IPC thread run (a scheduler
 * period on a loaded machine); a healthy peer that misses a message anyway is no worse off than
 * the stuck one (the interrupt relay replays). Back to {@link PEER_SEND_TIMEOUT_MS} on the first
 * message that reaches every secondary.
 */
export const STUCK_PEER_SEND_TIMEOUT_MS = 10;

interface Registration {
  name: string;
  handler?: MpHandler<any, any>;
  subject: Subject<MpMessage<any>>;
  listeners: number;
}

type Slot = RequestSlot<PendingRequest>;
type SlotPool = RequestSlotPool<PendingRequest>;

interface PendingRequest {
  id: number;
  target: string;
  raw: boolean;
  body: Uint8Array | LargeRef;
  targetBytes?: Buffer;
  fds: number[] | undefined;
  timeoutMs: number;
  deadlineMs: number;
  sync: boolean;
  resolve(result: MpRequestResult<any>): void;
  reject(err: unknown): void;
  safetyTimer?: NodeJS.Timeout;
  /** Primary: DPDK could not send it to some secondary (EAGAIN at the send timeout). */
  unreached?: boolean;
}

let current: MpBus | undefined;

export class MpBus {
  /** This process's role in the group. */
  readonly role: MpRole;
  readonly pid = process.pid;

  private readonly native: MpBinding;
  private readonly limits: MpBinding['mpLimits'];
  private readonly log;
  private readonly registrations = new Map<string, Registration>();
  private readonly slotsByName = new Map<string, Slot>();
  private readonly lanePool: SlotPool = { slots: [], waiting: [] };
  private readonly rawPools = new Map<string, SlotPool>();
  private readonly outstandingLarge = new Map<LargeRef, NodeJS.Timeout>();
  private readonly errorSubject = new Subject<MpBusError>();
  private options: Required<MpBusOptions>;
  /** Opened by mpbus itself with the default options: the app's first open may set others. */
  private implicit = false;
  private readonly correlationIds = new CorrelationIds();
  private secondariesSeenUntil = 0;
  /** UTF-8 bytes of handler names, put in every lane request's header. */
  private readonly nameBytes = new Map<string, Buffer>();
  private closing: Promise<void> | undefined;
  private readonly removeCloseHook: () => void;
  /** Primary: `onSent` callbacks of queued messages, by ticket. */
  private readonly sendCallbacks = new Map<number, (error?: MpBusError) => void>();
  /** Primary: a send failed (some secondary does not read) and none fully succeeded since. */
  private peerStuck = false;

  /** Problems that belong to no call: malformed or foreign messages, late replies, failed replies. */
  readonly errors$: Observable<MpBusError> = this.errorSubject.asObservable();

  private constructor(private readonly runtime: Runtime, options: MpBusOptions) {
    this.options = resolveBusOptions(options);
    this.native = mpNative();
    this.limits = this.native.mpLimits;
    this.role = runtime.processType;
    this.log = logger('bus:mp', { role: this.role });
    this.native.mpOpen((events) => this.drain(events));
    if (this.role === 'primary' && this.native.mpBoundSendTimeout(PEER_SEND_TIMEOUT_MS) < 0) {
      this.log.warn("DPDK's rte_mp socket was not found: a secondary that stops reading can block the primary's sends");
    }
    this.native.mpSetSpin(this.options.spinMaxUs > 0 ? this.options.spinWindowUs : 0, this.options.spinMaxUs);
    const registered: string[] = [];
    try {
      for (let i = 0; i < this.options.lanes; i++) {
        const name = `${LANE_PREFIX}${i}`;
        this.native.mpRegister(name);
        registered.push(name);
        const slot: Slot = { name, lane: true, pool: this.lanePool, quarantinedUntil: 0 };
        this.lanePool.slots.push(slot);
        this.slotsByName.set(name, slot);
      }
    } catch (err) {
      for (const name of registered) this.native.mpUnregister(name);
      this.native.mpClose();
      throw err;
    }
    this.removeCloseHook = runtime.onClose(() => this.close());
  }

  /**
   * The rte_mp bus of this process (one per process: DPDK's actions are per process). Opens it
   * on first call; later calls return the same bus and ignore `options`, except the first call
   * with options after mpbus opened the bus by itself (a primary's, at `Runtime.start`, to
   * serve interrupts): those options then apply.
   *
   * @throws {MpBusError} `ENOTREADY` when no runtime is started, `CLOSED` when it is closed.
   */
  static open(options: MpBusOptions & { runtime?: Runtime; /** @internal opened by mpbus, not the app */ implicit?: boolean } = {}): MpBus {
    const runtime = options.runtime ?? Runtime.current();
    if (!runtime) throw new MpBusError('ENOTREADY', 'start a Runtime (Runtime.start) before opening the bus');
    runtime.assertOpen();
    const { runtime: _runtime, implicit, ...busOptions } = options;
    if (current && !current.closed && current.runtime === runtime) {
      if (current.implicit && !implicit) {
        current.implicit = false;
        if (Object.values(busOptions).some((v) => v !== undefined)) current.configure(busOptions);
      }
      return current;
    }
    current = new MpBus(runtime, busOptions);
    current.implicit = implicit === true;
    return current;
  }

  /** Applies options to a bus mpbus opened with the defaults (see {@link open}). */
  private configure(options: MpBusOptions): void {
    const resolved = resolveBusOptions(options);
    // More lanes: register them. Fewer: stop using the extra ones (they stay registered, so a
    // peer that still uses them is answered).
    for (let i = this.lanePool.slots.length; i < resolved.lanes; i++) {
      const name = `${LANE_PREFIX}${i}`;
      if (!this.slotsByName.has(name)) {
        this.native.mpRegister(name);
        this.slotsByName.set(name, { name, lane: true, pool: this.lanePool, quarantinedUntil: 0 });
      }
      this.lanePool.slots.push(this.slotsByName.get(name)!);
    }
    this.lanePool.slots.length = Math.min(this.lanePool.slots.length, resolved.lanes);
    this.options = resolved;
    this.native.mpSetSpin(resolved.spinMaxUs > 0 ? resolved.spinWindowUs : 0, resolved.spinMaxUs);
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  // ---- receiving ------------------------------------------------------------------------

  /**
   * Hot stream of messages arriving on `name` (from `send`, `broadcast`, or a C program's
   * rte_mp_sendmsg). Subscribing registers the rte_mp action; unsubscribing the last subscriber
   * unregisters it. Messages that arrive while nobody subscribes are dropped (their fds closed).
   * A subscriber owns the fds of the messages it receives.
   */
  messages$<T = unknown>(name: string): Observable<MpMessage<T>> {
    return new Observable<MpMessage<T>>((subscriber) => {
      this.assertOpen();
      this.checkName(name);
      const reg = this.acquire(name);
      reg.listeners += 1;
      const inner = reg.subject.subscribe(subscriber);
      return () => {
        inner.unsubscribe();
        reg.listeners -= 1;
        this.releaseRegistration(reg);
      };
    });
  }

  /**
   * Answers requests to `name`: the handler's return value (or promise) is the reply, a throw is
   * an error reply. One handler per name per process. Raw requests (from C programs) give the
   * handler the param's bytes; it replies with a Uint8Array of at most 256 bytes (or undefined:
   * no reply). Unsubscribe to unregister.
   *
   * @throws {MpBusError} `EEXIST` if this process already handles `name`, `INVALID_NAME`.
   */
  handle<T = unknown, R = unknown>(name: string, handler: MpHandler<T, R>): Subscription {
    this.assertOpen();
    this.checkName(name);
    if (typeof handler !== 'function') throw new MpBusError(MpErrorCodes.invalidOption, 'handle(name, handler): handler must be a function');
    if (this.registrations.get(name)?.handler) {
      throw new MpBusError('EEXIST', `this process already handles '${name}': unsubscribe the first handler before registering another`);
    }
    const reg = this.acquire(name);
    reg.handler = handler;
    return new Subscription(() => {
      if (reg.handler !== handler) return;
      reg.handler = undefined;
      this.releaseRegistration(reg);
    });
  }

  // ---- sending --------------------------------------------------------------------------

  /**
   * Fire-and-forget (`rte_mp_sendmsg`): from a secondary to the primary, from the primary to
   * every secondary. With `{ raw: true }` the value is a Uint8Array (≤ 256 bytes) sent as the
   * whole param, for C peers.
   *
   * In the primary the message is queued for mpbus's sender thread, which sends in order: a
   * secondary that does not read (stopped, starved) never blocks the caller, and costs the
   * others at most {@link PEER_SEND_TIMEOUT_MS} per message. `onSent` tells the outcome; a
   * failure without `onSent` goes to `errors$` as `SEND_FAILED`. Fds are duplicated at once:
   * the caller may close its own on return.
   */
  send(name: string, value: unknown, options: MpMessageOptions = {}): void {
    this.assertOpen();
    this.checkName(name);
    const fds = this.checkFds(options.fds);
    const onSent = options.onSent;
    if (onSent !== undefined && typeof onSent !== 'function') throw new MpBusError(MpErrorCodes.invalidOption, 'onSent must be a function');
    if (options.raw) {
      this.sendParam(name, this.checkRaw(value), fds, onSent);
      return;
    }
    const body = this.encodeBody(encodeValue(value));
    const param = this.envelope({ kind: EnvelopeKind.message, correlationId: 0, deadlineMs: 0 }, body);
    try {
      this.sendParam(name, param, fds, onSent);
    } catch (err) {
      if (!(body instanceof Uint8Array)) this.releaseLarge(body);
      throw err;
    }
    // Receivers read a broadcast value until the TTL, whether or not it reached every peer.
    if (!(body instanceof Uint8Array)) this.releaseLargeLater(body);
  }

  /** {@link send} from the primary, which DPDK delivers to every secondary. */
  broadcast(name: string, value: unknown, options: MpMessageOptions = {}): void {
    if (this.role !== 'primary') {
      throw new MpBusError(MpErrorCodes.invalidOption, `only the primary broadcasts: a secondary's message goes to the primary alone (use send('${name}', ...))`);
    }
    this.send(name, value, options);
  }

  /** Messages sent by the primary's sender thread and not yet returned from `rte_mp_sendmsg`. */
  get pendingSends(): number {
    if (this.role !== 'primary') return 0;
    const { queued, done } = this.native.mpSendStats();
    return queued - done;
  }

  private sendParam(name: string, param: Uint8Array, fds: number[] | undefined, onSent: ((error?: MpBusError) => void) | undefined): void {
    if (this.role === 'primary') {
      const ticket = this.native.mpSendQueued(name, param, fds, onSent !== undefined);
      if (onSent) this.sendCallbacks.set(ticket, onSent);
      return;
    }
    // A secondary sends to the primary alone, on the JS thread: nothing to queue behind.
    this.native.mpSend(name, param, fds);
    if (onSent) queueMicrotask(() => this.callOnSent(onSent, undefined));
  }

  private onSendDone(ev: NativeSendDone): void {
    const stuck = ev.code !== undefined && ev.code !== 'ECANCELED';
    if (stuck !== this.peerStuck && !this.closed) {
      this.peerStuck = stuck;
      this.native.mpBoundSendTimeout(stuck ? STUCK_PEER_SEND_TIMEOUT_MS : PEER_SEND_TIMEOUT_MS);
    }
    const onSent = this.sendCallbacks.get(ev.ticket);
    this.sendCallbacks.delete(ev.ticket);
    const error =
      ev.code === undefined
        ? undefined
        : new MpBusError(
            ev.code === 'ECANCELED' ? MpErrorCodes.closed : MpErrorCodes.sendFailed,
            ev.code === 'ECANCELED'
              ? `'${ev.name}' was not sent: the bus closed while a secondary was not reading`
              : `'${ev.name}' did not reach every secondary: ${ev.message ?? ev.code} (a secondary whose socket stayed full past the send timeout: stopped or starved)`,
            { errno: ev.errno },
          );
    if (onSent) this.callOnSent(onSent, error);
    else if (error) this.report(error);
  }

  private callOnSent(onSent: (error?: MpBusError) => void, error: MpBusError | undefined): void {
    try {
      onSent(error);
    } catch (err) {
      this.report(err);
    }
  }

  /**
   * Request (`rte_mp_request_async`, or `_sync` with `mode: 'sync'`): from a secondary to the
   * primary, from the primary to every secondary. Resolves when every peer replied or at the
   * timeout, with DPDK's counts and the replies: a partial result is a result (see
   * {@link requestAll} for "all replied or fail"). Rejects only for bad arguments, DPDK
   * failures and close().
   */
  request<T = unknown>(name: string, value: unknown, options: MpRequestOptions = {}): Promise<MpRequestResult<T>> {
    try {
      return this.startRequest<T>(name, value, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** {@link request} as an observable: one result, then complete. Subscribing sends it. */
  request$<T = unknown>(name: string, value: unknown, options: MpRequestOptions = {}): Observable<MpRequestResult<T>> {
    return defer(() => from(this.request<T>(name, value, options)));
  }

  /**
   * "All replied or fail": resolves with the reply values, or rejects with `NO_PEER` (nobody to
   * ask), `NO_HANDLER` (no peer handles `name`), `REMOTE_ERROR` (a handler threw) or `ETIMEDOUT`
   * (not every peer replied). Fds that came with replies are closed: use {@link request} for fds.
   */
  async requestAll<T = unknown>(name: string, value: unknown, options: MpRequestOptions = {}): Promise<T[]> {
    const result = await this.request<T>(name, value, options);
    for (const reply of result.replies) closeFds(reply.fds);
    if (result.sent === 0) {
      throw new MpBusError(MpErrorCodes.noPeer, `no process to ask for '${name}': ${this.role === 'primary' ? 'no secondary is running' : 'the primary is gone'}`);
    }
    const failed = result.replies.find((r) => !r.ok && r.error?.code !== MpErrorCodes.noHandler) ?? result.replies.find((r) => !r.ok);
    if (failed?.error) throw failed.error;
    if (result.unreached) {
      throw new MpBusError(MpErrorCodes.sendFailed, `'${name}' did not reach every secondary: one did not read its socket within the send timeout (stopped or starved); ${result.received} of the ${result.sent} reached replied`);
    }
    if (!result.complete) {
      throw new MpBusError(MpErrorCodes.timeout, `'${name}': ${result.received} of ${result.sent} peers replied within ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`);
    }
    return result.replies.map((r) => r.value as T);
  }

  /**
   * Unregisters every action, settles requests in flight or queued (rejected with `CLOSED`),
   * completes the message streams. Runs by itself when the runtime closes. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= Promise.resolve().then(() => this.shutdown());
    return this.closing;
  }

  // ---- internals: requests --------------------------------------------------------------

  private startRequest<T>(name: string, value: unknown, options: MpRequestOptions): Promise<MpRequestResult<T>> {
    this.assertOpen();
    this.checkName(name);
    const fds = this.checkFds(options.fds);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > 3_600_000) {
      throw new MpBusError(MpErrorCodes.invalidOption, `timeoutMs must be a number of milliseconds in (0, 3600000], got ${String(timeoutMs)}`);
    }
    if (options.mode !== undefined && options.mode !== 'async' && options.mode !== 'sync') {
      throw new MpBusError(MpErrorCodes.invalidOption, `mode must be 'async' or 'sync', got ${String(options.mode)}`);
    }
    const raw = options.raw === true;
    let body: Uint8Array | LargeRef;
    let targetBytes: Buffer | undefined;
    if (raw) {
      body = this.checkRaw(value);
    } else {
      targetBytes = this.nameBytes.get(name);
      if (!targetBytes) {
        targetBytes = Buffer.from(name, 'utf8');
        if (this.nameBytes.size < 4096) this.nameBytes.set(name, targetBytes);
      }
      body = this.encodeBody(encodeValue(value), targetBytes);
    }
    return new Promise<MpRequestResult<T>>((resolve, reject) => {
      const req: PendingRequest = {
        id: this.correlationIds.take(),
        target: name,
        raw,
        body,
        targetBytes,
        fds,
        timeoutMs,
        deadlineMs: monotonicMs() + timeoutMs,
        sync: options.mode === 'sync',
        resolve,
        reject,
      };
      const pool = raw ? this.rawPool(name) : this.lanePool;
      pool.waiting.push(req);
      this.pump(pool);
    });
  }

  /**
   * True if a secondary's rte_mp socket exists (DPDK's own test for whom to send to). A "yes" is
   * trusted for a second (should they all leave meanwhile, the safety timer settles the request);
   * a "no" is checked again each time, so a new secondary is never missed.
   */
  private anySecondary(): boolean {
    const now = monotonicMs();
    if (now < this.secondariesSeenUntil) return true;
    try {
      if (!readdirSync(this.runtime.group.runtimeDir).some((f) => f.startsWith('mp_socket_'))) return false;
    } catch {
      return false;
    }
    this.secondariesSeenUntil = now + 1000;
    return true;
  }

  private rawPool(name: string): SlotPool {
    let pool = this.rawPools.get(name);
    if (!pool) {
      pool = { slots: [], waiting: [] };
      const slot: Slot = { name, lane: false, pool, quarantinedUntil: 0 };
      pool.slots.push(slot);
      this.rawPools.set(name, pool);
      this.slotsByName.set(name, slot);
    }
    return pool;
  }

  /** Starts queued requests on free slots; re-arms itself for slots resting after a timeout. */
  private pump(pool: SlotPool): void {
    if (this.closed) return;
    const now = monotonicMs();
    const nextWake = startWaiting(pool, now, this.launchOnSlot, this.expireWaiting);
    if (pool.wakeTimer) clearTimeout(pool.wakeTimer);
    pool.wakeTimer = undefined;
    if (nextWake !== Infinity) {
      pool.wakeTimer = setTimeout(() => this.pump(pool), Math.max(1, nextWake - now));
    }
  }

  private readonly launchOnSlot = (slot: Slot, req: PendingRequest, now: number): void => this.launch(slot, req, now);

  private readonly expireWaiting = (req: PendingRequest, queued: number): void => {
    this.dropLarge(req);
    req.reject(new MpBusError(MpErrorCodes.timeout, `'${req.target}': no request slot came free within ${req.timeoutMs} ms (${queued} requests queued)`));
  };

  private launch(slot: Slot, req: PendingRequest, now: number): void {
    if (this.role === 'primary' && !this.anySecondary()) {
      // DPDK 22.11 never calls an async request back when it reached nobody: answer here.
      slot.busy = req;
      queueMicrotask(() => this.complete(slot, req, 0, [], false));
      return;
    }
    const remainingMs = Math.max(1, req.deadlineMs - now);
    const param = req.raw
      ? (req.body as Uint8Array)
      : this.envelope({ kind: EnvelopeKind.request, correlationId: req.id, deadlineMs: req.deadlineMs, target: req.targetBytes }, req.body);
    slot.busy = req;
    try {
      if (req.sync) {
        this.native.mpRequestSync(slot.name, param, req.fds, remainingMs).then(
          (r) => this.complete(slot, req, r.sent, r.replies, r.timedOut || r.received < r.sent),
          (err: unknown) => this.fail(slot, req, err),
        );
      } else {
        this.native.mpRequestAsync(slot.name, param, req.fds, remainingMs);
      }
    } catch (err) {
      // A primary's request that missed a secondary whose socket stayed full went to the others
      // all the same, and DPDK completes it for them: freeing the slot now would make the next
      // request on it fail with EEXIST for those peers. Wait for DPDK (or the safety timer).
      if (!(this.role === 'primary' && !req.sync && err instanceof MpBusError && err.code === 'EAGAIN')) {
        this.fail(slot, req, err);
        return;
      }
      req.unreached = true;
    }
    // DPDK calls back at the timeout at the latest; this only guards against a callback that
    // never comes (e.g. a request that reached nobody), so no request can hang forever. It is
    // also what keeps the process alive while a request is in flight (DPDK's wake-up is unref'd).
    req.safetyTimer = setTimeout(() => {
      if (slot.busy !== req) return;
      this.report(new MpBusError(MpErrorCodes.timeout, `DPDK never completed request '${req.target}' (slot ${slot.name}); settled by mpbus`));
      this.complete(slot, req, 0, [], true);
    }, remainingMs + DPDK_CALLBACK_GRACE_MS);
  }

  private onRequestDone(ev: NativeRequestDone): void {
    const slot = this.slotsByName.get(ev.name);
    const req = slot?.busy;
    // A lane's completion names its request by correlation id; anything else is stale.
    const stale = !slot || !req || !completes(slot, req, ev.requestParam);
    if (stale) {
      for (const r of ev.replies) closeFds(r.fds);
      return;
    }
    this.complete(slot, req, ev.sent, ev.replies, ev.received < ev.sent);
  }

  private finishSlot(slot: Slot, req: PendingRequest, timedOut: boolean, replied = false): void {
    if (req.safetyTimer) clearTimeout(req.safetyTimer);
    slot.busy = undefined;
    // A slot that timed out rests, so the late reply DPDK may still deliver finds no request.
    if (timedOut) slot.quarantinedUntil = monotonicMs() + this.options.quarantineMs;
    // The primary, sole receiver of a secondary's request, took and freed a large value before
    // answering: only an unanswered one is still ours to free.
    if (!(replied && this.role === 'secondary')) this.dropLarge(req);
    queueMicrotask(() => this.pump(slot.pool));
  }

  private complete(slot: Slot, req: PendingRequest, sent: number, nativeReplies: NativeReply[], timedOut: boolean): void {
    if (slot.busy !== req) {
      for (const r of nativeReplies) closeFds(r.fds);
      return;
    }
    this.finishSlot(slot, req, timedOut, nativeReplies.length > 0);
    const replies: MpReply[] = [];
    for (const r of nativeReplies) {
      const reply = req.raw ? { ok: true, raw: true, value: r.param, fds: r.fds } : this.readReply(req, r);
      if (reply) replies.push(reply);
    }
    const result: MpRequestResult<any> = { sent, received: replies.length, complete: !timedOut && !req.unreached && replies.length === sent, replies };
    req.resolve(req.unreached ? { ...result, unreached: true } : result);
  }

  private fail(slot: Slot, req: PendingRequest, err: unknown): void {
    if (slot.busy !== req) return;
    this.finishSlot(slot, req, false);
    req.reject(err);
  }

  /** Reads one reply to a lane request; undefined (and reported) if it answers another request. */
  private readReply(req: PendingRequest, r: NativeReply): MpReply | undefined {
    let env: Envelope;
    try {
      if (!hasEnvelope(r.param)) throw new MpBusError(MpErrorCodes.malformed, `a reply to '${req.target}' has no mpbus header`);
      env = readEnvelope(r.param);
    } catch (err) {
      closeFds(r.fds);
      this.report(err);
      return undefined;
    }
    if (!answers(env, req.id)) {
      closeFds(r.fds);
      this.report(new MpBusError(MpErrorCodes.lateReply, `dropped a reply from pid ${env.pid} that answers another request (id ${env.correlationId}, expected ${req.id} for '${req.target}')`));
      return undefined;
    }
    const from = { raw: false, pid: env.pid, role: env.role, fds: r.fds };
    if (env.kind === EnvelopeKind.noHandler) {
      return { ok: false, ...from, error: new MpBusError(MpErrorCodes.noHandler, `pid ${env.pid} (${env.role}) has no handler for '${req.target}'`) };
    }
    let value: unknown;
    try {
      value = this.openValue(env, true);
    } catch (err) {
      return { ok: false, ...from, error: err as MpBusError };
    }
    if (env.kind === EnvelopeKind.errorReply) {
      const remote = (value ?? {}) as { code?: unknown; message?: unknown };
      const error = new MpBusError(MpErrorCodes.remoteError, `the handler of '${req.target}' in pid ${env.pid} (${env.role}) failed: ${String(remote.message)}`);
      (error as MpBusError & { remoteCode?: string }).remoteCode = typeof remote.code === 'string' ? remote.code : undefined;
      return { ok: false, ...from, error };
    }
    return { ok: true, ...from, value };
  }

  // ---- internals: incoming ----------------------------------------------------------------

  /** Everything DPDK delivered since the last wake-up, in order. Never throws (runs from native). */
  private drain(events: NativeMpEvent[]): void {
    for (const ev of events) {
      try {
        if (ev.kind === 'sendDone') {
          this.onSendDone(ev);
        } else if (this.closed) {
          closeFds(ev.kind === 'incoming' ? ev.fds : ev.replies.flatMap((r) => r.fds));
        } else if (ev.kind === 'requestDone') {
          this.onRequestDone(ev);
        } else if (ev.name.startsWith(LANE_PREFIX)) {
          this.onLaneRequest(ev);
        } else {
          this.onDirect(ev);
        }
      } catch (err) {
        this.report(err);
      }
    }
  }

  /** A message or raw request on a user-registered name. */
  private onDirect(ev: NativeIncoming): void {
    const reg = this.registrations.get(ev.name);
    if (!reg) {
      closeFds(ev.fds);
      return;
    }
    if (!hasEnvelope(ev.param)) {
      // Raw bytes (a C peer): DPDK does not say whether it is a message or a request, so
      // subscribers see it, and a handler may answer it.
      const msg: MpMessage<Buffer> = { name: ev.name, value: ev.param, raw: true, fds: ev.fds };
      if (reg.listeners > 0) reg.subject.next(msg);
      if (reg.handler) this.invoke(reg.handler, msg, (outcome) => this.replyRaw(ev, outcome));
      if (reg.listeners === 0 && !reg.handler) closeFds(ev.fds);
      return;
    }
    let env: Envelope;
    try {
      env = readEnvelope(ev.param);
      if (env.kind !== EnvelopeKind.message) throw new MpBusError(MpErrorCodes.malformed, `malformed mpbus message: kind ${env.kind} on a message name`);
    } catch (err) {
      closeFds(ev.fds);
      this.report(err, ev.name);
      return;
    }
    if (reg.listeners === 0) {
      closeFds(ev.fds);
      if (env.large && env.role === 'secondary') this.native.mpLargeTake(env.large.address, env.large.length, env.large.token, true);
      return;
    }
    let value: unknown;
    try {
      value = this.openValue(env, env.role === 'secondary');
    } catch (err) {
      closeFds(ev.fds);
      this.report(err, ev.name);
      return;
    }
    reg.subject.next({ name: ev.name, value, raw: false, pid: env.pid, role: env.role, fds: ev.fds });
  }

  /** A request from an mpbus peer on one of the lanes: dispatch by the handler name inside. */
  private onLaneRequest(ev: NativeIncoming): void {
    let env: Envelope;
    try {
      if (!hasEnvelope(ev.param)) throw new MpBusError(MpErrorCodes.malformed, `a message without mpbus header on the internal name '${ev.name}'`);
      env = readEnvelope(ev.param);
      if (env.kind !== EnvelopeKind.request || env.target === '') throw new MpBusError(MpErrorCodes.malformed, `malformed mpbus request: kind ${env.kind}, name '${env.target}'`);
    } catch (err) {
      closeFds(ev.fds);
      this.report(err, ev.name);
      return;
    }
    const exclusive = env.role === 'secondary';
    const handler = this.registrations.get(env.target)?.handler;
    if (!handler) {
      closeFds(ev.fds);
      if (env.large && exclusive) this.native.mpLargeTake(env.large.address, env.large.length, env.large.token, true);
      this.replyLane(ev, env, { kind: EnvelopeKind.noHandler, value: undefined });
      return;
    }
    let value: unknown;
    try {
      value = this.openValue(env, exclusive);
    } catch (err) {
      closeFds(ev.fds);
      this.replyLane(ev, env, { kind: EnvelopeKind.errorReply, value: errorPayload(err) });
      return;
    }
    const msg: MpMessage = { name: env.target, value, raw: false, pid: env.pid, role: env.role, fds: ev.fds };
    this.invoke(handler, msg, (outcome) => this.replyLane(ev, env, outcome));
  }

  /** Runs a handler; a synchronous result is answered without a microtask hop. */
  private invoke(handler: MpHandler<any, any>, msg: MpMessage, answer: (o: Outcome) => void): void {
    let result: unknown;
    try {
      result = handler(msg.value, msg);
    } catch (err) {
      answer({ kind: EnvelopeKind.errorReply, value: errorPayload(err) });
      return;
    }
    if (isThenable(result)) {
      result.then(
        (v) => answer(toOutcome(v)),
        (err: unknown) => answer({ kind: EnvelopeKind.errorReply, value: errorPayload(err) }),
      );
    } else {
      answer(toOutcome(result));
    }
  }

  private replyLane(ev: NativeIncoming, req: Envelope, outcome: Outcome): void {
    if (this.closed) return;
    // Past the requester's deadline its slot may carry another request: answering now would
    // answer that one. Drop it instead.
    if (monotonicMs() >= req.deadlineMs) {
      this.report(new MpBusError(MpErrorCodes.lateReply, `dropped the reply to '${req.target}' from pid ${req.pid}: its requester stopped waiting ${Math.round(monotonicMs() - req.deadlineMs)} ms ago`));
      return;
    }
    let encoded: Buffer;
    let { kind } = outcome;
    try {
      encoded = encodeValue(outcome.value);
    } catch (err) {
      kind = EnvelopeKind.errorReply;
      encoded = encodeValue(errorPayload(err));
    }
    let fds: number[] | undefined;
    try {
      fds = this.checkFds(outcome.fds);
    } catch (err) {
      kind = EnvelopeKind.errorReply;
      encoded = encodeValue(errorPayload(err));
    }
    let body: Uint8Array | LargeRef;
    try {
      body = this.encodeBody(encoded);
    } catch (err) {
      kind = EnvelopeKind.errorReply;
      body = encodeValue(errorPayload(err));
      fds = undefined;
    }
    const param = this.envelope({ kind, correlationId: req.correlationId, deadlineMs: 0 }, body);
    try {
      this.native.mpReply(ev.name, param, fds, ev.peer);
      if (!(body instanceof Uint8Array)) this.releaseLargeLater(body);
    } catch (err) {
      if (!(body instanceof Uint8Array)) this.releaseLarge(body);
      this.report(new MpBusError(MpErrorCodes.replyFailed, `could not reply to '${req.target}' (pid ${req.pid}): ${(err as Error).message}`, { cause: err }));
    }
  }

  private replyRaw(ev: NativeIncoming, outcome: Outcome): void {
    if (this.closed) return;
    if (outcome.kind === EnvelopeKind.errorReply) {
      const remote = outcome.value as { message?: string };
      this.report(new MpBusError(MpErrorCodes.replyFailed, `the handler of '${ev.name}' failed on a raw request, which cannot carry an error reply: ${String(remote.message)}`));
      return;
    }
    if (outcome.value === undefined) return; // a raw message, or the handler chose not to reply
    try {
      this.native.mpReply(ev.name, this.checkRaw(outcome.value), this.checkFds(outcome.fds), ev.peer);
    } catch (err) {
      this.report(new MpBusError(MpErrorCodes.replyFailed, `could not reply to the raw request '${ev.name}': ${(err as Error).message}`, { cause: err }));
    }
  }

  /** The value an envelope carries; large values are copied out of shared memory (and freed when `exclusive`). */
  private openValue(env: Envelope, exclusive: boolean): unknown {
    let bytes: Uint8Array | undefined = env.inline;
    if (env.large) {
      const taken = this.native.mpLargeTake(env.large.address, env.large.length, env.large.token, exclusive);
      if (!taken) {
        throw new MpBusError(MpErrorCodes.payloadGone, `the ${env.large.length}-byte value sent by pid ${env.pid} is no longer in shared memory (expired or not an mpbus buffer)`);
      }
      bytes = taken;
    }
    try {
      return decodeValue(bytes!);
    } catch (err) {
      throw new MpBusError(MpErrorCodes.malformed, `malformed mpbus message from pid ${env.pid}: undecodable value (${(err as Error).message})`, { cause: err });
    }
  }

  // ---- internals: registrations, encoding, checks -----------------------------------------

  private acquire(name: string): Registration {
    let reg = this.registrations.get(name);
    if (!reg) {
      this.native.mpRegister(name);
      reg = { name, subject: new Subject(), listeners: 0 };
      this.registrations.set(name, reg);
    }
    return reg;
  }

  private releaseRegistration(reg: Registration): void {
    if (reg.handler || reg.listeners > 0 || this.registrations.get(reg.name) !== reg) return;
    this.registrations.delete(reg.name);
    if (!this.closed) this.native.mpUnregister(reg.name);
  }

  private envelope(head: Omit<EnvelopeHead, 'role' | 'pid'>, body: Uint8Array | LargeRef): Buffer {
    return writeEnvelope({ ...head, role: this.role, pid: this.pid }, body);
  }

  /** Inline if it fits in the param, else a shared-memory buffer. */
  private encodeBody(encoded: Buffer, target?: Buffer): Uint8Array | LargeRef {
    if (encoded.length <= inlineCapacity(this.limits.maxParamBytes, target)) return encoded;
    if (encoded.length > this.options.maxPayloadBytes) {
      throw new MpBusError(MpErrorCodes.payloadTooLarge, `the encoded value is ${encoded.length} bytes, over maxPayloadBytes (${this.options.maxPayloadBytes})`);
    }
    const { address, token } = this.native.mpLargeAlloc(encoded);
    return { address, token, length: encoded.length };
  }

  private releaseLarge(ref: LargeRef): void {
    const timer = this.outstandingLarge.get(ref);
    if (timer) clearTimeout(timer);
    this.outstandingLarge.delete(ref);
    this.native.mpLargeRelease(ref.address, ref.length, ref.token);
  }

  /** Keeps a sent buffer for receivers until the TTL (a unicast receiver frees it earlier). */
  private releaseLargeLater(ref: LargeRef): void {
    const timer = setTimeout(() => this.releaseLarge(ref), this.options.largePayloadTtlMs);
    timer.unref();
    this.outstandingLarge.set(ref, timer);
  }

  private dropLarge(req: PendingRequest): void {
    if (!(req.body instanceof Uint8Array)) this.releaseLarge(req.body);
  }

  private checkName(name: string): void {
    if (typeof name !== 'string' || name.length === 0) {
      throw new MpBusError(MpErrorCodes.invalidName, `an rte_mp name is a non-empty string, got ${JSON.stringify(name)}`);
    }
    const bytes = Buffer.byteLength(name, 'utf8');
    if (bytes > this.limits.maxNameBytes) {
      throw new MpBusError(MpErrorCodes.invalidName, `rte_mp name '${name}' is ${bytes} bytes; DPDK allows at most ${this.limits.maxNameBytes} (RTE_MP_MAX_NAME_LEN - 1)`);
    }
    if (name.includes('\0')) throw new MpBusError(MpErrorCodes.invalidName, 'an rte_mp name cannot contain NUL');
    if (name.startsWith(RESERVED_NAME_PREFIX)) {
      throw new MpBusError(MpErrorCodes.invalidName, `names starting with '${RESERVED_NAME_PREFIX}' are mpbus's own: choose another name than '${name}'`);
    }
  }

  private checkFds(fds: unknown): number[] | undefined {
    if (fds === undefined) return undefined;
    if (!Array.isArray(fds) || fds.some((fd) => !Number.isInteger(fd) || (fd as number) < 0 || (fd as number) > 0x7fffffff)) {
      throw new MpBusError(MpErrorCodes.invalidFds, 'fds must be an array of open file descriptors (non-negative integers)');
    }
    if (fds.length > this.limits.maxFds) {
      throw new MpBusError(MpErrorCodes.invalidFds, `${fds.length} fds: rte_mp carries at most ${this.limits.maxFds} (RTE_MP_MAX_FD_NUM)`);
    }
    return fds as number[];
  }

  private checkRaw(value: unknown): Uint8Array {
    if (!(value instanceof Uint8Array)) {
      throw new MpBusError(MpErrorCodes.invalidOption, 'a raw payload is a Uint8Array (or Buffer) of at most 256 bytes');
    }
    if (value.length > this.limits.maxParamBytes) {
      throw new MpBusError(MpErrorCodes.payloadTooLarge, `raw payload of ${value.length} bytes: rte_mp's param holds at most ${this.limits.maxParamBytes} (RTE_MP_MAX_PARAM_LEN); send an encoded value instead, which mpbus moves through shared memory`);
    }
    return value;
  }

  private assertOpen(): void {
    if (this.closed) throw new MpBusError(MpErrorCodes.closed, 'the rte_mp bus is closed: open a new one with MpBus.open() while the runtime runs');
    this.runtime.assertOpen();
  }

  private report(err: unknown, name?: string): void {
    const error = err instanceof MpBusError ? err : new MpBusError(MpErrorCodes.malformed, `${name ? `'${name}': ` : ''}${String((err as Error)?.message ?? err)}`, { cause: err });
    this.log.debug({ err: error }, 'bus error');
    this.errorSubject.next(error);
  }

  private shutdown(): void {
    this.removeCloseHook();
    const closedError = (): MpBusError => new MpBusError(MpErrorCodes.closed, 'the rte_mp bus closed before the request completed');
    for (const pool of [this.lanePool, ...this.rawPools.values()]) {
      if (pool.wakeTimer) clearTimeout(pool.wakeTimer);
      for (const slot of pool.slots) {
        const req = slot.busy;
        if (!req) continue;
        if (req.safetyTimer) clearTimeout(req.safetyTimer);
        slot.busy = undefined;
        this.dropLarge(req);
        req.reject(closedError());
      }
      for (const req of pool.waiting.splice(0)) {
        this.dropLarge(req);
        req.reject(closedError());
      }
    }
    for (const ref of [...this.outstandingLarge.keys()]) this.releaseLarge(ref);
    for (const slot of this.slotsByName.values()) if (slot.lane) this.native.mpUnregister(slot.name);
    for (const reg of this.registrations.values()) {
      this.native.mpUnregister(reg.name);
      reg.subject.complete();
    }
    this.registrations.clear();
    // Joins the sender thread (what it still sends is bounded by the socket's send timeout).
    this.native.mpClose();
    const closedSend = new MpBusError(MpErrorCodes.closed, 'the rte_mp bus closed before the message was sent');
    for (const onSent of this.sendCallbacks.values()) this.callOnSent(onSent, closedSend);
    this.sendCallbacks.clear();
    this.errorSubject.complete();
    if (current === this) current = undefined;
  }
}

interface Outcome {
  kind: EnvelopeKind;
  value: unknown;
  fds?: number[];
}

function toOutcome(result: unknown): Outcome {
  if (result instanceof MpReplyWith) return { kind: EnvelopeKind.reply, value: result.value, fds: result.fds };
  return { kind: EnvelopeKind.reply, value: result };
}

function errorPayload(err: unknown): { code: string; message: string } {
  if (err instanceof Error) return { code: String((err as { code?: unknown }).code ?? err.name), message: err.message };
  return { code: 'Error', message: String(err) };
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

function closeFds(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // already closed by its owner
    }
  }
}

function resolveBusOptions(o: MpBusOptions): Required<MpBusOptions> {
  const int = (name: string, v: number | undefined, dflt: number, min: number, max: number): number => {
    if (v === undefined) return dflt;
    if (!Number.isInteger(v) || v < min || v > max) throw new MpBusError(MpErrorCodes.invalidOption, `${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
    return v;
  };
  return {
    lanes: int('lanes', o.lanes, 16, 1, 256),
    maxPayloadBytes: int('maxPayloadBytes', o.maxPayloadBytes, 64 * 1024 * 1024, 256, 1024 * 1024 * 1024),
    largePayloadTtlMs: int('largePayloadTtlMs', o.largePayloadTtlMs, 30_000, 10, 3_600_000),
    quarantineMs: int('quarantineMs', o.quarantineMs, 1000, 0, 600_000),
    spinMaxUs: int('spinMaxUs', o.spinMaxUs, 50, 0, 10_000),
    spinWindowUs: int('spinWindowUs', o.spinWindowUs, 1000, 0, 1_000_000),
  };
}
