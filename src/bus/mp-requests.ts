/**
 * The rte_mp bus's requests on lanes: DPDK allows one pending request per (peer, name), so each
 * process registers `lanes` internal action names (`mpbus:lane:N`) and a request takes a free
 * lane, carrying the handler's name, a correlation id and a deadline in its envelope; more wait
 * in a FIFO. Raw requests (for C peers) take the name itself as their one slot. This starts
 * requests on free slots (request-slots.ts keeps the bookkeeping), completes them from DPDK's
 * callbacks, reads and matches their replies, and settles them all when the bus closes.
 */
import { readdirSync } from 'node:fs';
import { ErrorCodes, MpBusError } from '../errors.js';
import { pidAlive, pidExists } from '../runtime/group.js';
import type { MpBinding, NativeReply, NativeRequestDone } from '../native/mp.js';
import { MpEnvelopeKind, hasEnvelope, monotonicMs, readEnvelope, type MpEnvelope, type MpEnvelopeHead } from './envelope.js';
import { RESERVED_NAME_PREFIX, checkCallOptionKeys, checkFds, checkName, checkRaw } from './mp-checks.js';
import { closeFds } from './mp-handler-call.js';
import type { Body, LargePayloads } from './mp-large.js';
import { CorrelationIds, answers, completes, startWaiting, type RequestSlot, type RequestSlotPool } from './request-slots.js';
import { MpErrorCodes, type MpBusOptions, type MpReply, type MpRequestOptions, type MpRequestResult, type MpRole } from './types.js';

/** The internal action names of the lanes: `mpbus:lane:0`, ... */
export const LANE_PREFIX = `${RESERVED_NAME_PREFIX}lane:`;
export const DEFAULT_TIMEOUT_MS = 5000;
/** Extra wait, past a request's timeout, before mpbus stops waiting for DPDK's callback. */
const DPDK_CALLBACK_GRACE_MS = 2000;

/** What the requests need of their bus. */
export interface RequestHost {
  readonly role: MpRole;
  /** The group's runtime directory, where DPDK puts every secondary's rte_mp socket. */
  readonly runtimeDir: string;
  options(): Required<MpBusOptions>;
  closed(): boolean;
  assertOpen(): void;
  envelope(head: Omit<MpEnvelopeHead, 'role' | 'pid'>, body: Body): Buffer;
  /** Problems that belong to no call (`errors$`). */
  report(err: unknown): void;
}

type PendingSlot = RequestSlot<PendingRequest>;
type PendingPool = RequestSlotPool<PendingRequest>;

export interface PendingRequest {
  id: number;
  target: string;
  raw: boolean;
  body: Body;
  targetBytes?: Buffer;
  fds: number[] | undefined;
  timeoutMs: number;
  deadlineMs: number;
  sync: boolean;
  // Requests of every reply type share one table; each entry's resolve is its own caller's.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  resolve(result: MpRequestResult<any>): void;
  reject(err: unknown): void;
  safetyTimer?: NodeJS.Timeout;
  /** Primary: DPDK could not send it to some secondary (EAGAIN at the send timeout). */
  unreached?: boolean;
}

export class MpRequests {
  private readonly role: MpRole;
  private readonly limits: MpBinding['mpLimits'];
  private readonly slotsByName = new Map<string, PendingSlot>();
  private readonly lanePool: PendingPool = { slots: [], waiting: [] };
  private readonly rawPools = new Map<string, PendingPool>();
  private readonly correlationIds = new CorrelationIds();
  private secondariesSeenUntil = 0;
  /** The pids of the secondaries' rte_mp sockets seen by the last look at the runtime dir. */
  private secondaryPids: number[] = [];
  /** UTF-8 bytes of handler names, put in every lane request's header. */
  private readonly nameBytes = new Map<string, Buffer>();

  constructor(
    private readonly native: MpBinding,
    private readonly large: LargePayloads,
    private readonly host: RequestHost,
  ) {
    this.role = host.role;
    this.limits = native.mpLimits;
  }

  /**
   * Uses `count` lanes. More lanes than before: registers them. Fewer: stops using the extra ones
   * (they stay registered, so a peer that still uses them is answered).
   */
  useLanes(count: number): void {
    for (let i = this.lanePool.slots.length; i < count; i++) {
      const name = `${LANE_PREFIX}${i}`;
      if (!this.slotsByName.has(name)) {
        this.native.mpRegister(name);
        this.slotsByName.set(name, { name, lane: true, pool: this.lanePool, quarantinedUntil: 0 });
      }
      this.lanePool.slots.push(this.slotsByName.get(name)!);
    }
    this.lanePool.slots.length = Math.min(this.lanePool.slots.length, count);
  }

