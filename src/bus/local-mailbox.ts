/**
 * A mailbox open in this process: its subscribers (per message or per burst), the messages that
 * wait for the first subscriber, its depth, and closing it. The receive loop
 * (src/bus/mailbox-pump.ts) hands it what the drain found for it.
 */
import { Observable, type Subscriber } from 'rxjs';
import type { Unpackr } from 'msgpackr';
import { MpBusError, ErrorCodes } from '../errors.js';
import type { MailboxAddress } from './registry.js';
import { BurstBuilder, type MessageBurst } from './message-burst.js';

/** What a mailbox asks of its process's mailbox machinery (src/bus/mailbox-port.ts). */
export interface MailboxHost {
  /** Whether the mailbox's undelivered messages count as pending (held) against its capacity. */
  setHold(id: number, hold: boolean): void;
  adjustDepth(id: number, delta: number): void;
  nativeDepth(at: MailboxAddress): number;
  /** Unregisters the mailbox and frees its native side (its own state is closed by the mailbox). */
  closeBox(box: Mailbox<unknown>): void;
  reportError(err: MpBusError): void;
  /** A burst of one for a message that waited for the first burst subscriber. */
  burstOf(value: unknown): MessageBurst;
  /** What `gathered` holds as messages$ would give it (copies: its views of the pool expire). */
  takeValues(gathered: BurstBuilder): unknown[];
}

/**
 * Takes a message from its bytes, `bytes[start .. start + length)` (valid during the call
 * only), handing it to its consumer itself: true when it did, false to have it decoded and
 * delivered as usual. `decodeFrom(skip, end)` decodes the message's bytes from `start + skip` to
 * `start + end` (default: its end) as one msgpack value, as the whole message would be (it
 * throws when they do not decode: the reader then answers false, and the whole message's decode
 * reports it as before).
 */
export type BytesReader = (bytes: Buffer, start: number, length: number, decodeFrom: (skip: number, end?: number) => unknown) => boolean;

/** A mailbox open in this process. */
export class Mailbox<T = unknown> {
  /**
   * The subscribers, called directly rather than through a Subject: with one subscriber (the
   * usual case) a message costs one `Subscriber.next`, without a Subject's per-value error
   * context and observer snapshot (measured ~30 ns per message at the receiver).
   */
  private readonly subscribers = new Set<Subscriber<T>>();
  private single: Subscriber<T> | undefined;
  private readonly burstSubscribers = new Set<Subscriber<MessageBurst>>();
  /** @internal set while {@link bursts$} has subscribers: drained messages gather here. */
  burst: BurstBuilder | undefined;
  private backlog: T[] = [];
  private closedFlag = false;
  /**
   * @internal set while the only subscriber is a `consume` that reads some messages from their
   * bytes (its `fromBytes`): the receive loop offers it each small msgpack message before
   * decoding it, and a message it took is not decoded or delivered again. (Kept up to date
   * where the subscribers change, not derived per message: the loop reads it for each one.)
   */
  fromBytes: BytesReader | undefined = undefined;
  private bytesReader: { subscriber: Subscriber<T>; read: BytesReader } | undefined;
  /** @internal a message whose value does not decode is delivered with an `UndecodableValue` in its place (see {@link consume}). */
  tolerant = false;
  /**
   * The messages, in the order each sender sent them. Messages that arrive while nobody is
   * subscribed wait for the first subscriber, and count against the capacity meanwhile (so
   * senders see 'mailbox-full' rather than messages being dropped).
   */
  readonly messages$: Observable<T>;
  /**
   * The messages in bursts: each drain of the process's inbox hands this mailbox's messages
   * over at once, as views of the shared buffers (valid during the emission only), without a
   * Buffer, a copy, a decode or an emission per message: the fastest way to consume raw bytes.
   * A mailbox is consumed either per message or per burst: subscribing to both is refused.
   * Messages that arrived before the first subscriber come as bursts of one.
   */
  readonly bursts$: Observable<MessageBurst>;

  /** @internal */
  constructor(
    private readonly host: MailboxHost,
    readonly name: string,
    readonly address: MailboxAddress,
    readonly capacity: number,
  ) {
    this.bursts$ = new Observable<MessageBurst>((subscriber) => {
      if (this.closedFlag) {
        subscriber.complete();
        return undefined;
      }
      if (this.subscribers.size > 0) {
        subscriber.error(new MpBusError(ErrorCodes.invalidOption, `mailbox '${this.name}' is consumed per message (messages$): it cannot also give bursts`));
        return undefined;
      }
      this.burstSubscribers.add(subscriber);
      if (this.burstSubscribers.size === 1) {
        this.burst = new BurstBuilder();
        this.replayBacklog((value) => subscriber.next(this.host.burstOf(value)));
      }
      return () => {
        if (!this.burstSubscribers.delete(subscriber) || this.burstSubscribers.size > 0) return;
        const gathered = this.burst;
        this.burst = undefined;
        if (this.closedFlag) return;
        this.host.setHold(this.address.id, true);
        // Unsubscribed in the middle of a drain (from another mailbox's emission): what this
        // mailbox had gathered waits for the next subscriber like any message that finds none.
        if (gathered !== undefined && gathered.count > 0) {
          const kept = this.host.takeValues(gathered);
          this.host.adjustDepth(this.address.id, kept.length);
          for (const value of kept) this.deliver(value as T);
        }
      };
    });
    this.messages$ = new Observable<T>((subscriber: Subscriber<T>) => this.addSubscriber(subscriber));
  }

