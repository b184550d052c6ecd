/**
 * {@link MailboxTransport}: the actor transport across the processes of a DPDK group, over
 * mpbus mailboxes (one inbox ring per process in hugepage memory, a shared name registry,
 * a process table that notices dead processes).
 *
 * - Each actor name is a mailbox name; an envelope travels msgpack-encoded as a small array.
 * - Group membership ("workers") is kept in the same registry, as alias names
 *   `$g.<group>.<name>` that point at the member's mailbox: the registry removes them with the
 *   rest of a dead process's names, so a killed worker leaves its groups too.
 * - Names going away are noticed in two ways: at once when the owning process is reported dead
 *   by the membership (SIGKILL included), and by a light poll of the names this process cares
 *   about (those it sends to, looks up or watches) for names unregistered elsewhere. The poll
 *   runs every `pollMs` while the transport is in use or the registry changes, and backs off to
 *   `idlePollMs` while nothing happens, so an idle process is not woken ten times a second.
 */
import { Subject, type Observable, type Subscription } from 'rxjs';
import { ErrorCodes, MpBusError } from '../errors.js';
import { checkedOptions, durationMs, integerIn, optionKeys } from '../validation.js';
import { logger } from '../log.js';
import { MailboxSystem, OfferStatus, type Mailbox, type MailboxRef, type MailboxSystemOptions } from '../bus/mailbox.js';
import type { BytesReader } from '../bus/local-mailbox.js';
import { checkSystemOptions, MAILBOX_SYSTEM_OPTION_KEYS } from '../bus/mailbox-system.js';
import { MAX_NAME_BYTES, registry, type MailboxAddress } from '../bus/registry.js';
import { encodeValue, UndecodableValue } from '../bus/value-codec.js';
import { AnswerBytes } from './answer-bytes.js';
import { TellBytes } from './tell-bytes.js';
import { AskBytes } from './ask-bytes.js';
import { WireFrames, wireLength } from './wire-frames.js';
import { idLookup } from './id-lookup.js';
import { inTurns, ITEMS_PER_TURN } from './in-turns.js';
import { ActorErrorCodes, toWireError } from './errors.js';
import {
  makeEnvelope,
  payloadRoot,
  type ActorTransport,
  type DeadLetterReason,
  type DeliveryStatus,
  type Envelope,
  EnvelopeKind,
  type Location,
  type MembershipChange,
  type NameGone,
  type Receiver,
  type Registration,
} from './transport.js';

/**
 * A flush of at most this many asks and answers is followed by a drain at once (see
 * {@link MailboxTransport.flushStaged}). A process that sends more at a time has more coming
 * anyway, and a turn of the event loop gathers more of it into one drain: with every flush
 * followed by a drain, 1,024 asks in flight made 0.69-0.84x the asks per second of 128 in 7
 * rounds of 8 (0.83-0.94x before), with 4 at most 0.79-1.07x (docs/benchmarks.md, "Eighth
 * pass: draining right after sending").
 */
const AFTER_SEND_MAX = 4;

/**
 * How often, at most, a queue of messages waiting for room in a full mailbox is cleared of the
 * asks whose asker stopped waiting (their deadline passed: the receiver would drop them as
 * 'expired' anyway). An actor that answers nothing while asks with a timeout keep coming made
 * its senders' queues grow without end (35,000 envelopes in 95 s at 500 asks/s).
 */
const EXPIRED_SWEEP_MS = 100;

/**
 * Asks called off by their signals are taken out of the queues waiting for room once they are
 * at least this fraction (1/n) of what waits (see {@link MailboxTransport.cancelAsks}): each pass
 * through the queues then costs at most this many envelopes looked at per ask called off.
 */
const CALLED_OFF_SHARE = 64;

/**
 * The longest one turn of the event loop goes on sending what waits (it starts no batch, and
 * no large message, after this many ms): the rest goes on the next turn. A burst of 500 tells
 * of 1 MiB each held the sender's event loop for 0.6-1.5 s (timers, I/O and Ctrl-C waited),
 * and 3,000 for 20 s. With 20 ms the longest wait was 40-50 ms; such a burst then took 1.7-2.2 s
 * against 1.5-1.8 s (10 ms: 2.3-2.5 s; 50 ms: 1.5-1.7 s, waits of 110-125 ms). Small messages
 * rarely reach it: a batch of 256 takes well under a millisecond.
 */
const SEND_TURN_MS = 20;

/** Options of {@link MailboxTransport}. */
export interface MailboxTransportOptions extends MailboxSystemOptions {
  /** Capacity of each actor's mailbox (messages sent and not yet drained; default 4096). */
  mailboxCapacity?: number | undefined;
  /**
   * How often names this process cares about are checked for having gone away, and groups it
   * follows for members that came or went, while the transport is in use (default 100 ms).
   */
  pollMs?: number | undefined;
  /**
   * The longest the poll waits while nothing happens (default 800 ms, or `pollMs` when that is
   * longer; at least `pollMs`). A poll that finds no change doubles the next delay up to this;
   * a send, a lookup, a read of a group's members, a registry change or a process joining or
   * leaving the group brings it back to `pollMs`. While idle, a name gone elsewhere or a member
   * added to a followed group is seen within this time (a process that dies is seen at once).
   */
  idlePollMs?: number | undefined;
}

/** Every option of {@link MailboxTransportOptions}: the mailbox system's and the transport's own. */
const MAILBOX_TRANSPORT_OPTION_KEYS = [
  ...MAILBOX_SYSTEM_OPTION_KEYS,
  ...optionKeys<Omit<MailboxTransportOptions, keyof MailboxSystemOptions>>({ mailboxCapacity: true, pollMs: true, idlePollMs: true }),
];

/**
 * Checks that `options` name only options of a mailbox transport (`what` names them in the
 * error) and answers their mailbox system's part, which `MailboxSystem.open` takes.
 */
