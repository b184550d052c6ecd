/** DPDK's rte_mp IPC as RxJS and promises (MpBus). See {@link MpBus}. */
import { Observable, Subject, Subscription, defer, from } from 'rxjs';
import { ErrorCodes, MpBusError } from '../errors.js';
import { logger } from '../log.js';
import { mpNative, type MpBinding, type NativeIncoming, type NativeMpEvent } from '../native/mp.js';
import { Runtime } from '../runtime/runtime.js';
import { MpEnvelopeKind, encodeValue, hasEnvelope, monotonicMs, readEnvelope, writeEnvelope, type MpEnvelope, type MpEnvelopeHead } from './envelope.js';
import { LargePayloads, type Body } from './mp-large.js';
import { checkBusOptionKeys, checkCallOptionKeys, checkFds, checkName, checkRaw, resolveBusOptions } from './mp-checks.js';
import { closeFds, errorPayload, invokeHandler, type Outcome } from './mp-handler-call.js';
import { DEFAULT_TIMEOUT_MS, LANE_PREFIX, MpRequests } from './mp-requests.js';
import { MpSender, PEER_SEND_TIMEOUT_MS } from './mp-send.js';

export { PEER_SEND_TIMEOUT_MS, STUCK_PEER_SEND_TIMEOUT_MS } from './mp-send.js';
import {
  MpErrorCodes,
  type MpBusOptions,
  type MpHandler,
  type MpMessage,
  type MpMessageOptions,
  type MpRequestOptions,
  type MpRequestResult,
  type MpRole,
} from './types.js';

interface MpNameEntry {
  name: string;
  // One registry holds every name's handler and subject, each typed by its own caller: their
  // payload types differ per entry, so the entry itself cannot name one.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  handler?: MpHandler<any, any>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  subject: Subject<MpMessage<any>>;
  listeners: number;
}

let current: MpBus | undefined;

/**
 * DPDK's rte_mp IPC (messages, requests, replies, fds) as RxJS and promises.
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
 *
 * This file is the bus's API and its receiving side (message streams, handlers and their
 * replies); the rest has a file each: mp-send.ts (outgoing messages), mp-requests.ts (requests
 * on lanes), mp-large.ts (large-payload lifetimes), mp-checks.ts (options and arguments),
 * mp-handler-call.ts (calling a handler).
 */
export class MpBus {
  /** This process's role in the group. */
  readonly role: MpRole;
  readonly pid = process.pid;

  private readonly native: MpBinding;
  private readonly limits: MpBinding['mpLimits'];
  private readonly log;
  private readonly registrations = new Map<string, MpNameEntry>();
  private readonly large: LargePayloads;
  private readonly requests: MpRequests;
  private readonly sender: MpSender;
  private readonly errorSubject = new Subject<MpBusError>();
  private options: Required<MpBusOptions>;
  /** Opened by mpbus itself with the default options: the app's first open may set others. */
  private implicit = false;
  private closing: Promise<void> | undefined;
  /** Why the bus closed when it was not by its own close(): a lost primary. */
  private endedBy: 'primary-lost' | undefined;
  private readonly removeCloseHook: () => void;

  /** Problems that belong to no call: malformed or foreign messages, late replies, failed replies. */
  readonly errors$: Observable<MpBusError> = this.errorSubject.asObservable();

  private constructor(
    private readonly runtime: Runtime,
    options: MpBusOptions,
  ) {
    this.options = resolveBusOptions(options);
    this.native = mpNative();
    this.limits = this.native.mpLimits;
    this.large = new LargePayloads(this.native, () => this.options);
    this.role = runtime.processType;
    this.log = logger('bus:mp', { role: this.role });
    this.native.mpOpen((events) => this.drain(events));
    if (this.role === 'primary' && this.native.mpBoundSendTimeout(PEER_SEND_TIMEOUT_MS) < 0) {
      this.log.warn("DPDK's rte_mp socket was not found: a secondary that stops reading can block the primary's sends");
    }
    this.native.mpSetSpin(this.options.spinMaxUs > 0 ? this.options.spinWindowUs : 0, this.options.spinMaxUs);
    this.sender = new MpSender(this.native, { role: this.role, closed: () => this.closed, report: (err) => this.report(err) });
    this.requests = new MpRequests(this.native, this.large, {
      role: this.role,
      runtimeDir: runtime.group.runtimeDir,
      options: () => this.options,
      closed: () => this.closed,
      assertOpen: () => this.assertOpen(),
      envelope: (head, body) => this.envelope(head, body),
      report: (err) => this.report(err),
    });
    try {
      this.requests.useLanes(this.options.lanes);
    } catch (err) {
      this.requests.unregisterLanes();
      this.native.mpClose();
      throw err;
    }
    this.removeCloseHook = runtime.onClose((context) => {
      // a secondary whose primary died or left: what it waited for can never come
      if (context.reason === 'primary-lost') this.endedBy = 'primary-lost';
      return this.close();
    });
  }

