/**
 * The small interface the actor system needs from the layer below it. The actor system never
 * talks to DPDK itself: it delivers {@link Envelope}s to named addresses and is told when names
 * go away. Two implementations exist: {@link InProcessTransport} (one process, any number of
 * systems, used by unit tests and single-process apps) and the mailbox transport (any process of
 * a DPDK group to any other, over rings in hugepage memory).
 */
import type { Observable } from 'rxjs';

/** What kind of message an {@link Envelope} carries. */
export const EnvelopeKind = {
  /** Fire-and-forget message for an actor. */
  tell: 0,
  /** A request: the receiver answers to `replyTo` with `id`. */
  ask: 1,
  /** A successful answer to an ask. */
  reply: 2,
  /** A failed answer to an ask: `payload` is a {@link WireError}. */
  failure: 3,
} as const;
export type EnvelopeKind = (typeof EnvelopeKind)[keyof typeof EnvelopeKind];

/**
 * One message on the wire. Everything in it must survive msgpack encoding (plain data), because
 * across processes it is encoded into shared memory.
 */
export interface Envelope {
  kind: EnvelopeKind;
  /** Action name: selects the handler. Empty for replies. */
  action: string;
  payload: unknown;
  /** Correlation id of an ask (unique within the asking system). */
  id?: number;
  /** Address the answer of an ask goes to (the asking system's reply mailbox). */
  replyTo?: string;
  /** Name of the sending actor, when a handler sent it. */
  sender?: string;
  /** Asks: when the asker stops waiting (Date.now() clock of this host); nested asks made while handling it end no later. */
  deadline?: number;
  /**
   * Trace context. With an OpenTelemetry SDK registered: W3C `traceparent` of the sending span,
   * then a space and `tracestate` when there is one (see `tracing.ts`). Without one: inherited
   * by the messages a handler sends while handling this one.
   */
  trace?: string;
}

/**
 * Makes an envelope. Every envelope of the actor layer is made here, with all its fields in one
 * order (absent ones undefined): one object shape from `ask` to the wire and back, so the code
 * that reads envelopes stays monomorphic (envelopes built field by field came in up to eight
 * shapes, and every reader of them was megamorphic).
 */
export function makeEnvelope(
  kind: EnvelopeKind,
  action: string,
  payload: unknown,
  id?: number,
  replyTo?: string,
  sender?: string,
  deadline?: number,
  trace?: string,
): Envelope {
  return { kind, action, payload, id, replyTo, sender, deadline, trace };
}

/** What the path in an ENCODE_FAILED error starts with, by envelope kind (`msg.items[3].cb`). */
export const payloadRoot = ['msg', 'msg', 'reply', 'error'] as const;

/** An error as it travels in a failure reply. */
export interface WireError {
  name: string;
  code: string;
  message: string;
  /** The stack where it was thrown (older senders leave it out). */
  stack?: string;
  /** Pid of the process it was thrown in. */
  pid?: number;
  /** Its own enumerable fields besides `code` (custom fields), those that can cross. */
  fields?: Record<string, unknown>;
  /** Its `cause`, when it had one that can cross (else a note saying it could not). */
  cause?: unknown;
  /**
   * True when a handler threw it: its code is then the handler's own (a nested ask's
   * `ACTOR_NOT_FOUND`, say) and never this system's word that the asked actor is gone.
   */
  thrown?: boolean;
}

/** Why a message became a dead letter. */
export type DeadLetterReason =
  | 'unknown-actor'
  | 'stopped'
  | 'no-handler'
  /** An answer whose asker had stopped waiting: the ask timed out, or its asking system closed. */
  | 'late-reply'
  | 'closed'
  | 'no-workers'
  /** A message a consistent-hash router could not place: its `key` function threw, or gave no string (nor number). */
  | 'key-failed'
  | 'mailbox-full'
  | 'encode-failed'
  /** A message from another process whose value this process could not decode (another mpbus version, a class registered differently). */
  | 'decode-failed'
  /**
   * An ask whose asker had stopped waiting before the actor came to it (its deadline passed), or
   * while it still waited in its sender for room in the actor's full mailbox (its deadline
   * passed, or its signal aborted): not handled, not answered.
   */
  | 'expired';

/** What happened to one delivery attempt. */
export type DeliveryStatus = 'delivered' | 'unknown' | 'full';

/** The receiving side of a registered name. */
export interface Receiver {
  /** Called once per envelope, in the order sent by each sender. Must not throw. */
  receive(envelope: Envelope): void;
  /** Messages waiting to be processed (for least-loaded routing). */
  depth(): number;
  /**
   * True when the receiver reports each message it finished with `Registration.settle`: the
   * transport then counts received-but-unfinished messages in the mailbox's depth (what
   * routers in other processes see) and against its capacity (senders see 'full').
   */
  readonly settles?: boolean;
  /**
   * Optional, for the name a system's answers come back to: an answer (`reply` or `failure`)
   * handed over as its fields, without an {@link Envelope} made for it. A transport that
   * decodes messages (the mailbox transport) calls it instead of `receive` for answers; others
   * may call `receive` as for any message.
   */
  answer?(kind: typeof EnvelopeKind.reply | typeof EnvelopeKind.failure, id: number | undefined, payload: unknown, action: string): void;
}