export function mailboxSystemOptions(options: MailboxTransportOptions, what: string): MailboxSystemOptions {
  checkedOptions(options, MAILBOX_TRANSPORT_OPTION_KEYS, what);
  return Object.fromEntries(Object.entries(options).filter(([key]) => MAILBOX_SYSTEM_OPTION_KEYS.includes(key)));
}

/**
 * Every option of a mailbox transport, checked (`startActorSystem` checks them before DPDK
 * starts): the mailbox system's, and the transport's own with their defaults.
 * @throws {MpBusError} `INVALID_OPTION`.
 */
export function transportSettings(
  options: MailboxTransportOptions,
  what: string,
): { system: MailboxSystemOptions; capacity: number; pollMs: number; idlePollMs: number } {
  const system = mailboxSystemOptions(options, what);
  checkSystemOptions(system);
  const capacity = integerIn(options.mailboxCapacity ?? 4096, 'mailboxCapacity', 1, 0x7fffffff);
  const pollMs = durationMs(options.pollMs ?? 100, 'pollMs', 1);
  const idlePollMs = durationMs(options.idlePollMs ?? Math.max(800, pollMs), 'idlePollMs', 1);
  if (idlePollMs < pollMs) {
    throw new MpBusError(
      ErrorCodes.invalidOption,
      `idlePollMs (${idlePollMs}) must be at least pollMs (${pollMs}): it is the longest the poll waits, pollMs the shortest`,
    );
  }
  return { system, capacity, pollMs, idlePollMs };
}

/**
 * An envelope on the wire: [kind, action, payload, id?, replyTo?, sender?, deadline?, trace?],
 * absent fields null, and cut after the last field present (a tell without sender or trace is
 * 3 long, an answer 4): trailing nulls cost the sender's and receiver's codec a step each.
 */
type WireEnvelope = [EnvelopeKind, string, unknown, (number | null)?, (string | null)?, (string | null)?, (number | null)?, (string | null)?];

/**
 * Messages to a name of another process: staged during this turn (sent together at its end,
 * one native call per batch) or waiting for room (the mailbox's room doorbell), in order.
 */
interface Outgoing {
  readonly name: string;
  readonly ref: MailboxRef<WireEnvelope>;
  envelopes: Envelope[];
  /** Envelopes before it are sent. */
  head: number;
  /** In the list flushed at the end of this turn. */
  staged: boolean;
  /** Waiting for the room doorbell (a flush follows it). */
  waiting: boolean;
  /** When the queue was last cleared of expired asks (Date.now()). */
  sweptAt: number;
}

/** A name of this process. */
interface OwnEntry {
  box: Mailbox<WireEnvelope>;
  subscription: { unsubscribe(): void };
  groups: Set<string>;
  receiver: Receiver;
  /** Messages received minus messages settled since the mailbox's depth was last adjusted. */
  unsettled: number;
  /** In `unsettledNames`. */
  queued: boolean;
}

const GROUP_PREFIX = '$g.';
const RESOLVED = Promise.resolve();

function sameAddress(a: MailboxAddress, b: MailboxAddress): boolean {
  return a.slot === b.slot && a.generation === b.generation && a.id === b.id;
}

/** Whether an envelope is one of the asks `ids` that answer to `replyTo`. */
function askIn(replyTo: string, ids: readonly number[]): (envelope: Envelope) => boolean {
  const listed = idLookup(ids);
  return (envelope) => envelope.kind === EnvelopeKind.ask && envelope.replyTo === replyTo && listed(envelope.id!);
}

/**
 * A receiver (or the system's handler) threw: a bug, reported as a subscription would report it,
 * as an uncaught exception on a timer, while the drain's other messages are still delivered.
 */
function throwLater(err: unknown): void {
  setTimeout(() => {
    throw err;
  });
}

let nodeCounter = 0;

export class MailboxTransport implements ActorTransport {
  readonly nodeId: string;
  readonly pid = process.pid;
  readonly gone$: Observable<NameGone>;
  readonly membership$: Observable<MembershipChange>;
  /** The process's mailbox system underneath. */
  readonly mailboxes: MailboxSystem;

  private readonly gone = new Subject<NameGone>();
  private readonly membershipChanges = new Subject<MembershipChange>();
  private readonly own = new Map<string, OwnEntry>();
  /** Names whose `unsettled` count changed since the last adjustment. */
  private readonly unsettledNames: OwnEntry[] = [];
  /** Names of other processes with messages staged or waiting for room. */
  private readonly outgoing = new Map<string, Outgoing>();
  /** Asks called off that may still wait in {@link outgoing}, by reply address, not yet looked for (see {@link cancelAsks}). */
  private readonly calledOff = new Map<string, number[]>();
  private calledOffCount = 0;
  /** Callers of {@link whenSent} waiting for nothing to wait in {@link outgoing}. */
  private sentWaiters: Array<() => void> = [];
  /** Outgoing queues to send at the end of this turn. */
  private staged: Outgoing[] = [];
  /** Asks and answers staged since the last flush (see {@link flushStaged}). */
  private asksAndAnswersStaged = 0;
  private undeliverable: ((to: string, envelope: Envelope, cause?: unknown, reason?: DeadLetterReason) => void) | undefined;
  /**
   * The envelope being encoded, by wire length 3..8 (msgpackr packs synchronously: one array of
   * each length serves every send); {@link toWire} fills the one it needs.
   */
  private readonly wires: WireEnvelope[] = [3, 4, 5, 6, 7, 8].map((n) => new Array<unknown>(n).fill(null) as WireEnvelope);
  /** What goes around the value {@link toBatchWire} returned (its frame is read by `offerMany`). */
  private readonly frames = new WireFrames();
  /** Undeliverable messages being reported a slice per turn ({@link reportUndeliverable}). */
  private readonly reporting = new Set<Promise<unknown>>();
  /** Names this process cares about, with where they lived when last seen. */
  private readonly tracked = new Map<string, MailboxAddress>();
  /** Groups this process follows, with their members when last seen. */
  private readonly followed = new Map<string, Set<string>>();
  private readonly peerDown: Subscription;
  private readonly peerUp: Subscription;
  /** How recent processes ended, by slot:generation. */
  private readonly downs = new Map<string, 'left' | 'died'>();
  private readonly pollMs: number;
  private readonly idlePollMs: number;
  private pollTimer: NodeJS.Timeout | undefined;
  /** The delay the poll timer was last set for: above `pollMs` while nothing happens. */
  private pollDelay: number;
  /** The transport was used since the last poll (a send, a lookup, a read of a group's members). */
  private active = false;
  private readonly capacity: number;
  private readonly log = logger('actors-transport');
  private closed = false;
  /** The registry's removal epoch when tracked names were last checked. */
  private epoch = -1;
  /**
   * The registry's removal epoch and name count when the followed groups were last read: while
   * both stay the same no name came or went (every removal moves the epoch, and names are only
   * added or removed), so the poll need not walk the whole registry.
   */
  private membersEpoch = -1;
  private membersCount = -1;
  /** Names a lookup missed once while their owner lives: gone only if the next poll misses them too. */
  private readonly suspects = new Set<string>();

