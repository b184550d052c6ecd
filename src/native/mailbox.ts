/**
 * Typings of native/mbx_*.cc (process table, inboxes, buffers, drain, doorbell) and
 * native/hash.cc (the rte_hash name registry). No policy: src/bus validates before calling.
 */
import { MpBusError, ErrorCodes } from '../errors.js';
import { addon, type NativeConstants } from './addon.js';

/** What {@link MailboxBinding.mbxSend} answers: the addon's `constants.mailbox.send`. */
export const SendStatus = {
  ok: 0,
  mailboxFull: 1,
  inboxFull: 2,
  noBuffers: 3,
  peerGone: 4,
  mailboxClosed: 5,
  /** A large message's block was refused by DPDK's heap, and no block in use would give memory back. */
  heapShort: 6,
} as const;

/** The layout of one drained descriptor in the output array: the addon's `constants.mailbox.row`. */
export const DrainRow = { burst: 256, words: 4, codecMask: 0x0f, large: 0x10, badShift: 8, senderShift: 16, byteMask: 0xff } as const;

/** A message's codec in its flags: the addon's `constants.mailbox.codec`. */
export const MessageCodec = { raw: 0, msgpack: 1 } as const;

/** Why a received descriptor was refused: the addon's `constants.mailbox.bad`. */
const BadReason = { outOfRange: 1, misaligned: 2, notInFlight: 3, magic: 4, version: 5, length: 6, codec: 7 } as const;

/** Why a received descriptor was refused, by the reason in its drained row's flags. */
export const BadDescriptor: Record<number, string> = {
  [BadReason.outOfRange]: 'points outside the buffer pool and the registered large blocks',
  [BadReason.misaligned]: 'points inside the pool but not at the start of a buffer',
  [BadReason.notInFlight]:
    'names a buffer that is not in flight to this process in that generation (sent twice, replayed after it was freed, reused after its sender freed it, or still being written)',
  [BadReason.magic]: 'buffer header has a bad magic number',
  [BadReason.version]: 'buffer header has an unknown version',
  [BadReason.length]: 'buffer header has a length larger than its buffer',
  [BadReason.codec]: 'buffer header names an unknown codec',
};

/** The tables above as the addon's constants are laid out, to compare them once. */
const named: NativeConstants['mailbox'] = { send: SendStatus, bad: BadReason, row: DrainRow, codec: MessageCodec };

/** Throws when the addon's mailbox constants are not the ones named above (an addon built from other sources). */
function checkConstants(constants: NativeConstants['mailbox']): void {
  for (const [group, table] of Object.entries(named) as Array<[keyof typeof named, Record<string, number>]>) {
    const native = constants[group] as Record<string, number>;
    for (const [key, value] of Object.entries(table)) {
      if (native[key] !== value) {
        throw new MpBusError(
          ErrorCodes.addonMissing,
          `the native addon's constants.mailbox.${group}.${key} is ${native[key]}, this TypeScript names ${value}: the addon was built from other sources; rebuild it (npm rebuild mpbus)`,
        );
      }
    }
  }
}

export interface AttachOptions {
  poolBuffers: number;
  bufferSize: number;
  inboxSize: number;
  /** 0 primary, 1 secondary */
  role: number;
  /** Receives drained descriptors: burst * 4 words. */
  out: Uint32Array;
  /** Called on the JS thread when a sender rang the doorbell of this (parked) process. */
  onWake: () => void;
}

export interface Attached {
  slot: number;
  generation: number;
  /** The whole buffer pool memzone, same bytes in every process. */
  pool: ArrayBuffer;
  maxInline: number;
  burst: number;
  poolBuffers: number;
  inboxSize: number;
}

export interface SlotInfo {
  slot: number;
  pid: number;
  generation: number;
  role: 'primary' | 'secondary';
  startTime: number;
  heartbeatMs: number;
}

export interface MailboxBinding {
  mbxAttach(options: AttachOptions): Attached;
  mbxDetach(): void;
  mbxOpen(capacity: number): number;
  mbxClose(id: number): void;
  mbxSend(slot: number, generation: number, mailboxId: number, codec: number, bytes: Uint8Array, start: number, end: number): number;
  /** Sends up to 256 small messages (message i is bytes[bounds[2i]..bounds[2i+1])) in one call: how many went, or -SendStatus. */
  mbxSendMany(slot: number, generation: number, mailboxId: number, codec: number, bytes: Uint8Array, bounds: Uint32Array, count: number): number;
  mbxDrain(spinUs: number): number;
  mbxTakeLarge(): Buffer[];
  mbxPark(): boolean;
  mbxKeepAlive(on: boolean): void;
  /** Marks this process as waiting for room at the mailbox's process: true when there is room already. */
  mbxWantRoom(slot: number, generation: number, mailboxId: number): boolean;
  /**
   * More of the group's processes awake on this process's CPUs than it has, or more tasks of any
   * program runnable than the machine has CPUs (recomputed at most every ms; native/mbx_room.cc).
   */
  mbxCrowded(): boolean;
  mbxDepth(slot: number, generation: number, mailboxId: number): number;
  /** Adds delta to the pending count of one of this process's mailboxes. */
  mbxAdjust(mailboxId: number, delta: number): void;
  /** While held (no subscriber), drained messages of the mailbox stay counted as pending. */
  mbxSetHold(mailboxId: number, hold: boolean): void;
  mbxScan(): {
    alive: SlotInfo[];
    reaped: Array<{ slot: number; pid: number; generation: number }>;
    /** Free slots and how their last process ended. */
    exits: Array<{ slot: number; generation: number; reason: 'left' | 'died' }>;
  };
  mbxInboxName(slot: number): string;
  /**
   * The group pool's layout and use; `takeConflicts` / `freeConflicts` count buffers the pool
   * handed out while someone held them, and buffers that were not ours when we came to free
   * them (docs/mailboxes.md, "Ownership"). `largeKept` counts idle large blocks kept for reuse;
   * `largeHeapCalls` this process's calls into DPDK's heap for them, `largeArenaUsed` the bytes
   * of the group's arena carved into blocks (docs/mailboxes.md, "Large messages").
   */
  mbxPoolInfo(): { firstObject: bigint; poolBase: bigint; stride: number; count: number; available: number; largeInUse: number; largeKept: number; largeHeapCalls: number; largeArenaUsed: number; takeConflicts: number; freeConflicts: number };
}

/** The addon's mailbox functions (loads the addon on first use). */
let checked = false;

/** The mailbox functions of the addon; the first call checks the addon's constants against the tables above. */
export function mailboxNative(): MailboxBinding {
  const binding = addon();
  if (!checked) {
    checkConstants(binding.constants.mailbox);
    checked = true;
  }
  return binding as unknown as MailboxBinding;
}