  /** Unregisters every lane (when the first registrations fail, or the bus closes). */
  unregisterLanes(): void {
    for (const slot of this.slotsByName.values()) if (slot.lane) this.native.mpUnregister(slot.name);
  }

  /**
   * Settles every request in flight or queued with `CLOSED` (the bus closes), or with
   * `PRIMARY_LOST` when it closes because this secondary lost its primary.
   */
  close(endedBy?: 'primary-lost'): void {
    const closedError = (): MpBusError =>
      endedBy === 'primary-lost'
        ? new MpBusError(ErrorCodes.primaryLost, "the rte_mp bus closed before the request completed: this process's primary is gone")
        : new MpBusError(MpErrorCodes.closed, 'the rte_mp bus closed before the request completed');
    for (const pool of [this.lanePool, ...this.rawPools.values()]) {
      if (pool.wakeTimer) clearTimeout(pool.wakeTimer);
      for (const slot of pool.slots) {
        const req = slot.busy;
        if (!req) continue;
        if (req.safetyTimer) clearTimeout(req.safetyTimer);
        slot.busy = undefined;
        this.large.drop(req.body);
        req.reject(closedError());
      }
      for (const req of pool.waiting.splice(0)) {
        this.large.drop(req.body);
        req.reject(closedError());
      }
    }
  }

  start<T>(name: string, value: unknown, options: MpRequestOptions): Promise<MpRequestResult<T>> {
    this.host.assertOpen();
    checkName(name, this.limits);
    checkCallOptionKeys(options, 'request', `request('${name}') options`);
    const fds = checkFds(options.fds, this.limits);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > 3_600_000) {
      throw new MpBusError(MpErrorCodes.invalidOption, `timeoutMs must be a number of milliseconds in (0, 3600000], got ${String(timeoutMs)}`);
    }
    if (options.mode !== undefined && options.mode !== 'async' && options.mode !== 'sync') {
      throw new MpBusError(MpErrorCodes.invalidOption, `mode must be 'async' or 'sync', got ${String(options.mode)}`);
    }
    const raw = options.raw === true;
    let body: Body;
    let targetBytes: Buffer | undefined;
    if (raw) {
      body = checkRaw(value, this.limits);
    } else {
      targetBytes = this.nameBytes.get(name);
      if (!targetBytes) {
        targetBytes = Buffer.from(name, 'utf8');
        if (this.nameBytes.size < 4096) this.nameBytes.set(name, targetBytes);
      }
      body = this.large.encodeValue(value, targetBytes);
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
   * True if a live secondary has an rte_mp socket (DPDK sends to every socket in the runtime dir,
   * `mp_socket_<pid>_<tsc>`; a killed secondary's stays until a send to it fails). The sockets
   * seen are trusted for a second, as long as one of their processes still lives (one `kill(pid,
   * 0)` each); a "no" is checked again each time, so a new secondary is never missed. Without the
   * liveness test, a request made just after every secondary was killed reached nobody, and
   * DPDK 22.11 never calls such a request back: it waited for the safety timer, seconds past its
   * timeout.
   */
  anySecondary(): boolean {
    const now = monotonicMs();
    if (now < this.secondariesSeenUntil && this.secondaryPids.some(pidExists)) return true;
    let files: string[];
    try {
      files = readdirSync(this.host.runtimeDir);
    } catch {
      return false;
    }
    this.secondaryPids = files.flatMap((f) => {
      const m = /^mp_socket_(\d+)_/.exec(f);
      return m ? [Number(m[1])] : [];
    });
    if (!this.secondaryPids.some(pidAlive)) return false;
    this.secondariesSeenUntil = now + 1000;
    return true;
  }

  private rawPool(name: string): PendingPool {
    let pool = this.rawPools.get(name);
    if (!pool) {
      pool = { slots: [], waiting: [] };
      const slot: PendingSlot = { name, lane: false, pool, quarantinedUntil: 0 };
      pool.slots.push(slot);
      this.rawPools.set(name, pool);
      this.slotsByName.set(name, slot);
    }
    return pool;
  }

  /** Starts queued requests on free slots; re-arms itself for slots resting after a timeout. */
  private pump(pool: PendingPool): void {
    if (this.host.closed()) return;
    const now = monotonicMs();
    const nextWake = startWaiting(pool, now, this.launchOnSlot, this.expireWaiting);
    if (pool.wakeTimer) clearTimeout(pool.wakeTimer);
    pool.wakeTimer = undefined;
    if (nextWake !== Infinity) {
      pool.wakeTimer = setTimeout(() => this.pump(pool), Math.max(1, nextWake - now));
    }
  }

  private readonly launchOnSlot = (slot: PendingSlot, req: PendingRequest, now: number): void => this.launch(slot, req, now);

  private readonly expireWaiting = (req: PendingRequest, queued: number): void => {
    this.large.drop(req.body);
    const why = req.raw
      ? `raw requests to one name go one at a time, and a name whose request timed out rests ${this.host.options().quarantineMs} ms (quarantineMs): its peer answers slowly or not at all; give a longer timeoutMs, or request less often`
      : 'every lane was busy: raise the bus option lanes, or make fewer requests at once';
    req.reject(
      new MpBusError(
        MpErrorCodes.timeout,
        `'${req.target}': not sent: no request slot came free within ${req.timeoutMs} ms (${queued} ${queued === 1 ? 'request' : 'requests'} queued): ${why}`,
      ),
    );
  };

  private launch(slot: PendingSlot, req: PendingRequest, now: number): void {
    if (this.role === 'primary' && !this.anySecondary()) {
      // DPDK 22.11 never calls an async request back when it reached nobody: answer here.
      slot.busy = req;
      queueMicrotask(() => this.complete(slot, req, 0, [], false));
      return;
    }
    const remainingMs = Math.max(1, req.deadlineMs - now);
    const param = req.raw
      ? (req.body as Uint8Array)
      : this.host.envelope({ kind: MpEnvelopeKind.request, correlationId: req.id, deadlineMs: req.deadlineMs, target: req.targetBytes }, req.body);
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
      this.host.report(new MpBusError(MpErrorCodes.timeout, `DPDK never completed request '${req.target}' (slot ${slot.name}); settled by mpbus`));
      this.complete(slot, req, 0, [], true);
    }, remainingMs + DPDK_CALLBACK_GRACE_MS);
  }