  /**
   * Opens this process's mailbox system (synchronously: `EBUSY` while another process is still
   * creating the group's mailbox objects; `await MailboxSystem.openAsync()` first waits for
   * that, as `startActorSystem` does).
   */
  constructor(options: MailboxTransportOptions = {}) {
    // checked before anything is attached or registered
    const { system, capacity, pollMs, idlePollMs } = transportSettings(options, 'MailboxTransport options');
    this.capacity = capacity;
    this.pollMs = pollMs;
    this.idlePollMs = idlePollMs;
    this.mailboxes = MailboxSystem.open(system);
    this.nodeId = `${this.mailboxes.slot}.${process.pid}.${++nodeCounter}`;
    this.gone$ = this.gone.asObservable();
    this.membership$ = this.membershipChanges.asObservable();
    this.peerDown = this.mailboxes.membership.peerDown$.subscribe(({ peer, reason }) => this.onPeerDown(peer.slot, peer.generation, reason));
    // A process joining registers its names soon after: polled promptly even while idle.
    this.peerUp = this.mailboxes.membership.peerUp$.subscribe(() => this.wake());
    this.pollDelay = this.pollMs;
    this.schedulePoll(this.pollMs);
  }

  register(name: string, receiver: Receiver): Registration {
    this.assertOpen();
    const bytes = typeof name === 'string' ? Buffer.byteLength(name) : 0;
    if (bytes === 0 || bytes > MAX_NAME_BYTES || name.includes('\0')) {
      throw new MpBusError(
        ErrorCodes.invalidName,
        `${JSON.stringify(name)} cannot be a name in this group: actor and router names are strings of 1 to ${MAX_NAME_BYTES} UTF-8 bytes without NUL (the group's registry keeps them in shared memory)${bytes > MAX_NAME_BYTES ? `; this one is ${bytes}` : ''}`,
      );
    }
    let box: Mailbox<WireEnvelope>;
    try {
      box = this.mailboxes.open<WireEnvelope>(name, { capacity: this.capacity });
    } catch (err) {
      if ((err as MpBusError).code === 'NAME_TAKEN') {
        throw new MpBusError(ActorErrorCodes.nameTaken, `the name '${name}' is already taken in this group: stop that actor first or choose another name`, {
          cause: err,
        });
      }
      throw err;
    }
    const entry: OwnEntry = {
      box,
      subscription: undefined as unknown as OwnEntry['subscription'],
      groups: new Set<string>(),
      receiver,
      unsettled: 0,
      queued: false,
    };
    const settles = receiver.settles === true;
    const answer = receiver.answer?.bind(receiver);
    /**
     * The action of the last message, kept as the string the receiver first saw: the decoder
     * makes a new string per message, and its handler's lookup by action would hash each one
     * anew (~250 instructions); a comparison with the last one costs a few dozen.
     */
    let lastAction = '';
    /** Hands an envelope for this name to its receiver, counted while it is not settled. */
    const take = (envelope: Envelope): void => {
      if (settles) this.countUnsettled(entry, 1);
      receiver.receive(envelope);
    };
    // An answer to a system's ask is read from its bytes when it can be (see AnswerBytes); so are
    // the head of a tell to an actor and all but the payload of an ask, whose payload is then
    // decoded alone (see TellBytes, AskBytes).
    let fromBytes: BytesReader;
    if (answer !== undefined) {
      const answerBytes = new AnswerBytes();
      fromBytes = (bytes, start, length) => {
        if (!answerBytes.read(bytes, start, length)) return false;
        try {
          answer(EnvelopeKind.reply, answerBytes.id, answerBytes.value, answerBytes.action);
        } catch (err) {
          throwLater(err);
        }
        answerBytes.value = undefined; // (not kept alive)
        return true;
      };
    } else {
      const tellBytes = new TellBytes();
      const askBytes = new AskBytes();
      fromBytes = (bytes, start, length, decodeFrom) => {
        const tell = tellBytes.read(bytes, start, length);
        if (!tell && !askBytes.read(bytes, start, length)) return false;
        let payload: unknown;
        try {
          payload = tell ? decodeFrom(tellBytes.payloadAt) : decodeFrom(askBytes.payloadAt, askBytes.payloadEnd);
        } catch {
          return false; // (decoded whole, which reports it, or hands on an UndecodableValue)
        }
        try {
          const a = askBytes;
          take(
            tell
              ? makeEnvelope(EnvelopeKind.tell, tellBytes.action, payload)
              : makeEnvelope(EnvelopeKind.ask, a.action, payload, a.id, a.replyTo, a.sender, a.deadline),
          );
        } catch (err) {
          throwLater(err);
        }
        return true;
      };
    }
    // (tolerant: a value that does not decode comes as an UndecodableValue; see `undecodable`)
    const consumeOptions = { tolerant: true, fromBytes };
    // Consumed directly, without an rxjs Subscriber per message. A receiver must not throw (see
    // throwLater).
    entry.subscription = box.consume((wire) => {
      try {
        // Written by another process: only the shape this transport sends is taken.
        const kind = Array.isArray(wire) ? wire[0] : undefined;
        if ((kind !== 0 && kind !== 1 && kind !== 2 && kind !== 3) || typeof wire[1] !== 'string') {
          this.log.warn({ name }, 'dropped a message that is not an actor envelope');
          return;
        }
        if (wire[2] instanceof UndecodableValue) {
          this.undecodable(name, wire, wire[2], answer);
          return;
        }
        // An answer to a system's ask: settled from the wire array, no envelope made for it.
        if (answer !== undefined && (kind === 2 || kind === 3)) {
          answer(kind, typeof wire[3] === 'number' ? wire[3] : undefined, wire[2], wire[1]);
          return;
        }
        let action = wire[1];
        if (action === lastAction) action = lastAction;
        else lastAction = action;
        const envelope = makeEnvelope(
          kind,
          action,
          wire[2],
          typeof wire[3] === 'number' ? wire[3] : undefined,
          typeof wire[4] === 'string' ? wire[4] : undefined,
          typeof wire[5] === 'string' ? wire[5] : undefined,
          typeof wire[6] === 'number' ? wire[6] : undefined,
          typeof wire[7] === 'string' ? wire[7] : undefined,
        );
        take(envelope);
      } catch (err) {
        throwLater(err);
      }
    }, consumeOptions);
    const subscription = entry.subscription;
    this.own.set(name, entry);
    return {
      name,
      // Messages the actor has queued but not finished stay counted in the mailbox's depth.
      settle: (count) => {
        if (this.own.get(name) === entry) this.countUnsettled(entry, -count);
      },
      close: () => {
        if (this.own.get(name) !== entry) return;
        this.own.delete(name);
        for (const group of entry.groups) this.removeAlias(group, name, box.address);
        subscription.unsubscribe();
        if (!this.mailboxes.closed) box.close();
        this.tracked.delete(name);
        this.gone.next({ name, reason: 'stopped', pid: process.pid });
      },
    };
  }

