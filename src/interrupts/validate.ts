/** Argument checks done in TypeScript before any native call (or any request to the primary). */
import { MpBusError, ErrorCodes } from '../errors.js';
import type { WatchSpec } from './types.js';

/** DPDK's RTE_MAX_ETHPORTS bound is checked natively; here only the shape. */
export function validatePort(port: unknown): asserts port is number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new MpBusError(ErrorCodes.invalidOption, `a port id is an integer 0..65535, got ${String(port)}`);
  }
}

const MAX_ALARM_MS = 24 * 3600 * 1000;

/** What an event source's signal(n) adds to its eventfd's counter: a whole number a double holds exactly. */
export function validateSignalCount(n: unknown): void {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
    throw new MpBusError(ErrorCodes.invalidOption, `signal(n) adds n to the eventfd's counter: an integer from 1 to 2^53-1, got ${String(n)}`);
  }
}

export function validateWatch(spec: WatchSpec): void {
  if (typeof spec !== 'object' || spec === null) throw new MpBusError(ErrorCodes.invalidOption, 'a watch is an object such as { type: "lsc", port: 0 }');
  switch (spec.type) {
    case 'lsc':
    case 'removal':
      validatePort(spec.port);
      return;
    case 'ports':
      return;
    case 'alarm':
      if (typeof spec.name !== 'string' || spec.name.length === 0 || spec.name.length > 64) {
        throw new MpBusError(ErrorCodes.invalidOption, 'an alarm needs a name of 1-64 characters');
      }
      if (typeof spec.delayMs !== 'number' || !(spec.delayMs > 0) || spec.delayMs > MAX_ALARM_MS) {
        throw new MpBusError(ErrorCodes.invalidOption, `an alarm's delayMs must be > 0 and at most ${MAX_ALARM_MS}, got ${String(spec.delayMs)}`);
      }
      return;
    default:
      throw new MpBusError(
        ErrorCodes.invalidOption,
        `unknown watch type ${JSON.stringify((spec as { type?: unknown }).type)}: use lsc, removal, ports or alarm`,
      );
  }
}
