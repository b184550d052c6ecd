/**
 * The relay: interrupts fire only in the primary (DPDK's rule), so the primary broadcasts each
 * event over rte_mp to every secondary, and answers secondaries that ask it to watch a source,
 * read a link, start a port or hotplug a device.
 *
 * - `mpbus.intr.event`: primary -> every secondary, one message per event, in the primary's
 *   order (rte_mp datagrams from one sender arrive in order; each secondary also drops any seq
 *   it has already seen).
 * - `mpbus.intr.ctl`: secondary -> primary requests `{ op, ... }`, answered with
 *   `{ ok: true, value }` or `{ ok: false, code, message }` so typed errors cross intact.
 *
 * A secondary's holds are tagged with its pid; the primary drops the holds of processes that
 * died (checked while any remote hold exists), so a crashed secondary leaks no registration.
 */
import { Subject, type Subscription } from 'rxjs';
import type { Logger } from 'pino';
import { MpBusError, ErrorCodes } from '../errors.js';
import type { MpBus } from '../bus/index.js';
import type { Hold, InterruptBackend } from './interrupts.js';
import type { LinkSnapshot, PrimarySources, Release } from './primary.js';
import type { InterruptEvent, LinkState, PortInfo, WatchSpec } from './types.js';
import { validatePort, validateWatch } from './validate.js';

export const EVENT_NAME = 'mpbus.intr.event';
export const CONTROL_NAME = 'mpbus.intr.ctl';
const CONTROL_TIMEOUT_MS = 5000;
/** Hotplug waits for every secondary to attach the device too (DPDK's own rte_mp request). */
const HOTPLUG_TIMEOUT_MS = 20_000;
const REAP_INTERVAL_MS = 2000;

type ControlRequest =
  | { op: 'watch'; id: number; spec: WatchSpec }
  | { op: 'release'; id: number }
  | { op: 'snapshot'; port: number }
  | { op: 'portInfo'; port: number }
  | { op: 'ports' }
  | { op: 'startPort'; port: number; lsc: boolean }
  | { op: 'stopPort'; port: number }
  | { op: 'attach'; devargs: string }
  | { op: 'detach'; device: string };

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

/**
 * Primary: broadcasts every event and serves the control requests. Returns the teardown, to run
 * before the sources close.
 */
export function serveRelay(sources: PrimarySources, bus: MpBus, log: Logger): () => void {
  const remoteHolds = new Map<string, { pid: number; release: Release }>();
  let reaper: NodeJS.Timeout | undefined;

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
      default:
        throw new MpBusError(ErrorCodes.invalidOption, `unknown interrupt control op ${JSON.stringify((req as { op?: unknown }).op)}`);
    }
  };

  const handler = bus.handle<ControlRequest, ControlReply>(CONTROL_NAME, async (req, msg) => {
    if (!isObject(req) || typeof req.op !== 'string' || typeof msg.pid !== 'number') {
      return { ok: false, code: ErrorCodes.invalidOption, message: 'malformed interrupt control request' };
    }
    try {
      return { ok: true, value: await handle(req, msg.pid) };
    } catch (err) {
      return failure(err);
    }
  });

  const events: Subscription = sources.events$.subscribe((event) => {
    try {
      bus.broadcast(EVENT_NAME, event);
    } catch (err) {
      // No secondary, or the bus is closing: the primary's own subscribers still got it.
      log.debug({ err, seq: event.seq }, 'event not relayed');
    }
  });

  return () => {
    events.unsubscribe();
    handler.unsubscribe();
    if (reaper) clearInterval(reaper);
    for (const hold of remoteHolds.values()) hold.release();
    remoteHolds.clear();
  };
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
  private lastSeq = 0;
  private nextHoldId = 1;
  private readonly subscription: Subscription;

  constructor(
    private readonly bus: MpBus,
    private readonly log: Logger,
  ) {
    this.subscription = bus.messages$<unknown>(EVENT_NAME).subscribe({
      next: (msg) => {
        if (msg.raw || msg.role !== 'primary' || !plausibleEvent(msg.value)) {
          this.log.warn({ pid: msg.pid, raw: msg.raw }, 'dropped a malformed interrupt event');
          return;
        }
        // Order is the primary's: anything not newer than what was delivered is a duplicate.
        if (msg.value.seq <= this.lastSeq) return;
        this.lastSeq = msg.value.seq;
        this.subject.next(msg.value);
      },
      complete: () => this.subject.complete(),
    });
  }

  private async call<T>(request: ControlRequest, timeoutMs = CONTROL_TIMEOUT_MS): Promise<T> {
    let replies: ControlReply[];
    try {
      replies = await this.bus.requestAll<ControlReply>(CONTROL_NAME, request, { timeoutMs });
    } catch (err) {
      if (err instanceof MpBusError && err.code === 'NO_HANDLER') {
        throw new MpBusError(ErrorCodes.notReady, "the primary does not serve interrupts yet: it must use them first (touch rt.interrupts in the primary, e.g. after Runtime.start)", { cause: err });
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
    this.subscription.unsubscribe();
    this.subject.complete();
  }
}