  /**
   * A message to `name` whose value this process could not decode (its envelope did): an ask's
   * asker is told at once (`DECODE_FAILED`), not left to its timeout; an answer fails the ask it
   * answers; an ask or tell is a dead letter here ('decode-failed').
   */
  private undecodable(name: string, wire: WireEnvelope, value: UndecodableValue, answer: Receiver['answer']): void {
    const [kind, action] = wire;
    const id = typeof wire[3] === 'number' ? wire[3] : undefined;
    const why = value.error.message;
    if (kind === EnvelopeKind.reply || kind === EnvelopeKind.failure) {
      const err = new MpBusError(
        ErrorCodes.decodeFailed,
        `the answer to '${action}' could not be decoded in this process (${why}); the handler ran: ask again only if the action is safe to repeat`,
      );
      answer?.(EnvelopeKind.failure, id, toWireError(err), action);
      return;
    }
    const envelope = makeEnvelope(
      kind,
      action,
      value,
      id,
      typeof wire[4] === 'string' ? wire[4] : undefined,
      typeof wire[5] === 'string' ? wire[5] : undefined,
    );
    this.log.warn({ name, action, err: value.error }, 'a message whose value this process cannot decode: not handled');
    this.undeliverable?.(name, envelope, undefined, 'decode-failed');
    if (kind !== EnvelopeKind.ask || envelope.replyTo === undefined || id === undefined) return;
    const err = new MpBusError(
      ErrorCodes.decodeFailed,
      `'${name}' could not decode the message '${action}' (${why}); it was not handled: are both processes running the same mpbus, with the same classes registered?`,
    );
    this.deliver(envelope.replyTo, makeEnvelope(EnvelopeKind.failure, action, toWireError(err), id));
  }

  deliver(to: string, envelope: Envelope): DeliveryStatus {
    if (this.closed) return 'unknown';
    if (!this.active) this.noteActivity();
    // A name of this process: hand the envelope over directly (no encoding, no ring).
    const local = this.own.get(to);
    if (local) {
      if (local.receiver.settles) this.countUnsettled(local, 1);
      local.receiver.receive(envelope);
      return 'delivered';
    }
    if (envelope.kind !== EnvelopeKind.tell) this.asksAndAnswersStaged++;
    const out = this.outgoing.get(to);
    if (out !== undefined) {
      // Earlier messages to it wait (staged or for room): this one goes after them.
      out.envelopes.push(envelope);
      this.stage(out);
      return 'delivered';
    }
    const ref = this.mailboxes.ref<WireEnvelope>(to);
    if (ref.known) {
      // Sent before (the name was there): staged, and sent with the turn's others at its end.
      this.stage(this.outgoingTo(to, ref, envelope));
      return 'delivered';
    }
    // First send to the name: now, which looks it up ('unknown' at once when no one holds it).
    let status: number;
    try {
      status = ref.offer(this.toWire(envelope));
    } catch (err) {
      if (this.mailboxes.closed) throw err;
      // It does not encode (or is too large for the hugepage memory to be had): like a staged
      // message that does not, it goes back to the system.
      this.undeliverable?.(to, envelope, err);
      return 'delivered';
    } finally {
      this.releaseWires(); // do not keep the payload alive
    }
    // The send's status, translated once (no exception for a name that is not there).
    if (status === OfferStatus.ok) {
      if (!this.tracked.has(to)) this.track(to);
      return 'delivered';
    }
    if (status > OfferStatus.noBuffers) return 'unknown';
    this.waitForRoomOf(this.outgoingTo(to, ref, envelope));
    return 'delivered';
  }

