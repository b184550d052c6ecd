/**
 * The group's name registry: mailbox name -> (process slot, slot generation, mailbox id), an
 * rte_hash in shared memory. Names are checked here before any native call.
 */
import { MpBusError, ErrorCodes } from '../errors.js';
import { registryNative } from '../native/hash.js';

/** Where a mailbox lives. */
export interface MailboxAddress {
  readonly slot: number;
  readonly generation: number;
  readonly id: number;
}

/** Longest mailbox name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 63;

/** Throws INVALID_NAME unless `name` is 1..63 UTF-8 bytes without NUL. */
export function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > MAX_NAME_BYTES || name.includes('\0')) {
    throw new MpBusError(ErrorCodes.invalidName, `a mailbox name is a string of 1 to ${MAX_NAME_BYTES} UTF-8 bytes without NUL, got ${JSON.stringify(name)}`);
  }
}

const lookupOut = new Uint32Array(3);

export const registry = {
  /** Registers `name`; false when another mailbox holds it. */
  add(name: string, at: MailboxAddress): boolean {
    checkName(name);
    return registryNative().regAdd(name, at.slot, at.generation, at.id);
  },
  /** Where `name` lives, or undefined. */
  lookup(name: string): MailboxAddress | undefined {
    checkName(name);
    if (!registryNative().regLookup(name, lookupOut)) return undefined;
    return { slot: lookupOut[0]!, generation: lookupOut[1]!, id: lookupOut[2]! };
  },
  /** Unregisters `name` if it still maps to `at`. */
  remove(name: string, at: MailboxAddress): boolean {
    checkName(name);
    return registryNative().regRemove(name, at.slot, at.generation, at.id);
  },
  /** Every registered name of the group (or of one process slot). */
  names(slot?: number): string[] {
    return registryNative().regNames(slot);
  },
  /** How many names are registered in the group. */
  count(): number {
    return registryNative().regCount();
  },
  /** A number every removal bumps: a watcher of names re-reads them when it moved. */
  epoch(): number {
    return registryNative().regEpoch();
  },
  /** Creates the group's registry with room for `entries` names, or finds it; returns its capacity. */
  attach(entries: number): number {
    return registryNative().regAttach(entries);
  },
};
