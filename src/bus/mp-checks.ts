/**
 * The checks of what the rte_mp bus is given: its options (defaults applied), names, fds and raw
 * payloads against DPDK's limits, each failing with an `MpBusError` that says the limit.
 */
import { MpBusError } from '../errors.js';
import { checkedOptions, integerIn, optionKeys } from '../validation.js';
import type { MpBinding } from '../native/mp.js';
import { MpErrorCodes, type MpBusOptions, type MpMessageOptions, type MpRequestOptions } from './types.js';

/** Names starting with this are mpbus's own (lanes); user names may not use it. */
export const RESERVED_NAME_PREFIX = 'mpbus:';

type Limits = MpBinding['mpLimits'];

const BUS_OPTION_KEYS = optionKeys<MpBusOptions>({
  lanes: true,
  maxPayloadBytes: true,
  largePayloadTtlMs: true,
  quarantineMs: true,
  spinMaxUs: true,
  spinWindowUs: true,
});

const MESSAGE_OPTION_KEYS = optionKeys<MpMessageOptions>({ fds: true, raw: true, onSent: true });
const REQUEST_OPTION_KEYS = optionKeys<MpRequestOptions>({ fds: true, raw: true, timeoutMs: true, mode: true });

/** Refuses options a message (`send`) or a request does not have; `what` names the call. */
export function checkCallOptionKeys(o: MpMessageOptions | MpRequestOptions, kind: 'message' | 'request', what: string): void {
  checkedOptions(o, kind === 'message' ? MESSAGE_OPTION_KEYS : REQUEST_OPTION_KEYS, what);
}

/** Refuses options `MpBus.open` does not have (`runtime` and `implicit` taken out before). */
export function checkBusOptionKeys(o: MpBusOptions): void {
  checkedOptions(o, BUS_OPTION_KEYS, 'MpBus.open options');
}

export function resolveBusOptions(o: MpBusOptions): Required<MpBusOptions> {
  const int = (name: string, v: number | undefined, dflt: number, min: number, max: number): number => (v === undefined ? dflt : integerIn(v, name, min, max));
  return {
    lanes: int('lanes', o.lanes, 16, 1, 256),
    maxPayloadBytes: int('maxPayloadBytes', o.maxPayloadBytes, 64 * 1024 * 1024, 256, 1024 * 1024 * 1024),
    largePayloadTtlMs: int('largePayloadTtlMs', o.largePayloadTtlMs, 30_000, 10, 3_600_000),
    quarantineMs: int('quarantineMs', o.quarantineMs, 1000, 0, 600_000),
    spinMaxUs: int('spinMaxUs', o.spinMaxUs, 50, 0, 10_000),
    spinWindowUs: int('spinWindowUs', o.spinWindowUs, 1000, 0, 1_000_000),
  };
}

export function checkName(name: string, limits: Limits): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new MpBusError(MpErrorCodes.invalidName, `an rte_mp name is a non-empty string, got ${JSON.stringify(name)}`);
  }
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > limits.maxNameBytes) {
    throw new MpBusError(
      MpErrorCodes.invalidName,
      `rte_mp name '${name}' is ${bytes} bytes; DPDK allows at most ${limits.maxNameBytes} (RTE_MP_MAX_NAME_LEN - 1)`,
    );
  }
  if (name.includes('\0')) throw new MpBusError(MpErrorCodes.invalidName, 'an rte_mp name cannot contain NUL');
  if (name.startsWith(RESERVED_NAME_PREFIX)) {
    throw new MpBusError(MpErrorCodes.invalidName, `names starting with '${RESERVED_NAME_PREFIX}' are mpbus's own: choose another name than '${name}'`);
  }
}

export function checkFds(fds: unknown, limits: Limits): number[] | undefined {
  if (fds === undefined) return undefined;
  if (!Array.isArray(fds) || fds.some((fd) => !Number.isInteger(fd) || (fd as number) < 0 || (fd as number) > 0x7fffffff)) {
    throw new MpBusError(MpErrorCodes.invalidFds, 'fds must be an array of open file descriptors (non-negative integers)');
  }
  if (fds.length > limits.maxFds) {
    throw new MpBusError(MpErrorCodes.invalidFds, `${fds.length} fds: rte_mp carries at most ${limits.maxFds} (RTE_MP_MAX_FD_NUM)`);
  }
  return fds as number[];
}

export function checkRaw(value: unknown, limits: Limits): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new MpBusError(MpErrorCodes.invalidOption, 'a raw payload is a Uint8Array (or Buffer) of at most 256 bytes');
  }
  if (value.length > limits.maxParamBytes) {
    throw new MpBusError(
      MpErrorCodes.payloadTooLarge,
      `raw payload of ${value.length} bytes: rte_mp's param holds at most ${limits.maxParamBytes} (RTE_MP_MAX_PARAM_LEN); send an encoded value instead, which mpbus moves through shared memory`,
    );
  }
  return value;
}