  /**
   * Where messages go that this transport accepted ('delivered') but could not send after all:
   * the name went away while they waited (or, with `cause`, one could not be encoded); and, with
   * `reason` 'decode-failed', those that came for a name of this process with a value it could
   * not decode.
   */
  onUndeliverable(handler: (to: string, envelope: Envelope, cause?: unknown, reason?: DeadLetterReason) => void): void {
    this.undeliverable = handler;
  }

  private outgoingTo(to: string, ref: MailboxRef<WireEnvelope>, envelope: Envelope): Outgoing {
    const out: Outgoing = { name: to, ref, envelopes: [envelope], head: 0, staged: false, waiting: false, sweptAt: 0 };
    this.outgoing.set(to, out);
    return out;
  }

  /** The wire form of `envelope`, in a scratch array of its length (valid until the next call). */
  private toWire(envelope: Envelope): WireEnvelope {
    const { id, replyTo, sender, deadline, trace } = envelope;
    const length = wireLength(envelope);
    const wire = this.wires[length - 3]!;
    wire[0] = envelope.kind;
    wire[1] = envelope.action;
    wire[2] = encodeValue(envelope.payload, payloadRoot[envelope.kind]);
    if (length > 3) wire[3] = id ?? null;
    if (length > 4) wire[4] = replyTo ?? null;
    if (length > 5) wire[5] = sender ?? null;
    if (length > 6) wire[6] = deadline ?? null;
    if (length > 7) wire[7] = trace ?? null;
    return wire;
  }

  /**
   * What a batched send packs for `envelope`: its payload alone, in its encoded form, with the
   * rest of the wire array around it in {@link frames} (src/actors/wire-frames.ts); or, for an
   * envelope that does not go framed (one with a trace, for one: see `WireFrames.set`),
   * {@link toWire}.
   */
  private toBatchWire(envelope: Envelope): unknown {
    return this.frames.set(envelope) ? encodeValue(envelope.payload, payloadRoot[envelope.kind]) : this.toWire(envelope);
  }

  /** Lets go of the payloads the scratch arrays held for the send just made. */
  private releaseWires(): void {
    for (const wire of this.wires) wire[2] = null;
  }

  private stage(out: Outgoing): void {
    if (out.staged || out.waiting) return;
    out.staged = true;
    // (a settled promise's reaction rather than queueMicrotask, which costs an AsyncResource per call: see cell.ts)
    if (this.staged.length === 0) void RESOLVED.then(this.flushStaged);
    this.staged.push(out);
  }

  /**
   * End of the turn: every staged queue goes, one native call per batch of up to 256; then, when
   * a few asks or answers (up to {@link AFTER_SEND_MAX}) were among them, this process's receive
   * loop drains at once for what comes back: answers, or the next asks of a caller that just got
   * its answers (see `MailboxSystem.drainAfterSend`). Tells alone expect nothing: a drain that
   * waits for nothing would only slow a process that tells.
   */
  private readonly flushStaged = (): void => {
    const list = this.staged;
    this.staged = [];
    const until = performance.now() + SEND_TURN_MS;
    for (const out of list) {
      out.staged = false;
      this.flush(out, until);
    }
    const staged = this.asksAndAnswersStaged;
    this.asksAndAnswersStaged = 0;
    if (staged > 0 && staged <= AFTER_SEND_MAX && !this.mailboxes.closed) this.mailboxes.drainAfterSend();
  };

  /** Sends what waits for `out`'s name while there is room, and until `until` (`performance.now()`). */
  private flush(out: Outgoing, until = performance.now() + SEND_TURN_MS): void {
    if (out.waiting || this.outgoing.get(out.name) !== out) return;
    for (;;) {
      const envelopes = out.envelopes;
      const base = out.head;
      let bad = -1;
      let cause: unknown;
      let n: number;
      if (this.closed || this.mailboxes.closed) n = -OfferStatus.mailboxClosed;
      else if (envelopes.length - base === 1) {
        // One message (a lone ask or reply): the single send is cheaper than a batch of one.
        try {
          const status = out.ref.offer(this.toWire(envelopes[base]!));
          n = status === OfferStatus.ok ? 1 : status <= OfferStatus.noBuffers ? 0 : -status;
        } catch (err) {
          n = 0;
          bad = base;
          cause = err;
        } finally {
          this.releaseWires();
        }
      } else {
        try {
          n = out.ref.offerMany(
            envelopes.length - base,
            // a wire array, or a tell's payload after its head (the same bytes)
            (i) => this.toBatchWire(envelopes[base + i]!) as WireEnvelope,
            (i, err) => {
              bad = base + i;
              cause = err;
            },
            this.frames.frame,
            until,
          );
        } finally {
          this.releaseWires();
        }
      }
      if (n < 0) {
        // The name went away: what waited for it is undeliverable.
        this.letGo(out);
        this.reportUndeliverable(out.name, envelopes, base);
        return;
      }
      if (n > 0 && !this.tracked.has(out.name)) this.track(out.name);
      out.head += n;
      if (bad >= 0) {
        // It cannot go (it does not encode, or is too large for the hugepage memory to be had):
        // reported, and the ones after it go on.
        const [unsendable] = envelopes.splice(bad, 1);
        this.undeliverable?.(out.name, unsendable!, cause);
        continue;
      }
      break;
    }
    if (out.head === out.envelopes.length) {
      this.letGo(out);
      return;
    }
    if (out.head > 1024 && out.head * 2 > out.envelopes.length) {
      out.envelopes = out.envelopes.slice(out.head);
      out.head = 0;
    }
    // Out of time rather than of room (or both): the rest goes on the next turn.
    if (performance.now() >= until) this.waitForRoomOf(out, new Promise<void>((resolve) => setImmediate(resolve)));
    else this.waitForRoomOf(out);
  }

