/**
 * @internal This process's attachment to the group's mailbox memory: its slot in the process
 * table, its inbox, the shared buffer pool and the registry. Membership and mailboxes share it;
 * it is made once per process, on first use, and released when the runtime closes.
 */
import { MpBusError, ErrorCodes } from '../errors.js';
import { integerIn } from '../validation.js';
import { Runtime } from '../runtime/runtime.js';
import { addon } from '../native/addon.js';
import { DrainRow, mailboxNative, type Attached } from '../native/mailbox.js';
import { registry } from './registry.js';

/** Sizes of the group's shared mailbox objects. The first process to attach decides them. */
export interface MailboxMemoryOptions {
  /** Buffers in the group's shared pool (default 8192). */
  poolBuffers?: number | undefined;
  /** Bytes of one pool buffer, 32-byte header included (default 2048); larger messages use rte_malloc. */
  bufferSize?: number | undefined;
  /** Descriptors an inbox ring holds, a power of two (default 8192). */
  inboxSize?: number | undefined;
  /** Names the registry can hold (default 65536). */
  registryEntries?: number | undefined;
}

export interface Attachment extends Attached {
  rt: Runtime;
  /** Drained descriptors land here: DrainRow.burst rows of DrainRow.words words. */
  out: Uint32Array;
  /** Set by the mailbox system: called when the doorbell rang. */
  onWake: () => void;
  /** Close hooks of users of the attachment, run before the native detach. */
  beforeDetach: Array<() => void>;
}

/** The memory options' defaults. */
export const MEMORY_DEFAULTS: Required<MailboxMemoryOptions> = { poolBuffers: 8192, bufferSize: 2048, inboxSize: 8192, registryEntries: 65536 };

let current: Attachment | undefined;

/** How long {@link attachAsync} waits for another process that creates the group's objects or reaps our slot. */
const ATTACH_WAIT_MS = 5000;

/**
 * This process's attachment, made on first call. Never waits: when another process is still
 * creating the group's mailbox objects, or reaping the dead previous holder of this process's
 * slot (milliseconds, rare), it throws `EBUSY`; {@link attachAsync} waits for that instead.
 */
export function attach(options: MailboxMemoryOptions = {}): Attachment {
  const made = tryAttach(options);
  if (made) return made;
  throw new MpBusError(
    ErrorCodes.busy,
    "another process of the group is still creating its mailbox objects (or reaping the dead previous holder of this process's slot): retry in a few milliseconds, or open with `await MailboxSystem.openAsync()` (startActorSystem does), which waits for it",
  );
}

/**
 * This process's attachment, waiting (on timers, never on the JS thread) up to 5 s for another
 * process that is creating the group's mailbox objects or reaping this process's slot.
 */
export async function attachAsync(options: MailboxMemoryOptions = {}): Promise<Attachment> {
  const until = Date.now() + ATTACH_WAIT_MS;
  for (let delayMs = 1; ; delayMs = Math.min(delayMs * 2, 50)) {
    const made = tryAttach(options);
    if (made) return made;
    if (Date.now() >= until) {
      throw new MpBusError(
        ErrorCodes.timedOut,
        `the group's mailbox objects were still being created (or this process's slot reaped) by another process after ${ATTACH_WAIT_MS} ms: that process may have died mid-way; restart the group`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}

/** The shared memory's sizes asked for, checked (defaults filled in). @throws {MpBusError} `INVALID_OPTION`. */
export function memorySettings(options: MailboxMemoryOptions): Required<MailboxMemoryOptions> {
  const poolBuffers = integerIn(options.poolBuffers ?? MEMORY_DEFAULTS.poolBuffers, 'poolBuffers', 64, 1 << 22);
  const bufferSize = integerIn(options.bufferSize ?? MEMORY_DEFAULTS.bufferSize, 'bufferSize', 128, 1 << 20);
  const inboxSize = integerIn(options.inboxSize ?? MEMORY_DEFAULTS.inboxSize, 'inboxSize', 64, 1 << 24);
  if ((inboxSize & (inboxSize - 1)) !== 0) throw new MpBusError(ErrorCodes.invalidOption, `inboxSize must be a power of two, got ${inboxSize}`);
  const registryEntries = integerIn(options.registryEntries ?? MEMORY_DEFAULTS.registryEntries, 'registryEntries', 64, 1 << 24);
  return { poolBuffers, bufferSize, inboxSize, registryEntries };
}

/** The attachment, or undefined when the native side answered retryLater (another process is on it). */
function tryAttach(options: MailboxMemoryOptions): Attachment | undefined {
  const rt = Runtime.required('mailboxes and membership');
  if (current && current.rt === rt) return current;
  const { poolBuffers, bufferSize, inboxSize, registryEntries } = memorySettings(options);
  const out = new Uint32Array(DrainRow.burst * DrainRow.words);
  const native = mailboxNative();
  // Read by onWake (registered before the attachment exists), so declared first and assigned once.
  // eslint-disable-next-line prefer-const
  let self: Attachment | undefined;
  let attached: Attached;
  try {
    attached = native.mbxAttach({
      poolBuffers,
      bufferSize,
      inboxSize, // a DPDK ring of size N holds N-1 descriptors
      role: rt.processType === 'primary' ? 0 : 1,
      out,
      onWake: () => self?.onWake(),
    });
  } catch (err) {
    if ((err as MpBusError).code === addon().constants.errors.retryLater) return undefined;
    throw err;
  }
  try {
    registry.attach(registryEntries);
  } catch (err) {
    native.mbxDetach();
    throw err;
  }
  self = { ...attached, rt, out, onWake: () => {}, beforeDetach: [] };
  current = self;
  rt.onClose(() => detach(self));
  return self;
}

function detach(a: Attachment): void {
  if (current !== a) return;
  for (const hook of a.beforeDetach.splice(0).reverse()) hook();
  current = undefined;
  mailboxNative().mbxDetach();
}
