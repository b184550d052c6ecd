/**
 * The contract between `Interrupts` and what serves it in its process: the primary's own
 * sources, or in a secondary the relay client that asks the primary. Its own module so that
 * neither side imports the other.
 */
import type { Observable } from 'rxjs';
import { ErrorCodes, MpBusError } from '../errors.js';
import type { LinkSnapshot, Release } from './primary.js';
import type { EventLoss, InterruptEvent, PortInfo, WatchSpec } from './types.js';

/** What an `Interrupts` needs from its process: the primary's sources, or the relay to them. */
export interface InterruptBackend {
  /** Every event, in the primary's order. Hot. */
  readonly events$: Observable<InterruptEvent>;
  /** Events this process missed for good (secondaries only: see `Interrupts.lost$`). */
  readonly losses$?: Observable<EventLoss>;
  /**
   * Holds a watch. `ready` settles once the source is watched (undefined: it already is) and
   * rejects with the reason it cannot be; `release` may be called at any time, even before.
   */
  hold(spec: WatchSpec): Hold;
  linkSnapshot(port: number): LinkSnapshot | Promise<LinkSnapshot>;
  portInfo(port: number): PortInfo | Promise<PortInfo>;
  ports(): PortInfo[] | Promise<PortInfo[]>;
  startPort(port: number, lsc: boolean): { lscArmed: boolean } | Promise<{ lscArmed: boolean }>;
  stopPort(port: number): void | Promise<void>;
  attach(devargs: string): Promise<{ device: string; portId?: number }>;
  detach(device: string): Promise<{ device: string; portId?: number }>;
}

/** One hold on a watched source (see `InterruptBackend.hold`). */
export interface Hold {
  ready: Promise<void> | undefined;
  release: Release;
}

/** Marks the failures of {@link primaryClosing}. */
const closingMark = Symbol('mpbus.primaryClosing');

/**
 * PRIMARY_LOST for a call the primary no longer serves because it has begun to close (`cause`:
 * the bus's NO_HANDLER): this process will see it go, and then its runtime closes (or, with
 * `onPrimaryLost: 'ignore'`, the relay fails the streams with PRIMARY_LOST).
 */
export function primaryClosing(cause: unknown): MpBusError {
  const err = new MpBusError(ErrorCodes.primaryLost, 'the primary stopped serving interrupts: it is closing, and this process will see it go', { cause });
  Object.defineProperty(err, closingMark, { value: true });
  return err;
}

/** A failure of {@link primaryClosing}: a stream waits for the end the primary's going brings rather than fail. */
export function isPrimaryClosing(err: unknown): boolean {
  return err instanceof MpBusError && (err as unknown as Record<symbol, unknown>)[closingMark] === true;
}