  /**
   * Reports `envelopes` from index `from` on as undeliverable to `name`: at once when they are
   * few, else a slice per turn of the event loop (a queue of 500,000 asks for a child a close
   * stopped kept it for a second), with {@link close} waiting for the last slice.
   */
  private reportUndeliverable(name: string, envelopes: readonly Envelope[], from: number, reason?: DeadLetterReason): void {
    const report = (envelope: Envelope): void => this.undeliverable?.(name, envelope, undefined, reason);
    if (envelopes.length - from <= ITEMS_PER_TURN) {
      for (let i = from; i < envelopes.length; i++) report(envelopes[i]!);
      return;
    }
    // (a bug of the system's handler, reported as a receiver's)
    const reported = inTurns(envelopes, report, from).catch(throwLater);
    this.reporting.add(reported);
    void reported.then(() => this.reporting.delete(reported));
  }

  /** Flushes `out` again once its mailbox may have room (or once `ready` settles). */
  private waitForRoomOf(out: Outgoing, ready: Promise<void> = out.ref.waitForRoom()): void {
    out.waiting = true;
    const wake = (): void => {
      out.waiting = false;
      if (this.outgoing.get(out.name) === out) this.dropExpired(out);
      this.flush(out);
    };
    ready.then(wake, wake);
  }

  /**
   * Takes out of a queue that waited for room the asks whose deadline has passed (dead letters
   * 'expired', a slice per turn when many; their askers have had their timeout), every
   * {@link EXPIRED_SWEEP_MS} at most; the others keep their order. Tells have no deadline and
   * stay (docs/actors.md, "Tells faster than their receiver").
   */
  private dropExpired(out: Outgoing): void {
    const now = Date.now();
    if (now - out.sweptAt < EXPIRED_SWEEP_MS) return;
    out.sweptAt = now;
    const expired = this.takeQueued(out, (envelope) => envelope.kind === EnvelopeKind.ask && envelope.deadline !== undefined && envelope.deadline <= now);
    if (expired.length > 0) this.reportUndeliverable(out.name, expired, 0, 'expired');
  }

  /**
   * The asker gave up on its asks `ids` (their signal aborted): those still waiting here to be
   * sent (for room in a full mailbox, or for the end of this turn) do not go; they are dead
   * letters 'expired', as an ask whose deadline passed while it waited. The others keep their
   * order. Aborting asks queued behind a busy actor then spares it the work its callers called off.
   *
   * Taking them out goes through every queue, so it is done once the asks called off are at
   * least a {@link CALLED_OFF_SHARE}th of what waits (at once for one signal given to many asks):
   * asks that each have their own signal (`AbortSignal.timeout(ms)`, say) gather until then, and
   * one of them that gets room meanwhile still goes. Taken out one call at a time, 100,000
   * queued asks whose signals abort one by one would have gone through the queue 100,000 times.
   */
  cancelAsks(replyTo: string, ids: readonly number[]): void {
    if (this.outgoing.size === 0) {
      this.calledOff.clear(); // nothing waits: those gathered went meanwhile
      this.calledOffCount = 0;
      return;
    }
    const waiting = this.unsent();
    if (this.calledOffCount === 0 && ids.length * CALLED_OFF_SHARE >= waiting) {
      this.takeCalledOff(replyTo, ids);
      return;
    }
    let gathered = this.calledOff.get(replyTo);
    if (gathered === undefined) this.calledOff.set(replyTo, (gathered = []));
    for (const id of ids) gathered.push(id);
    this.calledOffCount += ids.length;
    if (this.calledOffCount * CALLED_OFF_SHARE < waiting) return;
    for (const [asker, off] of this.calledOff) this.takeCalledOff(asker, off);
    this.calledOff.clear();
    this.calledOffCount = 0;
  }

  /** Takes the asks `ids` to `replyTo` out of every queue; they are dead letters 'expired'. */
  private takeCalledOff(replyTo: string, ids: readonly number[]): void {
    const calledOff = askIn(replyTo, ids);
    for (const out of this.outgoing.values()) {
      const dropped = this.takeQueued(out, calledOff);
      if (dropped.length > 0) this.reportUndeliverable(out.name, dropped, 0, 'expired');
    }
  }

  /**
   * Asks `ids` (answering to `replyTo`) that still wait here to be sent to `to` do not go: a
   * router gives them to another worker (`to` stalled). Never sent, they are handled once.
   */
  takeBackAsks(to: string, replyTo: string, ids: readonly number[]): void {
    const out = this.outgoing.get(to);
    if (out !== undefined && ids.length > 0) this.takeQueued(out, askIn(replyTo, ids));
  }

  /**
   * Takes the envelopes that `taken` accepts out of what `out` has not sent yet (the others keep
   * their order) and returns them; an emptied queue is let go.
   */
  private takeQueued(out: Outgoing, taken: (envelope: Envelope) => boolean): Envelope[] {
    const envelopes = out.envelopes;
    const took: Envelope[] = [];
    let kept = out.head;
    for (let i = out.head; i < envelopes.length; i++) {
      const envelope = envelopes[i]!;
      if (taken(envelope)) took.push(envelope);
      else envelopes[kept++] = envelope;
    }
    if (took.length === 0) return took;
    envelopes.length = kept;
    // (a queue waiting for room, or staged, is flushed and let go once empty)
    if (kept === out.head && !out.waiting && !out.staged) this.letGo(out);
    else this.wakeSentWaiters();
    return took;
  }

  waitForRoom(name: string): Promise<void> {
    if (this.closed || this.mailboxes.closed) return Promise.resolve();
    return this.mailboxes.ref(name).waitForRoom();
  }

  /**
   * Counts messages received (+) and settled (-) by a settling receiver; the mailbox's depth is
   * adjusted by the sum once per turn of the event loop (one native call per drain at most, none
   * when everything received was also handled within the turn), not twice per message.
   */
  private countUnsettled(entry: OwnEntry, delta: number): void {
    if (!entry.queued) {
      if (this.unsettledNames.length === 0) setImmediate(this.adjustDepths);
      entry.queued = true;
      this.unsettledNames.push(entry);
    }
    entry.unsettled += delta;
  }

