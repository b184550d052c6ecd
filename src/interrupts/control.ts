/**
 * The primary's side of the control RPC (`mpbus.intr.ctl`, see relay-protocol.ts): answers
 * secondaries' requests (watch and release a source, read a link or a port, start and stop a
 * port, hotplug, replay missed events) with the primary's sources and its event relay, and
 * releases the holds of secondaries that died.
 */
import type { Subscription } from 'rxjs';
import type { Logger } from 'pino';
import { MpBusError, ErrorCodes } from '../errors.js';
import { pidAlive } from '../runtime/group.js';
import type { MpBus } from '../bus/index.js';
import type { PrimarySources, Release } from './primary.js';
import { EventRelay } from './relay.js';
import { CONTROL_NAME, REAP_INTERVAL_MS, failure, isObject, type ControlReply, type ControlRequest, type RelayEndFile } from './relay-protocol.js';
import type { RelayStats } from './types.js';
import { validateWatch } from './validate.js';

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
export function serveRelay(sources: PrimarySources, bus: MpBus, log: Logger, endFile?: RelayEndFile): RelayServer {
  const remoteHolds = new Map<string, { pid: number; release: Release }>();
  let reaper: NodeJS.Timeout | undefined;
  const relay = new EventRelay(bus, log, endFile);

  const reap = (): void => {
    for (const [key, hold] of remoteHolds) {
      if (pidAlive(hold.pid)) continue;
      remoteHolds.delete(key);
      hold.release();
      log.info({ secondaryPid: hold.pid }, 'released a watch of a dead secondary');
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
