/**
 * Every failure mpbus reports is an {@link MpBusError}: a `code` to branch on, and a message that
 * names the cause and, where there is one, the fix.
 */
import { inspect } from 'node:util';

/** A failure of mpbus: `code` says which, the message says why and how to fix it. */
export class MpBusError extends Error {
  /** Stable machine-readable code, e.g. `EEXIST`, `NO_PRIMARY`, `HUGEPAGES_NOT_RESERVED`. */
  readonly code: string;
  /**
   * The errno / rte_errno value behind the failure, when DPDK or the kernel gave one. (Declared,
   * not a class field: a field would be an own `errno: undefined` on every error, shown
   * whenever one is printed.)
   */
  declare errno?: number;
  /**
   * Where in a value the failure is (`ENCODE_FAILED`, `DECODE_FAILED`: `msg.items[3].at`, say),
   * when the value was walked to find it. (Declared, as `errno` is.)
   */
  declare path?: string;

  constructor(code: string, message: string, options?: { cause?: unknown; errno?: number | undefined }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MpBusError';
    this.code = code;
    if (options?.errno !== undefined) this.errno = options.errno;
  }
}

/**
 * Makes an error without capturing the stack where it is made: for errors that settle an ask
 * from a timer or from what the transport delivered, where the stack would name only mpbus's
 * own frames (the asker's frames are not on it) and capturing it costs ~2.3 µs an error (a
 * close with 300,000 asks in flight spent a third of its 3.5 s there).
 */