  private readonly adjustDepths = (): void => {
    const entries = this.unsettledNames.splice(0);
    for (const entry of entries) {
      const delta = entry.unsettled;
      entry.unsettled = 0;
      entry.queued = false;
      if (delta !== 0 && this.own.get(entry.box.name) === entry && !this.mailboxes.closed && !entry.box.closed) entry.box.addDepth(delta);
    }
  };

  lookup(name: string): Location | undefined {
    if (this.closed) return undefined;
    if (!this.active) this.noteActivity();
    const at = registry.lookup(name);
    if (!at) return undefined;
    this.tracked.set(name, at);
    const peer = this.mailboxes.membership.peers().find((p) => p.slot === at.slot && p.generation === at.generation);
    return { pid: peer?.pid ?? -1, local: this.own.has(name) };
  }

  depth(name: string): number | undefined {
    if (this.closed) return undefined;
    const local = this.own.get(name);
    // Own names: what the actor holds plus what is still on the way to it (in this process's inbox).
    if (local) return Math.max(local.receiver.depth(), local.box.closed ? 0 : local.box.depth);
    return this.mailboxes.depth(name);
  }

  join(group: string, name: string): void {
    const entry = this.own.get(name);
    if (!entry) throw new MpBusError(ActorErrorCodes.actorNotFound, `cannot add '${name}' to group '${group}': it is not registered by this process`);
    if (entry.groups.has(group)) return;
    if (!registry.add(this.alias(group, name), entry.box.address)) {
      throw new MpBusError(ActorErrorCodes.nameTaken, `'${name}' is already a member of group '${group}'`);
    }
    entry.groups.add(group);
    this.emitMembership(group, name, 'joined');
  }

  leave(group: string, name: string): void {
    const entry = this.own.get(name);
    if (!entry || !entry.groups.delete(group)) return;
    this.removeAlias(group, name, entry.box.address);
  }

  members(group: string): string[] {
    const room = MAX_NAME_BYTES - Buffer.byteLength(`${GROUP_PREFIX}${group}.`);
    if (room < 1) {
      // (a router following it would wait for workers that cannot join: see alias())
      throw new MpBusError(
        ErrorCodes.invalidOption,
        `group '${group}' can have no members: a member is registered as ${GROUP_PREFIX}<group>.<name> in at most ${MAX_NAME_BYTES} bytes, so a group name is at most ${MAX_NAME_BYTES - GROUP_PREFIX.length - 2} UTF-8 bytes`,
      );
    }
    if (this.closed) return [];
    if (!this.active) this.noteActivity();
    const members = this.readMembers(group);
    const known = this.followed.get(group);
    // A fresh read is news for the group's followers too: a pool that finds its child in the
    // group (launch's ready: { group }) and a router of that group then agree at once, not a
    // registry poll (up to idlePollMs) later.
    if (known) this.reconcile(group, known, new Set(members));
    else this.followed.set(group, new Set(members));
    return members;
  }

  /** Emits the joins and leaves between what followers of `group` know and its members now. */
  private reconcile(group: string, known: Set<string>, current: Set<string>): void {
    for (const name of current) if (!known.has(name)) this.emitMembership(group, name, 'joined');
    for (const name of [...known]) if (!current.has(name)) this.emitMembership(group, name, 'left');
  }

  unsent(): number {
    let n = 0;
    for (const out of this.outgoing.values()) n += out.envelopes.length - out.head;
    return n;
  }

  takeArrived(): void {
    if (!this.mailboxes.closed) this.mailboxes.drainNow();
  }

  takeUnsent(): Array<{ to: string; envelope: Envelope }> {
    const left: Array<{ to: string; envelope: Envelope }> = [];
    for (const out of this.outgoing.values()) for (let i = out.head; i < out.envelopes.length; i++) left.push({ to: out.name, envelope: out.envelopes[i]! });
    this.outgoing.clear();
    this.wakeSentWaiters();
    return left;
  }

  whenSent(): Promise<void> {
    if (this.unsent() === 0) return RESOLVED;
    return new Promise<void>((resolve) => this.sentWaiters.push(resolve));
  }

  /** `out` has nothing left to send (or its name went): it goes from {@link outgoing}. */
  private letGo(out: Outgoing): void {
    this.outgoing.delete(out.name);
    this.wakeSentWaiters();
  }

  /**
   * Resolves the {@link whenSent} waiters once nothing waits to be sent: asks taken out of a
   * queue may empty it while it still waits for its doorbell (let go at its wake).
   */
  private wakeSentWaiters(): void {
    if (this.sentWaiters.length === 0 || this.unsent() > 0) return;
    const waiters = this.sentWaiters;
    this.sentWaiters = [];
    for (const resolve of waiters) resolve();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // What this turn staged still goes (replies sent just before closing).
    this.flushStaged();
    for (const name of [...this.own.keys()]) {
      const entry = this.own.get(name)!;
      entry.subscription.unsubscribe();
      for (const group of entry.groups) this.removeAlias(group, name, entry.box.address);
      if (!this.mailboxes.closed) entry.box.close();
    }
    this.own.clear();
    this.closed = true;
    // What still waits for room is undeliverable now (a queue waiting for the doorbell too: its
    // wake finds the queue gone).
    for (const out of [...this.outgoing.values()]) {
      out.waiting = false;
      this.flush(out);
    }
    // (what reportUndeliverable still goes through, a slice per turn)
    while (this.reporting.size > 0) await Promise.all(this.reporting);
    clearTimeout(this.pollTimer);
    this.peerDown.unsubscribe();
    this.peerUp.unsubscribe();
    this.gone.complete();
    this.membershipChanges.complete();
  }

  // ---------------------------------------------------------------- internals