  onRequestDone(ev: NativeRequestDone): void {
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

  private finishSlot(slot: PendingSlot, req: PendingRequest, timedOut: boolean, replied = false): void {
    if (req.safetyTimer) clearTimeout(req.safetyTimer);
    slot.busy = undefined;
    // A slot that timed out rests, so the late reply DPDK may still deliver finds no request.
    if (timedOut) slot.quarantinedUntil = monotonicMs() + this.host.options().quarantineMs;
    // The primary, sole receiver of a secondary's request, took and freed a large value before
    // answering: only an unanswered one is still ours to free.
    if (!(replied && this.role === 'secondary')) this.large.drop(req.body);
    queueMicrotask(() => this.pump(slot.pool));
  }

  private complete(slot: PendingSlot, req: PendingRequest, sent: number, nativeReplies: NativeReply[], timedOut: boolean): void {
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
    const result: MpRequestResult<unknown> = { sent, received: replies.length, complete: !timedOut && !req.unreached && replies.length === sent, replies };
    req.resolve(req.unreached ? { ...result, unreached: true } : result);
  }

  private fail(slot: PendingSlot, req: PendingRequest, err: unknown): void {
    if (slot.busy !== req) return;
    this.finishSlot(slot, req, false);
    req.reject(err);
  }

  /** Reads one reply to a lane request; undefined (and reported) if it answers another request. */
  private readReply(req: PendingRequest, r: NativeReply): MpReply | undefined {
    let env: MpEnvelope;
    try {
      if (!hasEnvelope(r.param)) throw new MpBusError(MpErrorCodes.malformed, `a reply to '${req.target}' has no mpbus header`);
      env = readEnvelope(r.param);
    } catch (err) {
      closeFds(r.fds);
      this.host.report(err);
      return undefined;
    }
    if (!answers(env, req.id)) {
      closeFds(r.fds);
      this.host.report(
        new MpBusError(
          MpErrorCodes.lateReply,
          `dropped a reply from pid ${env.pid} that answers another request (id ${env.correlationId}, expected ${req.id} for '${req.target}')`,
        ),
      );
      return undefined;
    }
    const from = { raw: false, pid: env.pid, role: env.role, fds: r.fds };
    if (env.kind === MpEnvelopeKind.noHandler) {
      return { ok: false, ...from, error: new MpBusError(MpErrorCodes.noHandler, `pid ${env.pid} (${env.role}) has no handler for '${req.target}'`) };
    }
    let value: unknown;
    try {
      value = this.large.open(env, true);
    } catch (err) {
      return { ok: false, ...from, error: err as MpBusError };
    }
    if (env.kind === MpEnvelopeKind.errorReply) {
      const remote = (value ?? {}) as { code?: unknown; message?: unknown };
      const error = new MpBusError(
        MpErrorCodes.remoteError,
        `the handler of '${req.target}' in pid ${env.pid} (${env.role}) failed: ${String(remote.message)}`,
      );
      (error as MpBusError & { remoteCode?: string }).remoteCode = typeof remote.code === 'string' ? remote.code : undefined;
      return { ok: false, ...from, error };
    }
    return { ok: true, ...from, value };
  }
}
