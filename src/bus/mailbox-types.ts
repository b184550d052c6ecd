/**
 * The mailbox API's options and answers, and the codec ids a message carries in its flags (the
 * sender writes them, the receive loop and bursts read them).
 */
import { MessageCodec, SendStatus } from '../native/mailbox.js';
import type { MailboxMemoryOptions } from './attachment.js';

/**
 * @internal What {@link MailboxRef.offer} answers: the native send's status, or `noSuchMailbox`
 * when no mailbox of the group has the name.
 */
export const OfferStatus = { ...SendStatus, noSuchMailbox: 7 } as const;

/** What {@link MailboxRef.trySend} answers: sent, or which bound was hit (nothing was sent then). */
export type TrySendResult = 'sent' | 'mailbox-full' | 'inbox-full' | 'no-buffers';

/** A watched mailbox name went away: see {@link MailboxSystem.watch}. */
export interface MailboxGone {
  readonly name: string;
  /** 'closed': unregistered by its owner (or never there); 'process-died': its process died or left. */
  readonly reason: 'closed' | 'process-died';
  /** Pid of the process that held it, when known. */
  readonly pid?: number;
}

/** Options of {@link MailboxSystem.open}. */
export interface MailboxSystemOptions extends MailboxMemoryOptions {
  /**
   * How long one drain may wait on an empty inbox, in µs (default 10): spinning while a CPU is
   * free for it, yielding the CPU between looks at the inbox when more processes are runnable
   * than CPUs. 0: never wait in the drain.
   */
  spinUs?: number | undefined;
  /** Idle time after the last message before the receiver parks on its doorbell, in ms (default 1). */
  idleParkMs?: number | undefined;
  /** Whether open mailboxes keep the Node process alive, like a listening socket (default true). */
  keepAlive?: boolean | undefined;
}

/** Options of {@link MailboxSystem.open | opening} a mailbox. */
export interface MailboxOptions {
  /** Messages sent and not yet received that the mailbox accepts before senders see 'mailbox-full' (default 1024). */
  capacity?: number | undefined;
}

/** Options of {@link MailboxRef.send}. */
export interface SendOptions {
  /** How long to wait for room before rejecting with SEND_TIMEOUT (default 5000 ms). */
  timeoutMs?: number | undefined;
}

/** A message's codec (low bits of its flags): bytes as they were sent. */
export const CODEC_RAW = MessageCodec.raw;
/** A message's codec (low bits of its flags): msgpackr-encoded. */
export const CODEC_MSGPACK = MessageCodec.msgpack;