/** A name registered by this process; `close()` unregisters it (peers see it go). */
export interface Registration {
  readonly name: string;
  close(): void;
  /** The receiver finished `count` messages (only for receivers with `settles`). */
  settle?(count: number): void;
}

/** A name that went away: unregistered, or its whole process died. */
export interface NameGone {
  name: string;
  reason: 'stopped' | 'process-exited';
  pid?: number;
}

/** A change of a group's membership. */
export interface MembershipChange {
  group: string;
  name: string;
  change: 'joined' | 'left';
}

/** Where a registered name lives. */
export interface Location {
  pid: number;
  /** True when the name is served by this very transport (this system). */
  local: boolean;
}

/** The transport contract the {@link ActorSystem} is written against. */
export interface ActorTransport {
  /** Unique id of this endpoint in the group (used to build reply addresses). */
  readonly nodeId: string;
  /** Pid of the process this transport runs in. */
  readonly pid: number;
  /** Registers `name` for this process. Throws `ACTOR_NAME_TAKEN` when the name is in use anywhere in the group. */
  register(name: string, receiver: Receiver): Registration;
  /** Delivers without blocking: 'unknown' when no one holds the name, 'full' when its mailbox has no room now. */
  deliver(to: string, envelope: Envelope): DeliveryStatus;
  /** Where `name` lives, or undefined. */
  lookup(name: string): Location | undefined;
  /**
   * Resolves when `name`'s mailbox may have room again after `deliver` answered 'full' (its
   * receiver drained). Optional: without it, the system retries on the next turn of the event
   * loop. It does not reserve room; it may also reject (the name went away: deliver says so).
   */
  waitForRoom?(name: string): Promise<void>;
  /**
   * Where messages go that `deliver` accepted ('delivered') but that the transport could not
   * send after all (optional: for transports that send later, e.g. batched at the end of the
   * turn): the name went away meanwhile, or, with `cause`, the message does not encode; `reason`,
   * when given, is the dead letter's reason instead.
   */
  onUndeliverable?(handler: (to: string, envelope: Envelope, cause?: unknown, reason?: DeadLetterReason) => void): void;
  /**
   * When (`performance.now()`) `name`, which `deliver` just found no one holds, went away as this
   * transport saw it (a send found its mailbox gone; or it was there at the last send and its
   * going is not reported on {@link gone$} yet: now), or undefined when it does not know it went
   * (optional; an ask to a name that went within the system's `goneGraceMs` fails after it).
   */
  wentAt?(name: string): number | undefined;
  /**
   * The system began to close (optional): messages stop coming from where another process can
   * take them instead (the cluster bridge leaves the queue groups of this process's names and
   * tells the other hosts they are gone, so that their asks go to another host serving the
   * name); what was delivered already is still handled and answered. Resolves once what was on
   * its way has been delivered (the system waits, up to its close's deadline).
   */
  leaving?(): Promise<void>;
  /**
   * Messages `deliver` accepted that still wait to be sent (for room in a full mailbox), when the
   * transport keeps any: a closing system lets them go before its deadline (optional).
   */
  unsent?(): number;
  /**
   * Resolves the next time nothing waits in the transport to be sent ({@link unsent} is 0): at
   * once when nothing does (optional, with {@link unsent}; the system polls without it).
   */
  whenSent?(): Promise<void>;
  /**
   * Delivers at once what already reached this process and waits to be received (in the
   * mailbox transport, its inbox ring): a closing system takes it in before it refuses new
   * messages (optional).
   */
  takeArrived?(): void;
  /**
   * Takes the messages still waiting to be sent, which will not go now (the system is closing):
   * the system makes them dead letters (optional, with {@link unsent}).
   */
  takeUnsent?(): Array<{ to: string; envelope: Envelope }>;
  /**
   * The asker gave up on its asks `ids` (answers to `replyTo`): their signal aborted. A
   * transport that keeps asks to send later (for room in a full mailbox, or until the cluster is
   * back) or to send again drops them, so that what their caller called off does not run after
   * all (optional). An answer that still comes is a late reply.
   */
  cancelAsks?(replyTo: string, ids: readonly number[]): void;
  /**
   * Asks `ids` (answering to `replyTo`) that still wait in this transport to be sent to `to` do
   * not go: a router gives them to another worker, `to` having stalled (optional). A transport
   * that keeps none, or cannot tell, does nothing: those asks may then be handled twice.
   */
  takeBackAsks?(to: string, replyTo: string, ids: readonly number[]): void;
  /** Messages waiting in `name`'s mailbox, when the transport can tell. */
  depth(name: string): number | undefined;
  /** Names that went away (unregistered anywhere, or the owning process died). */
  readonly gone$: Observable<NameGone>;
  /** Adds `name` (registered by this transport) to `group`. */
  join(group: string, name: string): void;
  /** Removes `name` from `group`. */
  leave(group: string, name: string): void;
  /** Current members of `group`, across the whole process group. */
  members(group: string): string[];
  /** Joins and leaves of every group (leaves include members whose process died). */
  readonly membership$: Observable<MembershipChange>;
  /** Resolves once the transport can reach every peer it is meant to (optional: most are ready at once). */
  ready?(): Promise<void>;
  /** Unregisters every name of this transport and releases its resources. */
  close(): Promise<void>;
}

/** Something registered under a name that is not an actor cell (routers). */
export interface SystemEndpoint extends Receiver {
  stop(): Promise<void>;
}