  /**
   * The rte_mp bus of this process (one per process: DPDK's actions are per process). Opens it
   * on first call; later calls return the same bus, with options that agree with those in force
   * (or none), except the first call with options after mpbus opened the bus by itself (a
   * primary's, at `Runtime.start`, to serve interrupts): those options then apply. Options are
   * checked before anything changes: an open that fails leaves the bus as it was.
   *
   * @throws {MpBusError} `ENOTREADY` when no runtime is started, `CLOSED` when it is closed,
   *   `INVALID_OPTION` for a bad option, or one that differs from the bus's.
   */
  static open(options: MpBusOptions & { runtime?: Runtime; /** @internal opened by mpbus, not the app */ implicit?: boolean } = {}): MpBus {
    if (options === null || typeof options !== 'object') checkBusOptionKeys(options);
    const { runtime: given, implicit, ...busOptions } = options;
    checkBusOptionKeys(busOptions);
    const runtime = given ?? Runtime.required('the bus');
    runtime.assertOpen();
    // every value checked before anything changes: an open that fails leaves the bus as it was
    const resolved = resolveBusOptions(busOptions);
    if (current && !current.closed && current.runtime === runtime) {
      const given = Object.entries(busOptions).filter(([, v]) => v !== undefined) as Array<[keyof MpBusOptions, number]>;
      if (current.implicit && !implicit) {
        current.implicit = false;
        if (given.length > 0) current.configure(resolved);
      } else if (!implicit) {
        for (const [key, value] of given) {
          if (current.options[key] !== value) {
            throw new MpBusError(
              MpErrorCodes.invalidOption,
              `this process's rte_mp bus is open already, with ${key} ${current.options[key]}: it cannot change to ${value}; give every MpBus.open the same options, or none after the first`,
            );
          }
        }
      }
      return current;
    }
    current = new MpBus(runtime, busOptions);
    current.implicit = implicit === true;
    return current;
  }