export function withoutStack<T extends Error>(make: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Codes mpbus itself raises (DPDK errno names such as `EEXIST` come through as well). */
export const ErrorCodes = {
  invalidOption: 'INVALID_OPTION',
  hugepagesNotReserved: 'HUGEPAGES_NOT_RESERVED',
  hugetlbfsNotMounted: 'HUGETLBFS_NOT_MOUNTED',
  permissionDenied: 'PERMISSION_DENIED',
  noPrimary: 'NO_PRIMARY',
  primaryDead: 'PRIMARY_DEAD',
  primaryExists: 'PRIMARY_EXISTS',
  lcoreInUse: 'LCORE_IN_USE',
  /** The primary is not an mpbus process, so 'auto' cannot know which lcore IDs are free. */
  lcoreRequired: 'LCORE_REQUIRED',
  noFreeLcore: 'NO_FREE_LCORE',
  settingsMismatch: 'SETTINGS_MISMATCH',
  /** The process may not make the memory-policy calls (get_mempolicy, ...) DPDK's memory needs: a container's seccomp profile. */
  memPolicyDenied: 'MEMPOLICY_DENIED',
  groupBusy: 'GROUP_BUSY',
  /** rte_eal_init failed and no more specific code fits; the message quotes DPDK's log. */
  ealInitFailed: 'EAL_INIT_FAILED',
  /** DPDK rejected the command line built from the options and extraEalArgs. */
  invalidEalArgs: 'INVALID_EAL_ARGS',
  /** Hugepages are reserved but too few are free for the memory asked (memoryMb, socketMemMb). */
  hugepagesShort: 'HUGEPAGES_SHORT',
  /**
   * A thread (DPDK's, or one of mpbus's) could not be started: the process reached its limit of
   * tasks (a pids cgroup's pids.max, ulimit -u).
   */
  threadLimit: 'THREAD_LIMIT',
  /**
   * DPDK could not open the hugepage files the memory asked needs: one per page, past the
   * process's open-files limit (ulimit -n).
   */
  openFilesLimit: 'OPEN_FILES_LIMIT',
  /** A secondary could not map the group's memory at the primary's addresses. */
  addressSpaceTaken: 'ADDRESS_SPACE_TAKEN',
  alreadyStarted: 'EALREADY',
  /**
   * A runtime was asked for in a worker thread: it runs on the process's main thread only
   * (signals reach only that thread, and a worker's end would leave the group's files behind).
   */
  mainThreadOnly: 'MAIN_THREAD_ONLY',
  /** This process already runs a runtime of another group (or of another role) than the one asked for. */
  otherGroup: 'OTHER_GROUP',
  /** The group's primary runs in another PID namespace (another container): its processes must share one. */
  otherPidNamespace: 'OTHER_PID_NAMESPACE',
  /** The primary of this secondary's group died: the group's shared state can no longer be trusted. */
  primaryLost: 'PRIMARY_LOST',
  closed: 'CLOSED',
  /** Another process holds what this call needs for a moment (a slot being reaped, group objects being made): retry. */
  busy: 'EBUSY',
  /** What was waited for did not happen in time. */
  timedOut: 'ETIMEDOUT',
  notReady: 'ENOTREADY',
  addonMissing: 'ADDON_MISSING',
  // shared-memory objects (src/shm): errno-style like the codes DPDK reports for the same causes
  invalidArgument: 'EINVAL',
  nameTooLong: 'ENAMETOOLONG',
  outOfRange: 'ERANGE',
  exists: 'EEXIST',
  notFound: 'ENOENT',
  /** An address that is not an object of the mempool it was checked against. */
  notInPool: 'NOT_IN_POOL',
  /** A ring, mempool or memzone used after free() in this process. */
  freed: 'FREED',
  /**
   * An operation on a multi-producer (multi-consumer) ring that another process began has not
   * finished for 2 s: its process was most likely killed inside it, which leaves the ring stuck
   * for good (docs/shared-memory-objects.md, "Rings and a process killed inside an operation").
   */
  ringStuck: 'RING_STUCK',
  /** No ethdev port with that id in the group. */
  unknownPort: 'UNKNOWN_PORT',
  /** The PMD (or this machine) lacks what was asked, e.g. a link status interrupt. */
  notSupported: 'NOT_SUPPORTED',
  /** Only the primary can do this (DPDK delivers interrupts to the primary only). */
  primaryOnly: 'PRIMARY_ONLY',
  // mailboxes (src/bus/mailbox.ts)
  invalidName: 'INVALID_NAME',
  nameTaken: 'NAME_TAKEN',
  noSuchMailbox: 'NO_SUCH_MAILBOX',
  mailboxClosed: 'MAILBOX_CLOSED',
  peerGone: 'PEER_GONE',
  sendTimeout: 'SEND_TIMEOUT',
  badDescriptor: 'BAD_DESCRIPTOR',
  decodeFailed: 'DECODE_FAILED',
  /** A value could not be encoded for the wire (msgpack takes plain data). */
  encodeFailed: 'ENCODE_FAILED',
  /**
   * A message larger than the cluster's NATS servers take (their max_payload), or than the
   * hugepage memory its group can have (all the machine's hugepages; or, when no message in
   * flight would give memory back, what is free now within what bounds it: a hugetlb cgroup's
   * limit, a hugetlbfs mount's size=, the open-files limit, --socket-limit).
   */
  messageTooLarge: 'MESSAGE_TOO_LARGE',
  deadLetter: 'DEAD_LETTER',
} as const;

/** A message refused for its size: larger than a cluster's NATS servers take, or than the hugepage memory its group can have. */
export function isTooLarge(err: unknown): err is MpBusError {
  return err instanceof MpBusError && err.code === ErrorCodes.messageTooLarge;
}

/**
 * What a thrown value says, as text, whatever was thrown: its `message` when that is a string
 * (an `Error`, or an object that reads as one), a string itself, else the value inspected.
 * `String(value)` threw for an object without a prototype (`Object.create(null)`), and a handler
 * that threw one crashed its process where its failure was reported.
 */
export function describeThrown(value: unknown): string {
  try {
    const message = typeof value === 'object' && value !== null ? (value as { message?: unknown }).message : undefined;
    if (typeof message === 'string') return message;
    return typeof value === 'string' ? value : inspect(value, { depth: 2, breakLength: Infinity });
  } catch {
    // a getter or proxy trap that throws
    return 'a thrown value that could not be read';
  }
}