  private assertOpen(): void {
    if (this.closed || this.mailboxes.closed) throw new MpBusError(ActorErrorCodes.systemClosed, 'the actor transport is closed (its runtime closed)');
  }

  private alias(group: string, name: string): string {
    const alias = `${GROUP_PREFIX}${group}.${name}`;
    if (Buffer.byteLength(alias) > 63) {
      throw new MpBusError(
        ActorErrorCodes.invalidActor,
        `group '${group}' plus actor name '${name}' is too long for the registry (${GROUP_PREFIX}group.name must fit in 63 bytes)`,
      );
    }
    return alias;
  }

  private removeAlias(group: string, name: string, at: MailboxAddress): void {
    if (this.mailboxes.closed) return;
    if (registry.remove(this.alias(group, name), at)) this.emitMembership(group, name, 'left');
  }

  private emitMembership(group: string, name: string, change: 'joined' | 'left'): void {
    const known = this.followed.get(group);
    if (known) {
      if (change === 'joined') {
        if (known.has(name)) return;
        known.add(name);
      } else if (!known.delete(name)) return;
    }
    this.membershipChanges.next({ group, name, change });
  }

  private readMembers(group: string): string[] {
    const prefix = `${GROUP_PREFIX}${group}.`;
    return registry
      .names()
      .filter((n) => n.startsWith(prefix))
      .map((n) => n.slice(prefix.length))
      .sort();
  }

  wentAt(name: string): number | undefined {
    return this.tracked.has(name) ? performance.now() : this.mailboxes.ref(name).lostAt;
  }

  private track(name: string): void {
    const at = registry.lookup(name);
    if (at) this.tracked.set(name, at);
  }

  /**
   * A process left or died: every tracked name it owned is gone now. A process that left
   * closed its actors first ('stopped'); one that died was reaped ('process-exited').
   */
  private onPeerDown(slot: number, generation: number, how: 'left' | 'died'): void {
    this.downs.set(`${slot}:${generation}`, how);
    if (this.downs.size > 1024) this.downs.delete(this.downs.keys().next().value!);
    const reason = how === 'left' ? 'stopped' : 'process-exited';
    for (const [name, at] of [...this.tracked]) {
      if (at.slot === slot && at.generation === generation) {
        this.tracked.delete(name);
        this.gone.next({ name, reason });
      }
    }
    this.poll();
    this.wake();
  }

  /** The next poll in `delay` ms (unref'd: an idle transport does not keep the process alive). */
  private schedulePoll(delay: number): void {
    clearTimeout(this.pollTimer);
    this.pollDelay = delay;
    this.pollTimer = setTimeout(this.pollTick, delay);
    this.pollTimer.unref();
  }

  /**
   * One poll, then the next: in `pollMs` when it saw a change, a name is suspected gone (the
   * next poll confirms it) or the transport was used meanwhile; otherwise after twice the last
   * delay, up to `idlePollMs`.
   */
  private readonly pollTick = (): void => {
    const changed = this.poll();
    if (this.closed || this.mailboxes.closed) return; // nothing to poll any more
    const busy = changed || this.active || this.suspects.size > 0;
    this.active = false;
    this.schedulePoll(busy ? this.pollMs : Math.min(this.pollDelay * 2, this.idlePollMs));
  };

  /** The first use since the last poll: marked (later uses only read the flag), and the poll woken. */
  private noteActivity(): void {
    this.active = true;
    this.wake();
  }

  /** Brings a poll backing off (waiting longer than `pollMs`) back to `pollMs` from now. */
  private wake(): void {
    if (this.pollDelay > this.pollMs && !this.closed) this.schedulePoll(this.pollMs);
  }

  /**
   * Notices names unregistered elsewhere and follows the groups this process reads. True when
   * a name came or went since the last poll (the registry's removal epoch moved, or, with groups
   * followed, its name count).
   */
  private poll(): boolean {
    if (this.closed || this.mailboxes.closed) return false;
    try {
      // Registry removals bump an epoch: tracked names are looked up again only when it moved
      // (or while a name is suspected gone: one missed lookup is confirmed by the next poll).
      const epoch = registry.epoch();
      const moved = epoch !== this.epoch;
      if (moved || this.suspects.size > 0) {
        this.epoch = epoch;
        const vanished = [...this.tracked].filter(([name, at]) => {
          if (this.own.has(name)) return false;
          const now = registry.lookup(name);
          const missing = !now || !sameAddress(now, at);
          if (!missing && this.suspects.delete(name)) this.log.debug({ name }, 'a name missed by one registry lookup is there again');
          return missing;
        });
        // Another process may have reaped a dead peer just now: learn it here first, so its
        // names are reported as 'process-exited' (by onPeerDown), not as stopped.
        if (vanished.length > 0) this.mailboxes.membership.scan();
        for (const [name, at] of vanished) {
          if (this.tracked.get(name) !== at) continue; // reported by onPeerDown meanwhile
          const ownerAlive = this.mailboxes.membership.isAlive(at.slot, at.generation);
          if (ownerAlive && !this.suspects.has(name)) {
            this.suspects.add(name);
            continue;
          }
          this.suspects.delete(name);
          this.tracked.delete(name);
          const now = registry.lookup(name);
          if (now) this.tracked.set(name, now);
          const died = !ownerAlive && this.downs.get(`${at.slot}:${at.generation}`) !== 'left';
          this.gone.next({ name, reason: died ? 'process-exited' : 'stopped' });
        }
      }
      if (this.followed.size === 0) return moved;
      // read before the walk: a change during it moves them for the next poll
      const count = registry.count();
      if (epoch === this.membersEpoch && count === this.membersCount) return moved;
      this.membersEpoch = epoch;
      this.membersCount = count;
      for (const [group, known] of this.followed) {
        this.reconcile(group, known, new Set(this.readMembers(group)));
      }
      return true;
    } catch (err) {
      this.log.warn({ err }, 'polling the registry failed');
      return false;
    }
  }
}