  /** Applies options to a bus mpbus opened with the defaults (see {@link open}). */
  private configure(resolved: Required<MpBusOptions>): void {
    this.requests.useLanes(resolved.lanes);
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
      checkName(name, this.limits);
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
    checkName(name, this.limits);
    if (typeof handler !== 'function') throw new MpBusError(MpErrorCodes.invalidOption, 'handle(name, handler): handler must be a function');
    if (this.registrations.get(name)?.handler) {
      throw new MpBusError(ErrorCodes.exists, `this process already handles '${name}': unsubscribe the first handler before registering another`);
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
    checkName(name, this.limits);
    checkCallOptionKeys(options, 'message', `send('${name}') options`);
    const fds = checkFds(options.fds, this.limits);
    const onSent = options.onSent;
    if (onSent !== undefined && typeof onSent !== 'function') throw new MpBusError(MpErrorCodes.invalidOption, 'onSent must be a function');
    if (options.raw) {
      this.sender.send(name, checkRaw(value, this.limits), fds, onSent);
      return;
    }
    const body = this.large.encodeValue(value);
    const param = this.envelope({ kind: MpEnvelopeKind.message, correlationId: 0, deadlineMs: 0 }, body);
    try {
      this.sender.send(name, param, fds, onSent);
    } catch (err) {
      if (!(body instanceof Uint8Array)) this.large.release(body);
      throw err;
    }
    // Receivers read a broadcast value until the TTL, whether or not it reached every peer.
    if (!(body instanceof Uint8Array)) this.large.releaseLater(body);
  }

  /** {@link send} from the primary, which DPDK delivers to every secondary. */
  broadcast(name: string, value: unknown, options: MpMessageOptions = {}): void {
    if (this.role !== 'primary') {
      throw new MpBusError(
        MpErrorCodes.invalidOption,
        `only the primary broadcasts: a secondary's message goes to the primary alone (use send('${name}', ...))`,
      );
    }
    this.send(name, value, options);
  }

  /** Messages sent by the primary's sender thread and not yet returned from `rte_mp_sendmsg`. */
  get pendingSends(): number {
    return this.sender.pending;
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
      return this.requests.start<T>(name, value, options);
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
      throw new MpBusError(
        MpErrorCodes.noPeer,
        `no process to ask for '${name}': ${this.role === 'primary' ? 'no secondary is running' : 'the primary is gone'}`,
      );
    }
    const failed = result.replies.find((r) => !r.ok && r.error?.code !== MpErrorCodes.noHandler) ?? result.replies.find((r) => !r.ok);
    if (failed?.error) throw failed.error;
    if (result.unreached) {
      throw new MpBusError(
        MpErrorCodes.sendFailed,
        `'${name}' did not reach every secondary: one did not read its socket within the send timeout (stopped or starved); ${result.received} of the ${result.sent} reached replied`,
      );
    }
    if (!result.complete) {
      throw new MpBusError(
        MpErrorCodes.timeout,
        `'${name}': ${result.received} of ${result.sent} peers replied within ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`,
      );
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

  // ---- internals: incoming ----------------------------------------------------------------

  /** Everything DPDK delivered since the last wake-up, in order. Never throws (runs from native). */
  private drain(events: NativeMpEvent[]): void {
    for (const ev of events) {
      try {
        if (ev.kind === 'sendDone') {
          this.sender.onSendDone(ev);
        } else if (this.closed) {
          closeFds(ev.kind === 'incoming' ? ev.fds : ev.replies.flatMap((r) => r.fds));
        } else if (ev.kind === 'requestDone') {
          this.requests.onRequestDone(ev);
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
      if (reg.handler) invokeHandler(reg.handler, msg, (outcome) => this.replyRaw(ev, outcome));
      if (reg.listeners === 0 && !reg.handler) closeFds(ev.fds);
      return;
    }
    let env: MpEnvelope;
    try {
      env = readEnvelope(ev.param);
      if (env.kind !== MpEnvelopeKind.message) throw new MpBusError(MpErrorCodes.malformed, `malformed mpbus message: kind ${env.kind} on a message name`);
    } catch (err) {
      closeFds(ev.fds);
      this.report(err, ev.name);
      return;
    }
    if (reg.listeners === 0) {
      closeFds(ev.fds);
      if (env.role === 'secondary') this.large.discard(env);
      return;
    }
    let value: unknown;
    try {
      value = this.large.open(env, env.role === 'secondary');
    } catch (err) {
      closeFds(ev.fds);
      this.report(err, ev.name);
      return;
    }
    reg.subject.next({ name: ev.name, value, raw: false, pid: env.pid, role: env.role, fds: ev.fds });
  }

  /** A request from an mpbus peer on one of the lanes: dispatch by the handler name inside. */
  private onLaneRequest(ev: NativeIncoming): void {
    let env: MpEnvelope;
    try {
      if (!hasEnvelope(ev.param)) throw new MpBusError(MpErrorCodes.malformed, `a message without mpbus header on the internal name '${ev.name}'`);
      env = readEnvelope(ev.param);
      if (env.kind !== MpEnvelopeKind.request || env.target === '')
        throw new MpBusError(MpErrorCodes.malformed, `malformed mpbus request: kind ${env.kind}, name '${env.target}'`);
    } catch (err) {
      closeFds(ev.fds);
      this.report(err, ev.name);
      return;
    }
    const exclusive = env.role === 'secondary';
    const handler = this.registrations.get(env.target)?.handler;
    if (!handler) {
      closeFds(ev.fds);
      if (exclusive) this.large.discard(env);
      this.replyLane(ev, env, { kind: MpEnvelopeKind.noHandler, value: undefined });
      return;
    }
    let value: unknown;
    try {
      value = this.large.open(env, exclusive);
    } catch (err) {
      closeFds(ev.fds);
      this.replyLane(ev, env, { kind: MpEnvelopeKind.errorReply, value: errorPayload(err) });
      return;
    }
    const msg: MpMessage = { name: env.target, value, raw: false, pid: env.pid, role: env.role, fds: ev.fds };
    invokeHandler(handler, msg, (outcome) => this.replyLane(ev, env, outcome));
  }

  private replyLane(ev: NativeIncoming, req: MpEnvelope, outcome: Outcome): void {
    if (this.closed) return;
    // Past the requester's deadline its slot may carry another request: answering now would
    // answer that one. Drop it instead.
    if (monotonicMs() >= req.deadlineMs) {
      this.report(
        new MpBusError(
          MpErrorCodes.lateReply,
          `dropped this process's reply to a '${req.target}' request of pid ${req.pid}: that requester stopped waiting ${Math.round(monotonicMs() - req.deadlineMs)} ms ago (raise its timeoutMs, or answer sooner)`,
        ),
      );
      return;
    }
    let encoded: Buffer;
    let { kind } = outcome;
    try {
      encoded = encodeValue(outcome.value);
    } catch (err) {
      kind = MpEnvelopeKind.errorReply;
      encoded = encodeValue(errorPayload(err));
    }
    let fds: number[] | undefined;
    try {
      fds = checkFds(outcome.fds, this.limits);
    } catch (err) {
      kind = MpEnvelopeKind.errorReply;
      encoded = encodeValue(errorPayload(err));
    }
    let body: Body;
    try {
      body = this.large.encode(encoded);
    } catch (err) {
      kind = MpEnvelopeKind.errorReply;
      body = encodeValue(errorPayload(err));
      fds = undefined;
    }
    const param = this.envelope({ kind, correlationId: req.correlationId, deadlineMs: 0 }, body);
    try {
      this.native.mpReply(ev.name, param, fds, ev.peer);
      if (!(body instanceof Uint8Array)) this.large.releaseLater(body);
    } catch (err) {
      if (!(body instanceof Uint8Array)) this.large.release(body);
      this.report(new MpBusError(MpErrorCodes.replyFailed, `could not reply to '${req.target}' (pid ${req.pid}): ${(err as Error).message}`, { cause: err }));
    }
  }

  private replyRaw(ev: NativeIncoming, outcome: Outcome): void {
    if (this.closed) return;
    if (outcome.kind === MpEnvelopeKind.errorReply) {
      const remote = outcome.value as { message?: string };
      this.report(
        new MpBusError(
          MpErrorCodes.replyFailed,
          `the handler of '${ev.name}' failed on a raw request, which cannot carry an error reply: ${String(remote.message)}`,
        ),
      );
      return;
    }
    if (outcome.value === undefined) return; // a raw message, or the handler chose not to reply
    try {
      this.native.mpReply(ev.name, checkRaw(outcome.value, this.limits), checkFds(outcome.fds, this.limits), ev.peer);
    } catch (err) {
      this.report(new MpBusError(MpErrorCodes.replyFailed, `could not reply to the raw request '${ev.name}': ${(err as Error).message}`, { cause: err }));
    }
  }

  // ---- internals: registrations, envelopes ------------------------------------------------

  private acquire(name: string): MpNameEntry {
    let reg = this.registrations.get(name);
    if (!reg) {
      this.native.mpRegister(name);
      reg = { name, subject: new Subject(), listeners: 0 };
      this.registrations.set(name, reg);
    }
    return reg;
  }

  private releaseRegistration(reg: MpNameEntry): void {
    if (reg.handler || reg.listeners > 0 || this.registrations.get(reg.name) !== reg) return;
    this.registrations.delete(reg.name);
    if (!this.closed) this.native.mpUnregister(reg.name);
  }

  private envelope(head: Omit<MpEnvelopeHead, 'role' | 'pid'>, body: Body): Buffer {
    return writeEnvelope({ ...head, role: this.role, pid: this.pid }, body);
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new MpBusError(
        MpErrorCodes.closed,
        this.runtime.closed
          ? 'the rte_mp bus closed with its runtime: a process joins a group once (start a new process to join again)'
          : 'the rte_mp bus is closed: open a new one with MpBus.open()',
      );
    }
    this.runtime.assertOpen();
  }

  private report(err: unknown, name?: string): void {
    const error =
      err instanceof MpBusError
        ? err
        : new MpBusError(MpErrorCodes.malformed, `${name ? `'${name}': ` : ''}${String((err as Error)?.message ?? err)}`, { cause: err });
    this.log.debug({ err: error }, 'bus error');
    this.errorSubject.next(error);
  }

  private shutdown(): void {
    this.removeCloseHook();
    this.requests.close(this.endedBy);
    // A primary's broadcasts still within their TTL stay for the secondaries that have not read
    // them yet (a busy one got PAYLOAD_GONE for the events relayed just before the primary
    // closed): the group's hugepage memory goes with its last process.
    if (!(this.role === 'primary' && this.requests.anySecondary())) this.large.releaseAll();
    this.requests.unregisterLanes();
    for (const reg of this.registrations.values()) {
      this.native.mpUnregister(reg.name);
      reg.subject.complete();
    }
    this.registrations.clear();
    // Joins the sender thread (what it still sends is bounded by the socket's send timeout);
    // the outcomes it reported meanwhile are told before the rest is told CLOSED.
    for (const sent of this.native.mpClose()) this.sender.onSendDone(sent);
    this.sender.close();
    this.errorSubject.complete();
    if (current === this) current = undefined;
  }
}
