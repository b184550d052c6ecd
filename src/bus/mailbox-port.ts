/**
 * What the mailboxes, the send handles and the receive loop of one process share: the native
 * binding and the group's buffer pool, the codecs, the staging area of batched sends, the
 * mailboxes open here by id, error reporting, and whether the mailbox system is closed. Each
 * native call of a send or of a mailbox goes through here, once, with no policy of its own.
 */
import { Subject } from 'rxjs';
import { Packr, Unpackr } from 'msgpackr';
import { MpBusError, ErrorCodes } from '../errors.js';
import { logger } from '../log.js';
import { mailboxNative, type MailboxBinding } from '../native/mailbox.js';
import type { Attachment } from './attachment.js';
import { registry, type MailboxAddress } from './registry.js';
import { burstOf, burstValues, type BurstBuilder, type MessageBurst } from './message-burst.js';
import type { Mailbox, MailboxHost } from './local-mailbox.js';

export class MailboxPort implements MailboxHost {
  readonly native: MailboxBinding;
  readonly att: Attachment;
  /** The shared buffer pool as JS sees it (bursts and received messages are views of it). */
  readonly pool: Buffer;
  /** The mailboxes open in this process, by id (the receive loop demultiplexes with it). */
  readonly boxes = new Map<number, Mailbox<unknown>>();
  readonly packr = new Packr({ useRecords: false });
  readonly unpackr = new Unpackr({ useRecords: false, copyBuffers: true });
  /**
   * Decodes large messages, whose bytes were already copied out of shared memory into a Buffer
   * of their own: byte strings in them are views of that Buffer, not copies (one copy of a
   * 4 MiB value less per message).
   */
  readonly largeUnpackr = new Unpackr({ useRecords: false, copyBuffers: false });
  /**
   * Staging area of batched sends: up to 256 messages in 64 KiB; message i is
   * bytes[bounds[2i] .. bounds[2i+1]).
   */
  readonly staging = { bytes: Buffer.allocUnsafe(1 << 16), bounds: new Uint32Array(512) };
  /**
   * Packs batched values straight into the staging bytes (no copy out of msgpackr's own buffer:
   * measured ~30 ns per message at the sender). msgpackr's buffer and position are shared by
   * every Packr of the process (module state, whatever the instance): a batch gives them back as
   * it found them (MailboxRef.offerMany), since other packs may keep views of that buffer.
   */
  readonly stagingPackr = new Packr({ useRecords: false });
  readonly errors = new Subject<MpBusError>();
  /** Set once by the mailbox system's shutdown (with the runtime). */
  closed = false;
  private readonly keepAlive: boolean;
  private readonly log = logger('mailbox');

  constructor(att: Attachment, keepAlive: boolean) {
    this.att = att;
    this.native = mailboxNative();
    this.pool = Buffer.from(att.pool);
    this.keepAlive = keepAlive;
  }

  assertOpen(): void {
    if (this.closed) throw new MpBusError(ErrorCodes.closed, 'the mailbox system is closed (its runtime closed)');
  }

  /** Largest payload (bytes) that fits in one pool buffer. */
  get maxInlineBytes(): number {
    return this.att.maxInline;
  }

  /** Send calls so far (single or batched): the pump tells from it whether this process sent since its last turn. */
  sends = 0;

  /** True when waiting should sleep, not spin (see `MailboxSystem.crowded`). */
  get crowded(): boolean {
    return !this.closed && this.native.mbxCrowded();
  }

  nativeSend(at: MailboxAddress, codec: number, bytes: Uint8Array, start: number, end: number): number {
    this.assertOpen();
    this.sends++;
    return this.native.mbxSend(at.slot, at.generation, at.id, codec, bytes, start, end);
  }

  nativeSendMany(at: MailboxAddress, codec: number, bytes: Uint8Array, bounds: Uint32Array, count: number): number {
    this.assertOpen();
    this.sends++;
    return this.native.mbxSendMany(at.slot, at.generation, at.id, codec, bytes, bounds, count);
  }

  nativeDepth(at: MailboxAddress): number {
    return this.native.mbxDepth(at.slot, at.generation, at.id);
  }

  setHold(id: number, hold: boolean): void {
    if (!this.closed) this.native.mbxSetHold(id, hold);
  }

  adjustDepth(id: number, delta: number): void {
    if (!this.closed) this.native.mbxAdjust(id, delta);
  }

  /** Counts a mailbox just opened (and registered) here as one the receive loop delivers to. */
  addBox(box: Mailbox<unknown>): void {
    this.boxes.set(box.address.id, box);
    if (this.boxes.size === 1 && this.keepAlive) this.native.mbxKeepAlive(true);
  }

  closeBox(box: Mailbox<unknown>): void {
    registry.remove(box.name, box.address);
    this.native.mbxClose(box.address.id);
    this.boxes.delete(box.address.id);
    if (this.boxes.size === 0 && this.keepAlive) this.native.mbxKeepAlive(false);
  }

  reportError(err: MpBusError): void {
    this.log.debug({ code: err.code }, err.message);
    this.errors.next(err);
  }

  burstOf(value: unknown): MessageBurst {
    return burstOf(value, this.packr, this.unpackr);
  }

  takeValues(gathered: BurstBuilder): unknown[] {
    return burstValues(gathered.take(this.pool, this.unpackr), (err) => this.reportError(err));
  }
}
