/**
 * The relay's protocol, shared by its two ends (the primary's relay.ts and control.ts, a
 * secondary's relay-client.ts): the rte_mp names, the messages, the limits both ends count on, and
 * the checks of what arrives from another process.
 *
 * The relay: interrupts fire only in the primary (DPDK's rule), so the primary broadcasts each
 * event over rte_mp to every secondary, and answers secondaries that ask it to watch a source,
 * read a link, start a port or hotplug a device.
 *
 * - `mpbus.intr.event`: primary -> every secondary, `{ events }` in the primary's order, a
 *   beacon `{ latest }`, or, last as the primary closes, `{ latest, end: true }`. One broadcast
 *   is in flight at a time (on the bus's sender thread);
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
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeThrown, MpBusError } from '../errors.js';
import type { InterruptEvent, WatchSpec } from './types.js';

export const EVENT_NAME = 'mpbus.intr.event';
export const CONTROL_NAME = 'mpbus.intr.ctl';
export const CONTROL_TIMEOUT_MS = 5000;
/** Hotplug waits for every secondary to attach the device too (DPDK's own rte_mp request). */
export const HOTPLUG_TIMEOUT_MS = 20_000;
export const REAP_INTERVAL_MS = 2000;
/** Events the primary keeps for secondaries that missed broadcasts (trimmed in bulk at twice this: a few MB at most). */
export const HISTORY_LIMIT = 4096;
/** While some secondary missed a broadcast, the primary tells its latest seq this often. */
export const BEACON_INTERVAL_MS = 250;
/** A secondary whose replay request failed (primary busy, gone) tries again after this. */
export const REPLAY_RETRY_MS = 1000;

/**
 * What the primary broadcasts on {@link EVENT_NAME}: events, a beacon of its latest seq, or, last
 * of all as it closes, `end`: no event follows `latest`.
 */
export type EventMessage = { events: InterruptEvent[] } | { latest: number; end?: true };
/**
 * A secondary whose primary left waits this long at most for its `end` (the primary closes its
 * actors before its interrupts), delivering what arrives, before it reports what never came.
 */
export const END_WAIT_MS = 500;

/**
 * The relay's last seq, also in a file of the group's runtime dir (`mpbus_intr_end_<pid>`, gone
 * with the group's files): a secondary that could not read the `end` broadcast (stopped while the
 * primary closed: its socket was full) reads it there, and reports what it never got.
 */
export class RelayEndFile {
  constructor(private readonly runtimeDir: string) {}

  private path(primaryPid: number): string {
    return join(this.runtimeDir, `mpbus_intr_end_${primaryPid}`);
  }

  /** Primary: records its last seq. */
  write(seq: number): void {
    try {
      writeFileSync(this.path(process.pid), String(seq));
    } catch {
      // the dir is gone: no secondary is left to tell
    }
  }

  /** Secondary: the last seq its primary recorded, if it did (written by another process: checked). */
  read(primaryPid: number): number | undefined {
    try {
      const seq = Number(readFileSync(this.path(primaryPid), 'utf8').slice(0, 20));
      return Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
    } catch {
      return undefined;
    }
  }
}

/** The answer to `replay`: the events from `from` on that the history still has. */
export interface ReplayReply {
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

export type ControlReply = { ok: true; value?: unknown } | { ok: false; code: string; message: string };

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

export function failure(err: unknown): ControlReply {
  if (err instanceof MpBusError) return { ok: false, code: err.code, message: err.message };
  return { ok: false, code: 'ERROR', message: describeThrown(err) };
}

const EVENT_TYPES = new Set(['lsc', 'removal', 'new', 'destroy', 'alarm', 'fd']);

/** A relayed event is another process's bytes: check its shape before anyone sees it. */
export function plausibleEvent(v: unknown): v is InterruptEvent {
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