  /**
   * @internal A subscriber of {@link messages$} without rxjs in between: `next` is called with
   * each message as a `messages$` subscriber's would be (in order, backlog first), with no
   * Subscriber wrappers around it (three calls and a try block per message). For consumers of
   * this package (the actor transport) whose `next` does not throw. Throws where `messages$`
   * would error (the mailbox gives bursts). `tolerant`: a message with an extended value that
   * does not decode comes with an `UndecodableValue` in that value's place (the consumer
   * answers for it), not only as an error on the mailbox system. `fromBytes`: offered each small
   * msgpack message before it is decoded, while this is the mailbox's only subscriber; a
   * message it takes (it returns true) is not decoded or given to `next`.
   */
  consume(next: (value: T) => void, options: { tolerant?: boolean; fromBytes?: BytesReader } = {}): { unsubscribe(): void } {
    if (options.tolerant) this.tolerant = true;
    if (this.burstSubscribers.size > 0 && !this.closedFlag) {
      throw new MpBusError(ErrorCodes.invalidOption, `mailbox '${this.name}' is consumed in bursts (bursts$): it cannot also give single messages`);
    }
    const direct = { next, error: () => undefined, complete: () => undefined } as unknown as Subscriber<T>;
    if (options.fromBytes !== undefined) this.bytesReader = { subscriber: direct, read: options.fromBytes };
    const teardown = this.addSubscriber(direct);
    return { unsubscribe: teardown ?? (() => undefined) };
  }

  /** The `fromBytes` of `consume`, while its subscriber is the only one. */
  private readerOfSingle(): BytesReader | undefined {
    const reader = this.bytesReader;
    return reader !== undefined && this.single === reader.subscriber ? reader.read : undefined;
  }

  private addSubscriber(subscriber: Subscriber<T>): (() => void) | undefined {
    if (this.closedFlag) {
      subscriber.complete();
      return undefined;
    }
    if (this.burstSubscribers.size > 0) {
      subscriber.error(new MpBusError(ErrorCodes.invalidOption, `mailbox '${this.name}' is consumed in bursts (bursts$): it cannot also give single messages`));
      return undefined;
    }
    this.subscribers.add(subscriber);
    this.single = this.subscribers.size === 1 ? subscriber : undefined;
    this.fromBytes = this.readerOfSingle();
    if (this.subscribers.size === 1) this.replayBacklog((value) => subscriber.next(value));
    return () => {
      if (!this.subscribers.delete(subscriber)) return;
      const [only] = this.subscribers;
      this.single = this.subscribers.size === 1 ? only : undefined;
      if (this.bytesReader?.subscriber === subscriber) this.bytesReader = undefined;
      this.fromBytes = this.readerOfSingle();
      if (this.subscribers.size === 0 && !this.closedFlag) this.host.setHold(this.address.id, true);
    };
  }

  /** The first subscriber of either kind: drained messages are delivered at once from now on. */
  private replayBacklog(emit: (value: T) => void): void {
    // They stop counting as pending.
    this.host.setHold(this.address.id, false);
    const waiting = this.backlog;
    this.backlog = [];
    if (waiting.length > 0) this.host.adjustDepth(this.address.id, -waiting.length);
    for (const v of waiting) emit(v);
  }

  /** @internal hands what the drain gathered over to the burst subscribers */
  emitBurst(bytes: Buffer, unpackr: Unpackr): void {
    if (this.burst === undefined || this.burst.count === 0) return;
    const burst = this.burst.take(bytes, unpackr);
    for (const subscriber of [...this.burstSubscribers]) subscriber.next(burst);
  }

  /** Messages sent to this mailbox and not yet received (what a least-loaded router reads). */
  get depth(): number {
    return Math.max(0, this.host.nativeDepth(this.address));
  }

  /**
   * Counts messages that the receiver queues itself (e.g. an actor's queue while its handler
   * runs) in {@link depth} and against the capacity: +n when queued, -n when done. Senders then
   * see 'mailbox-full' when the consumer, not only the ring, falls behind.
   */
  addDepth(delta: number): void {
    if (!Number.isInteger(delta)) throw new MpBusError(ErrorCodes.invalidOption, `addDepth takes an integer, got ${String(delta)}`);
    if (!this.closedFlag && delta !== 0) this.host.adjustDepth(this.address.id, delta);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** @internal */
  deliver(value: T): void {
    const single = this.single;
    if (single !== undefined) {
      single.next(value);
    } else if (this.subscribers.size > 0) {
      for (const subscriber of [...this.subscribers]) subscriber.next(value);
    } else if (this.backlog.length < this.capacity * 2) {
      this.backlog.push(value); // still counted as pending (held): senders see 'mailbox-full'
    } else {
      this.host.reportError(
        new MpBusError(ErrorCodes.deadLetter, `mailbox '${this.name}' has no subscriber and ${this.backlog.length} messages waiting: a message was dropped`),
      );
    }
  }

  /** Unregisters the name; senders get MAILBOX_CLOSED (or reach a mailbox reopened under that name). */
  close(): void {
    if (this.closedFlag) return;
    this.host.closeBox(this);
    this.closeLocal();
  }

  /** @internal */
  closeLocal(): void {
    this.closedFlag = true;
    const subscribers = [...this.subscribers];
    const burstSubscribers = [...this.burstSubscribers];
    this.subscribers.clear();
    this.burstSubscribers.clear();
    this.single = undefined;
    this.fromBytes = undefined;
    this.burst = undefined;
    for (const subscriber of subscribers) subscriber.complete();
    for (const subscriber of burstSubscribers) subscriber.complete();
  }
}
