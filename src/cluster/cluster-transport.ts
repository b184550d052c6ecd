/**
 * {@link ClusterTransport}: an actor transport that reaches beyond one host. It wraps the
 * group's own transport (mailbox rings, or in-process) and a {@link ClusterEngine} (NATS):
 *
 * - Every delivery tries the local transport first; only a name no process of this host's group
 *   holds goes to the engine, so local traffic never takes a network hop.
 * - A name this process registers is served on the subject `mpbus.<cluster>.<name>`, in a queue
 *   group of the same name: the same name served on several hosts is a pool, each message going
 *   to one of them. It is also served on `mpbus.<cluster>.<name>.@<node>`, this node's own.
 * - `tell` is a publish to the queue group (to a host of the sender's choice, as asks, while a
 *   host that served the name was forgotten for its silence and may still hold its connection);
 *   `ask` a publish with a reply subject under this node's inbox, to the own subject of a host
 *   the asker picks at random among those its directory lists (so a host it forgot gets no more
 *   asks, which NATS would still hand one that is stopped with its connection open). The serving
 *   node acknowledges it unless it answers at once (so the asker knows who holds its ask) and
 *   answers later.
 *   No subscriber anywhere: the engine's "no responders" comes back at once and the ask fails
 *   with {@link ActorNotFoundError}, as locally.
 * - Deadlines travel as the remaining milliseconds (`Mpbus-Timeout-Ms`), so a nested ask made by
 *   the remote handler does not outlive its caller; trace and correlation ids travel in headers.
 * - Membership: each node sends a heartbeat with its names every `heartbeatMs`; a node silent
 *   for `nodeTimeoutMs` (killed, cut off) is forgotten: its names vanish (`gone$`) and the asks
 *   it had acknowledged fail with {@link ActorStoppedError}. A node with asks long
 *   unacknowledged or unanswered probes the hosts they may be at: one whose NATS connection is
 *   closed (killed) is forgotten then, not after `nodeTimeoutMs`.
 * - While the engine is disconnected, new asks fail at once with `CLUSTER_UNAVAILABLE`
 *   (`whileDisconnected: 'fail'`, the default) or are sent again when it is back (`'retry'`),
 *   until their deadline. With `'retry'` tells are held too (the NATS client drops what it
 *   buffered at each reconnect attempt), and what was held goes, in the order it was sent, once
 *   the hosts known before the outage are heard from again: by then they listen again.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { Packr } from 'msgpackr';
import { isObservable, merge, Observable, Subject, type Subscription } from 'rxjs';
import { ErrorCodes, MpBusError, isTooLarge } from '../errors.js';
import { callback, checkedOptions, durationMs, oneOf, optionKeys } from '../validation.js';
import { logger } from '../log.js';
import { ActorErrorCodes, toWireError, unsendableAnswer } from '../actors/errors.js';
import { wallClockAt } from '../actors/clock.js';
import { encodeValue } from '../bus/value-codec.js';
import {
  EnvelopeKind,
  payloadRoot,
  type ActorTransport,
  type DeadLetterReason,
  type DeliveryStatus,
  type Envelope,
  type Location,
  type MembershipChange,
  type NameGone,
  type Receiver,
  type Registration,
  type WireError,
} from '../actors/transport.js';
import { AnnouncementAssembly, announcementParts, Directory, type AnnouncementMessage, type NodeAnnouncement, type NodeRemoved } from './directory.js';
import type { ClusterEngine, EngineHeaders, EngineMessage, EngineSubscription } from './engine.js';
import { NatsEngine } from './nats-engine.js';
import { natsSettings, type NatsEngineOptions } from './nats-settings.js';

/** Options of the `cluster` option of `ActorSystem`. */
export interface ClusterOptions {
  /** NATS server URLs (e.g. `'nats://10.0.0.5:4222'`), several for a NATS cluster. */
  servers: string | string[];
  /** Cluster name: subjects are `mpbus.<name>.*`, so clusters sharing a NATS server stay apart. Letters, digits, '-' and '_'. */
  name: string;
  /** The heartbeat: this node announces its names, and looks for silent nodes, twice per heartbeat (default 1 000 ms). */
  heartbeatMs?: number | undefined;
  /** A node not heard from for this long is gone (default 3 × heartbeatMs). */
  nodeTimeoutMs?: number | undefined;
  /**
   * Asks to other hosts while the NATS connection is down: 'fail' (default) rejects them at once
   * with CLUSTER_UNAVAILABLE; 'retry' keeps them and sends them (again) once reconnected, until
   * their timeout. Tells while down: 'fail' dead-letters them ('unknown-actor'); 'retry' holds
   * them (up to 8 MiB, then 'mailbox-full' dead letters) and sends them once reconnected, in order
   * with the asks; those still held when the system closes are 'closed' dead letters.
   */
  whileDisconnected?: 'fail' | 'retry' | undefined;
  /** Which names of this process other hosts can reach (default: all but reserved '$' names). */
  exported?: ((name: string) => boolean) | undefined;
  /** The NATS connection: tuning, TLS and credentials. */
  nats?: Omit<NatsEngineOptions, 'servers'> | undefined;
  /** Another engine instead of NATS (tests, other brokers). */
  engine?: ClusterEngine | undefined;
}

const CLUSTER_OPTION_KEYS = optionKeys<ClusterOptions>({
  servers: true,
  name: true,
  heartbeatMs: true,
  nodeTimeoutMs: true,
  whileDisconnected: true,
  exported: true,
  nats: true,
  engine: true,
});
const NATS_OPTION_KEYS = optionKeys<NonNullable<ClusterOptions['nats']>>({
  connectionName: true,
  reconnectTimeWaitMs: true,
  maxReconnectAttempts: true,
  connectTimeoutMs: true,
  pingIntervalMs: true,
  tls: true,
  user: true,
  pass: true,
  token: true,
  authenticator: true,
});

/** A name of this process that other hosts can reach. */
interface ServedName {
  receiver: Receiver;
  subscription?: EngineSubscription;
  /** Messages from other hosts the receiver has not settled yet (they never were in the mailbox's depth). */
  fromOtherHosts: number;
}

/** Header names of the wire protocol. */
export const ClusterHeaders = {
  kind: 'Mpbus-Kind',
  node: 'Mpbus-Node',
  timeoutMs: 'Mpbus-Timeout-Ms',
  trace: 'Mpbus-Trace',
  askId: 'Mpbus-Ask-Id',
  dir: 'Mpbus-Dir',
} as const;

/** A cluster-wide broadcast received on a topic. */
export interface ClusterBroadcast<T = unknown> {
  topic: string;
  payload: T;
  /** The node that published it. */
  node: string;
}

/** An ask sent to another host, waiting for its answer. */
interface RemoteAsk {
  to: string;
  subject: string;
  action: string;
  replyTo: string;
  id: number;
  data: Uint8Array;
  headers: EngineHeaders;
  deadline: number;
  /** When it was last published (`Date.now()`). */
  sentAt: number;
  /** The node it was sent to, on that node's own subject for the name (see {@link ClusterTransport.pickNode}); undefined: sent to the name's queue group. */
  node: string | undefined;
  /** The node that acknowledged it. */
  responder?: string;
}

/** 'retry': a tell made while the connection was down (or its hosts not yet heard from again). */
interface HeldTell {
  to: string;
  envelope: Envelope;
  data: Uint8Array;
  headers: EngineHeaders;
  /** The number the next ask had when it was held: it goes before that ask and those after. */
  before: number;
}

/** An ask received from another host, waiting for the local actor's answer. */
interface HeldAsk {
  reply: string;
  trace: string | undefined;
  expires: number;
}

const TOKEN_SAFE = /^[A-Za-z0-9_-]+$/;
/** A NATS subject without wildcards or white space (another node's inbox prefix, as announced). */
const SUBJECT_LITERAL = /^[^\s*>]+$/;

/**
 * After this node reconnects, how long the other nodes get to reconnect too before silence
 * counts against them: each client retries on its own schedule (every 250 ms, with jitter),
 * and a loaded machine adds its own delays. Without it, a node that came back a little later
 * than this one was declared dead after `nodeTimeoutMs` and its names dropped (seen once in
 * the 'retry' test under load). A node that really died during the outage is noticed this
 * much later.
 */
const RECONNECT_GRACE_MS = 2000;
/** 'retry': pause before sending again an ask that found no responders right after an outage. */
const RESEND_MS = 100;
/** 'retry': encoded bytes of tells held while the connection is down, at most (as the NATS client's own reconnect buffer). */
const HELD_TELLS_MAX_BYTES = 8 * 2 ** 20;
/** Longest inbox prefix taken from another node's announcement (a NATS subject). */
const INBOX_MAX_LENGTH = 256;

/** Most UTF-8 bytes of the host's part of a node id (see {@link hostPart}). */
const HOST_PART_BYTES = 24;

/**
 * This host's part of a node id: its name, or, when that is long, its start and a hash of it.
 * The actor system's reply address (`$reply.<node id>`) is a name in the host's group registry,
 * of at most 63 bytes: with a 51-byte hostname (a Kubernetes pod's, say) it did not fit, and
 * `startActorSystem({ cluster })` failed with INVALID_NAME. The whole name still travels in
 * announcements (`host`).
 */
export function hostPart(host: string): string {
  if (Buffer.byteLength(host) <= HOST_PART_BYTES) return host;
  const digest = createHash('sha256').update(host).digest('hex').slice(0, 8);
  let start = '';
  // (by code points: a cut inside a character would leave a lone surrogate or a broken byte)
  for (const ch of host) {
    if (Buffer.byteLength(start + ch) > HOST_PART_BYTES - 9) break;
    start += ch;
  }
  return `${start}~${digest}`;
}

/** A name as one subject token: safe characters kept, others (dots, wildcards, spaces...) %-encoded. */
export function subjectToken(name: string): string {
  if (TOKEN_SAFE.test(name)) return name;
  let out = '';
  for (const ch of name) {
    if (/[A-Za-z0-9_-]/.test(ch)) out += ch;
    else for (const b of Buffer.from(ch)) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function newTrace(): string {
  return `${Date.now().toString(16)}${Math.floor(Math.random() * 0xffffffff)
    .toString(16)
    .padStart(8, '0')}`;
}

let nodeCounter = 0;

/**
 * The `cluster` option checked, with its defaults (the system checks it before DPDK starts,
 * through the check this layer registers). @throws {MpBusError} `INVALID_OPTION`.
 */
export function clusterSettings(options: ClusterOptions): {
  name: string;
  heartbeatMs: number;
  nodeTimeoutMs: number;
  whileDisconnected: 'fail' | 'retry';
  exported: (name: string) => boolean;
} {
  checkedOptions(options, CLUSTER_OPTION_KEYS, 'cluster');
  if (options.nats !== undefined) checkedOptions(options.nats, NATS_OPTION_KEYS, 'cluster.nats');
  if (options.name === undefined)
    throw new MpBusError('INVALID_OPTION', "cluster.name is required: the cluster's name, shared by every host that joins it (letters, digits, '-' or '_')");
  if (typeof options.name !== 'string' || !TOKEN_SAFE.test(options.name)) {
    const shown = typeof options.name === 'string' ? `'${options.name}'` : `${String(options.name)}, a ${typeof options.name}`;
    throw new MpBusError('INVALID_OPTION', `cluster.name must be a string of letters, digits, '-' or '_' (got ${shown})`);
  }
  const heartbeatMs = durationMs(options.heartbeatMs ?? 1000, 'cluster.heartbeatMs', 1);
  const nodeTimeoutMs = durationMs(options.nodeTimeoutMs ?? 3 * heartbeatMs, 'cluster.nodeTimeoutMs', 1);
  if (nodeTimeoutMs <= heartbeatMs) {
    throw new MpBusError(
      'INVALID_OPTION',
      `cluster.nodeTimeoutMs (${nodeTimeoutMs}) must be longer than cluster.heartbeatMs (${heartbeatMs}), or every node would look gone between two heartbeats`,
    );
  }
  const whileDisconnected = oneOf(options.whileDisconnected ?? 'fail', 'cluster.whileDisconnected', ['fail', 'retry'] as const);
  const exported =
    options.exported === undefined ? (name: string) => !name.startsWith('$') : callback<(name: string) => boolean>(options.exported, 'cluster.exported');
  if (options.engine !== undefined) checkEngine(options.engine);
  // The NATS client's options are checked here too, before DPDK starts (the engine is made after).
  else natsSettings({ servers: options.servers, ...options.nats });
  return { name: options.name, heartbeatMs, nodeTimeoutMs, whileDisconnected, exported };
}

/** What a `ClusterEngine` must have; a `cluster.engine` without it would fail at first use, or in the close after a failed start. */
const ENGINE_METHODS = ['connect', 'inboxPrefix', 'subscribe', 'publish', 'flush', 'close'] as const;

function checkEngine(engine: unknown): void {
  let what: string | undefined;
  if (engine === null || typeof engine !== 'object') what = `got ${engine === null ? 'null' : `a ${typeof engine}`}`;
  else {
    const e = engine as Record<string, unknown>;
    const missing = ENGINE_METHODS.filter((m) => typeof e[m] !== 'function').map((m) => `${m}()`);
    if (!isObservable(e.status$)) missing.push('status$');
    if (missing.length > 0) what = `it lacks ${missing.join(', ')}`;
  }
  if (what !== undefined) {
    throw new MpBusError(
      'INVALID_OPTION',
      `cluster.engine must be a ClusterEngine (see docs/cluster.md, "The engine interface"); ${what}. Leave it out to use NATS at cluster.servers`,
    );
  }
}

/** ready() resolves once no other node announced itself for this long after this one's hello. */
const HELLO_QUIET_MS = 25;

export class ClusterTransport implements ActorTransport {
  readonly nodeId: string;
  /** The last token of this node's own subject for each name it serves (see {@link serve}). */
  private readonly directToken: string;
  readonly pid = process.pid;
  readonly gone$: Observable<NameGone>;
  readonly membership$: Observable<MembershipChange>;
  /** The cluster's name (subject prefix `mpbus.<name>`). */
  readonly clusterName: string;
  readonly engine: ClusterEngine;
  /** Names other nodes serve, learnt from heartbeats. */
  readonly directory = new Directory();
  /** Other nodes' announcements that came in parts, joined (see {@link announcementParts}). */
  private readonly assembly = new AnnouncementAssembly();
  /** Numbers this node's announcements, for those sent in parts. */
  private announceRound = 0;
  /** When {@link tick} last ran (0: not yet). */
  private lastTickAt = 0;

  private readonly remoteGone = new Subject<NameGone>();
  private readonly prefix: string;
  private readonly packr = new Packr({ useRecords: false });
  private readonly heartbeatMs: number;
  private readonly nodeTimeoutMs: number;
  private readonly whileDisconnected: 'fail' | 'retry';
  private readonly exported: (name: string) => boolean;
  private readonly served = new Map<string, ServedName>();
  private readonly remoteAsks = new Map<number, RemoteAsk>();
  /** The number in {@link remoteAsks} of each ask by its id (what {@link cancelAsks} is given). */
  private readonly remoteAskNumbers = new Map<number, number>();
  /**
   * Asks failed here whose host may answer them still (it was taken for gone, or this node's
   * connection dropped): an answer that comes is a 'late-reply' dead letter here, until a second
   * after the ask's deadline (then its host makes it one).
   */
  private readonly failedAsks = new Map<number, { replyTo: string; id: number; action: string; deadline: number }>();
  private readonly held = new Map<number, HeldAsk>();
  /** 'retry': tells held until the cluster is back (see {@link releaseHeld}), and their bytes. */
  private heldTells: HeldTell[] = [];
  private heldTellBytes = 0;
  /**
   * 'retry', after a reconnection: the nodes known before it that have not announced themselves
   * since. Until they have (or are forgotten), messages to other hosts are held: those hosts'
   * subscriptions may not be back yet, and a tell published to no one is lost unseen.
   */
  private awaitedNodes: Set<string> | undefined;
  private awaitTimer: NodeJS.Timeout | undefined;
  private readonly heldReplyAddress: string;
  private readonly topics = new Map<string, { subject: Subject<ClusterBroadcast>; subscription?: EngineSubscription; users: number }>();
  private readonly subscriptions: EngineSubscription[] = [];
  private statusSubscription: Subscription | undefined;
  private inbox = '';
  private nextAsk = 1;
  private nextHeld = 1;
  private readonly acks: number[] = [];
  /** Probes of other nodes' inboxes in flight (see {@link probeSuspects}), by number. */
  private readonly probes = new Map<number, { node: string; inbox: string; at: number }>();
  private nextProbe = 1;
  /** Nodes whose own subject for a name had no subscriber: probed at the next tick. */
  private readonly suspects = new Set<string>();
  /** Other nodes that take asks on their own subject per name (they announce `direct`), by node: that subject's last token. */
  private readonly directTokens = new Map<string, string>();
  /**
   * Hosts forgotten for their silence whose NATS connection may still be open (stopped, hung):
   * the names they served and their inbox, until the server says that connection is closed (a
   * probe) or they announce themselves again. NATS still hands such a host its share of a queue
   * group's messages, so tells to those names go to a host of this node's choice meanwhile.
   */
  private readonly unresponsive = new Map<string, { names: ReadonlySet<string>; inbox: string }>();
  /** When this node last reconnected (0: never): other nodes are not probed for a while after. */
  private reconnectedAt = 0;
  /** An ask not acknowledged for this long may have gone to a host that died: its holders are probed. */
  private readonly overdueMs: number;
  private timer: NodeJS.Timeout | undefined;
  private announcePending = false;
  private started = false;
  /** Since the system began to close: its names no longer take messages from other hosts (see {@link leaving}). */
  private left = false;
  private closed = false;
  private readonly starting: Promise<void>;
  /** What {@link exportTo} is publishing: stopped by close. */
  private readonly exports = new Set<Subscription>();
  /** Announcements of other nodes heard (see {@link hearOthers}). */
  private directoryMessages = 0;
  /** Where messages go that were accepted but cannot go after all (the system's dead letters). */
  private undeliverable: ((to: string, envelope: Envelope, cause?: unknown, reason?: DeadLetterReason) => void) | undefined;
  private readonly log;

  constructor(
    /** The transport of this host's group: tried first for every name. */
    readonly local: ActorTransport,
    options: ClusterOptions,
  ) {
    const settings = clusterSettings(options);
    this.clusterName = settings.name;
    this.prefix = `mpbus.${settings.name}`;
    this.nodeId = `${hostPart(hostname())}.${local.nodeId}.${++nodeCounter}`;
    this.directToken = `@${subjectToken(this.nodeId)}`;
    this.heartbeatMs = settings.heartbeatMs;
    this.nodeTimeoutMs = settings.nodeTimeoutMs;
    this.whileDisconnected = settings.whileDisconnected;
    this.overdueMs = Math.max(10, Math.floor(this.heartbeatMs / 4));
    this.exported = settings.exported;
    this.engine = options.engine ?? new NatsEngine({ servers: options.servers, ...options.nats });
    this.heldReplyAddress = `$cluster-reply.${this.nodeId}`;
    this.gone$ = merge(local.gone$, this.remoteGone);
    this.membership$ = local.membership$;
    this.log = logger('cluster', { node: this.nodeId });
    this.starting = this.start();
    // A failed start is reported by ready(); never as an unhandled rejection.
    this.starting.catch(() => undefined);
  }

  /** Resolves once connected to the cluster (rejects with CLUSTER_UNAVAILABLE when the servers cannot be reached). */
  ready(): Promise<void> {
    return this.starting;
  }

  /** True while the engine's connection is up. */
  get connected(): boolean {
    return this.started && this.engine.connected;
  }

  private async start(): Promise<void> {
    await this.engine.connect();
    if (this.closed) return;
    this.inbox = this.engine.inboxPrefix();
    this.subscriptions.push(this.engine.subscribe(`${this.inbox}.*`, {}, (m) => this.onAnswer(m)));
    this.subscriptions.push(this.engine.subscribe(`${this.prefix}.$dir`, {}, (m) => this.onDirectory(m)));
    this.started = true;
    if (!this.left) for (const [name, entry] of this.served) entry.subscription ??= this.serve(name, entry);
    for (const [topic, entry] of this.topics) entry.subscription ??= this.listen(topic, entry.subject);
    this.statusSubscription = this.engine.status$.subscribe((s) => {
      if (s.type === 'reconnected') this.onReconnected();
      else if (s.type === 'disconnected') this.onDisconnected();
    });
    this.timer = setInterval(() => this.tick(), Math.max(50, Math.floor(this.heartbeatMs / 2)));
    this.timer.unref();
    this.sendDirectory('hello');
    this.announce();
    this.releaseHeld();
    await this.engine.flush();
    await this.hearOthers();
  }

  /**
   * The other nodes answer a hello with their names at once (see {@link onDirectory}): ready()
   * waits for those answers, until none came for {@link HELLO_QUIET_MS} (at most a heartbeat),
   * so a name served on another host is known once ready() resolves (it was not, for a few ms:
   * a tell to it right after was a dead letter, a watch said 'not-found').
   */
  private async hearOthers(): Promise<void> {
    const end = Date.now() + this.heartbeatMs;
    for (let heard = -1; heard !== this.directoryMessages && Date.now() < end && !this.closed;) {
      heard = this.directoryMessages;
      await new Promise((resolve) => setTimeout(resolve, HELLO_QUIET_MS));
    }
  }

  // ---------------------------------------------------------------- ActorTransport

  register(name: string, receiver: Receiver): Registration {
    const registration = this.local.register(name, receiver);
    if (!this.exported(name)) return registration;
    const entry: ServedName = { receiver, fromOtherHosts: 0 };
    if (this.started && !this.closed && !this.left) entry.subscription = this.serve(name, entry);
    this.served.set(name, entry);
    this.scheduleAnnounce();
    return {
      name,
      // The receiver settles every message it finished, wherever it came from; only those that
      // came through this process's mailbox are in the mailbox's depth (the others came from
      // NATS), so the mailbox is told of the rest only: its depth then goes back to 0.
      settle: (count) => {
        const remote = Math.min(count, entry.fromOtherHosts);
        entry.fromOtherHosts -= remote;
        if (count > remote) registration.settle?.(count - remote);
      },
      close: () => {
        if (this.served.get(name) === entry) {
          this.served.delete(name);
          entry.subscription?.close();
          this.scheduleAnnounce();
        }
        registration.close();
      },
    };
  }

  deliver(to: string, envelope: Envelope): DeliveryStatus {
    if (to === this.heldReplyAddress) return this.answerHeld(envelope);
    const status = this.local.deliver(to, envelope);
    if (status !== 'unknown' || this.closed || to.startsWith('$')) return status;
    if (envelope.kind === EnvelopeKind.tell) return this.tellRemote(to, envelope);
    if (envelope.kind === EnvelopeKind.ask) return this.askRemote(to, envelope);
    return 'unknown';
  }

  lookup(name: string): Location | undefined {
    const here = this.local.lookup(name);
    if (here) return here;
    const node = this.directory.holdersOf(name)[0];
    return node === undefined ? undefined : { pid: this.directory.pidOf(node) ?? -1, local: false };
  }

  depth(name: string): number | undefined {
    return this.local.depth(name);
  }

  waitForRoom(name: string): Promise<void> {
    return this.local.waitForRoom?.(name) ?? Promise.resolve();
  }

  onUndeliverable(handler: (to: string, envelope: Envelope, cause?: unknown, reason?: DeadLetterReason) => void): void {
    this.undeliverable = handler;
    this.local.onUndeliverable?.(handler);
  }

  wentAt(name: string): number | undefined {
    return this.local.wentAt?.(name);
  }

  unsent(): number {
    return this.local.unsent?.() ?? 0;
  }

  whenSent(): Promise<void> {
    return this.local.whenSent?.() ?? Promise.resolve();
  }

  takeUnsent(): Array<{ to: string; envelope: Envelope }> {
    // Connected and waiting to hear the other hosts again: what is held goes now rather than not at all.
    if (this.awaitedNodes !== undefined && this.engine.connected) this.releaseHeld();
    const held = this.heldTells.map(({ to, envelope }) => ({ to, envelope }));
    this.heldTells = [];
    this.heldTellBytes = 0;
    return [...(this.local.takeUnsent?.() ?? []), ...held];
  }

  join(group: string, name: string): void {
    this.local.join(group, name);
  }

  leave(group: string, name: string): void {
    this.local.leave(group, name);
  }

  members(group: string): string[] {
    return this.local.members(group);
  }

  /**
   * The system began to close: this process's names leave their queue groups at once. NATS then
   * gives their asks and tells to another host serving the name, or answers "no responders"
   * (`ACTOR_NOT_FOUND` at the asker) when none does; those it had sent here already are still
   * handled (the subscriptions drain). Resolves once they were handed to the actors, which
   * answer them as the close goes on (the system waits, up to its close's deadline). The node
   * keeps its heartbeats and says goodbye only at the close's end: a goodbye now would fail, at
   * the askers, the asks it still answers. Before this, a host closing cleanly kept taking asks
   * until its close ended, and refused them (`SYSTEM_CLOSED`) though another host served the
   * same name.
   */
  async leaving(): Promise<void> {
    if (this.left || this.closed) return;
    this.left = true;
    if (!this.started) return;
    const drained: Array<Promise<void>> = [];
    for (const entry of this.served.values()) {
      const subscription = entry.subscription;
      entry.subscription = undefined;
      if (subscription?.drain) drained.push(subscription.drain().catch((err: unknown) => this.log.debug({ err }, 'draining a subscription failed')));
      else subscription?.close();
    }
    await Promise.all(drained);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.statusSubscription?.unsubscribe();
    if (this.started) {
      for (const entry of this.served.values()) entry.subscription?.close();
      this.served.clear();
      if (this.engine.connected) this.sendDirectory('bye');
      for (const s of this.subscriptions) s.close();
      for (const t of this.topics.values()) t.subscription?.close();
    }
    for (const t of this.topics.values()) t.subject.complete();
    this.topics.clear();
    for (const exported of [...this.exports]) exported.unsubscribe();
    await this.engine.close().catch((err: unknown) => this.log.warn({ err }, 'closing the engine failed'));
    this.remoteGone.complete();
    await this.local.close();
  }

  // ---------------------------------------------------------------- broadcast

  /**
   * Publishes `payload` to every node listening to `topic` (fan-out: each listener gets it).
   * Use it to export events (interrupts, link changes) to other hosts.
   */
  broadcast(topic: string, payload: unknown): void {
    if (!this.started || this.closed)
      throw new MpBusError(ActorErrorCodes.clusterUnavailable, `cannot broadcast on '${topic}': the cluster is not connected (await system.ready())`);
    this.engine.publish(this.topicSubject(topic), this.packr.pack(encodeValue(payload)), { headers: { [ClusterHeaders.node]: this.nodeId } });
  }

  /** Broadcasts published on `topic` by any node (this one included). */
  topic$<T = unknown>(topic: string): Observable<ClusterBroadcast<T>> {
    return new Observable<ClusterBroadcast<T>>((subscriber) => {
      let entry = this.topics.get(topic);
      if (!entry) {
        entry = { subject: new Subject<ClusterBroadcast>(), users: 0 };
        if (this.started && !this.closed) entry.subscription = this.listen(topic, entry.subject);
        this.topics.set(topic, entry);
      }
      entry.users++;
      const inner = (entry.subject as Subject<ClusterBroadcast<T>>).subscribe(subscriber);
      const e = entry;
      return () => {
        inner.unsubscribe();
        if (--e.users === 0 && this.topics.get(topic) === e) {
          e.subscription?.close();
          this.topics.delete(topic);
        }
      };
    });
  }

  /**
   * Publishes every value of `source` on `topic` (e.g. `exportTo(rt.interrupts$, 'link')`);
   * unsubscribe to stop. Closing the transport (its system) stops it too: a source that never
   * completes (a timer) would otherwise keep the process alive after the close.
   */
  exportTo(source: Observable<unknown>, topic: string): Subscription {
    const exported = source.subscribe((value) => {
      if (this.connected) this.broadcast(topic, value);
    });
    if (this.closed) exported.unsubscribe();
    else {
      this.exports.add(exported);
      exported.add(() => this.exports.delete(exported));
    }
    return exported;
  }

  private topicSubject(topic: string): string {
    return `${this.prefix}.$fan.${subjectToken(topic)}`;
  }

  private listen(topic: string, subject: Subject<ClusterBroadcast>): EngineSubscription {
    return this.engine.subscribe(this.topicSubject(topic), {}, (m) => {
      let payload: unknown;
      try {
        payload = this.packr.unpack(m.data);
      } catch (err) {
        this.log.warn({ err, topic }, 'undecodable broadcast dropped');
        return;
      }
      subject.next({ topic, payload, node: m.headers[ClusterHeaders.node] ?? '' });
    });
  }

  // ---------------------------------------------------------------- sending to other hosts

  private subjectOf(name: string): string {
    return `${this.prefix}.${subjectToken(name)}`;
  }

  /**
   * The node an ask to `name` goes to, at random among those the directory says serve it, when
   * each of them takes asks on its own subject for the name; else undefined (the ask goes to
   * the name's queue group, and NATS picks). The asker's choice is what lets it stop sending to
   * a host it has forgotten: NATS would still hand a queue group's messages to a host that is
   * stopped or hung with its connection open, half of them with two hosts. (At random, as NATS
   * picks: taking the hosts in turn with one counter would send each of two names asked
   * alternately to one host only.)
   */
  private pickNode(name: string): string | undefined {
    const holders = this.directory.holdersOf(name);
    if (holders.length === 0) return undefined;
    for (const node of holders) if (!this.directTokens.has(node)) return undefined;
    return holders[Math.floor(Math.random() * holders.length)];
  }

  /** The subject of `name` on `node` (see {@link pickNode}), or its queue group's when `node` is undefined. */
  private subjectFor(name: string, node: string | undefined): string {
    return node === undefined ? this.subjectOf(name) : `${this.subjectOf(name)}.${this.directTokens.get(node)!}`;
  }

  /** Where a tell to `name` goes: its queue group, unless a host that served it is {@link unresponsive}. */
  private tellSubject(name: string): string {
    for (const host of this.unresponsive.values()) if (host.names.has(name)) return this.subjectFor(name, this.pickNode(name));
    return this.subjectOf(name);
  }

  /** True while messages to other hosts are held ('retry': down, or not yet heard the others again). */
  private get holding(): boolean {
    return this.whileDisconnected === 'retry' && (!this.engine.connected || this.awaitedNodes !== undefined);
  }

  private tellRemote(to: string, envelope: Envelope): DeliveryStatus {
    if (!this.started) return 'unknown';
    if (!this.engine.connected && this.whileDisconnected === 'fail') return 'unknown';
    if (!this.directory.has(to)) return 'unknown';
    const headers: EngineHeaders = { [ClusterHeaders.kind]: 'tell', [ClusterHeaders.trace]: envelope.trace ?? newTrace(), [ClusterHeaders.node]: this.nodeId };
    if (this.holding || this.heldTells.length > 0) return this.holdTell(to, envelope, headers);
    return this.publishTell(to, envelope, this.encodeRequest(envelope), headers);
  }

  private holdTell(to: string, envelope: Envelope, headers: EngineHeaders): DeliveryStatus {
    let data: Uint8Array;
    try {
      data = this.encodeRequest(envelope);
    } catch (err) {
      this.undeliverable?.(to, envelope, err);
      return 'delivered';
    }
    if (this.heldTellBytes + data.length > HELD_TELLS_MAX_BYTES) {
      this.undeliverable?.(to, envelope, undefined, 'mailbox-full');
      return 'delivered';
    }
    this.heldTells.push({ to, envelope, data, headers, before: this.nextAsk });
    this.heldTellBytes += data.length;
    return 'delivered';
  }

  private publishTell(to: string, envelope: Envelope, data: Uint8Array, headers: EngineHeaders): DeliveryStatus {
    try {
      this.engine.publish(this.tellSubject(to), data, { headers });
    } catch (err) {
      if (isTooLarge(err) && this.undeliverable) {
        // the name is there: the message cannot go (an 'encode-failed' dead letter, naming why)
        this.undeliverable(to, envelope, err);
        return 'delivered';
      }
      this.log.warn({ err, to }, 'tell to another host failed');
      return 'unknown';
    }
    return 'delivered';
  }

  private askRemote(to: string, envelope: Envelope): DeliveryStatus {
    if (envelope.replyTo === undefined || envelope.id === undefined) return 'unknown';
    const now = Date.now();
    const deadline = envelope.deadline ?? now + 10_000;
    const headers: EngineHeaders = {
      [ClusterHeaders.kind]: 'ask',
      [ClusterHeaders.trace]: envelope.trace ?? newTrace(),
      [ClusterHeaders.askId]: String(envelope.id),
      [ClusterHeaders.node]: this.nodeId,
    };
    const node = this.pickNode(to);
    const ask: RemoteAsk = {
      to,
      subject: this.subjectFor(to, node),
      action: envelope.action,
      replyTo: envelope.replyTo,
      id: envelope.id,
      data: this.encodeRequest(envelope),
      headers,
      deadline,
      sentAt: now,
      node,
    };
    const n = this.nextAsk++;
    this.remoteAsks.set(n, ask);
    this.remoteAskNumbers.set(ask.id, n);
    if (!this.connected || this.holding) {
      // 'retry': kept, and sent once (re)connected and the other hosts heard from (see releaseHeld).
      // On a later turn of the event loop, not in a microtask: a loop that asks again at once on
      // each failure would otherwise never let timers and I/O run, the NATS client's reconnect
      // among them (it spun on CLUSTER_UNAVAILABLE for good after the server came back).
      if (this.whileDisconnected === 'fail') setImmediate(() => this.failAsk(n, this.unavailable()));
      return 'delivered';
    }
    this.publishAsk(n, ask);
    return 'delivered';
  }

  private publishAsk(n: number, ask: RemoteAsk): void {
    ask.sentAt = Date.now();
    ask.headers[ClusterHeaders.timeoutMs] = String(Math.max(1, ask.deadline - ask.sentAt));
    try {
      this.engine.publish(ask.subject, ask.data, { reply: `${this.inbox}.${n}`, headers: ask.headers });
    } catch (err) {
      const failure = isTooLarge(err) ? toWireError(err) : { ...this.unavailable(), message: `sending failed: ${(err as Error).message}` };
      setImmediate(() => this.failAsk(n, failure)); // (a later turn: see deliver)
    }
  }

  private unavailable(): WireError {
    return { name: 'ClusterUnavailableError', code: ActorErrorCodes.clusterUnavailable, message: 'the cluster connection is down' };
  }

  private encodeRequest(envelope: Envelope): Uint8Array {
    return this.packr.pack([envelope.action, encodeValue(envelope.payload, payloadRoot[envelope.kind]), envelope.sender ?? null]);
  }

  /** An answer on this node's inbox: ack, reply, failure, or the engine's "no responders". */
  private onAnswer(m: EngineMessage): void {
    const suffix = m.subject.slice(this.inbox.length + 1);
    if (suffix.startsWith('p')) {
      this.onProbeAnswer(Number(suffix.slice(1)), m);
      return;
    }
    const n = Number(suffix);
    const ask = this.remoteAsks.get(n);
    if (!ask) {
      this.lateAnswer(n, m);
      return;
    }
    if (m.noResponders) {
      if (ask.node !== undefined) {
        // Not delivered: its node no longer serves the name (it stopped it, or died). Sent again
        // to the name's queue group; the node is probed at the next tick.
        if (this.directory.knows(ask.node)) this.suspects.add(ask.node);
        this.toQueueGroup(ask);
        this.publishAsk(n, ask);
        return;
      }
      // Just after an outage the hosts serving a known name may not have subscribed again yet.
      if (this.whileDisconnected === 'retry' && this.directory.has(ask.to) && ask.deadline > Date.now() + RESEND_MS) {
        setTimeout(() => {
          if (this.remoteAsks.get(n) === ask && this.connected) this.publishAsk(n, ask);
        }, RESEND_MS).unref();
        return;
      }
      this.failAsk(n, { name: 'ActorNotFoundError', code: ActorErrorCodes.actorNotFound, message: `no actor named '${ask.to}' on any host` });
      return;
    }
    const kind = m.headers[ClusterHeaders.kind];
    if (kind === 'ack') {
      ask.responder = m.headers[ClusterHeaders.node];
      return;
    }
    if (kind !== 'reply' && kind !== 'failure') return;
    let payload: unknown;
    try {
      payload = this.packr.unpack(m.data);
    } catch (err) {
      this.failAsk(
        n,
        toWireError(
          new MpBusError(
            'DECODE_FAILED',
            `the answer of '${ask.to}' to '${ask.action}' from another host could not be decoded (${(err as Error).message}): its host may run another mpbus version; its handler may have run, so ask again only if that is safe`,
          ),
        ),
      );
      return;
    }
    this.dropRemoteAsk(n, ask);
    this.local.deliver(ask.replyTo, { kind: kind === 'reply' ? EnvelopeKind.reply : EnvelopeKind.failure, action: ask.action, payload, id: ask.id });
  }

  /** Makes `ask` go to its name's queue group (NATS picks the host) rather than to the node it was for. */
  private toQueueGroup(ask: RemoteAsk): void {
    ask.node = undefined;
    ask.subject = this.subjectOf(ask.to);
  }

  /** An answer to an ask failed here already (see {@link failedAsks}): a 'late-reply' dead letter. */
  private lateAnswer(n: number, m: EngineMessage): void {
    const failed = this.failedAsks.get(n);
    const kind = m.headers[ClusterHeaders.kind];
    if (failed === undefined || (kind !== 'reply' && kind !== 'failure')) return;
    this.failedAsks.delete(n);
    let payload: unknown;
    try {
      payload = this.packr.unpack(m.data);
    } catch {
      return;
    }
    // (its id is no longer pending there: the system makes it the dead letter)
    this.local.deliver(failed.replyTo, { kind: kind === 'reply' ? EnvelopeKind.reply : EnvelopeKind.failure, action: failed.action, payload, id: failed.id });
  }

  /** Fails the ask numbered `n` with `error`; `mayStillAnswer`: its host may answer it yet (see {@link failedAsks}). */
  private failAsk(n: number, error: WireError, mayStillAnswer = false): void {
    const ask = this.remoteAsks.get(n);
    if (!ask) return;
    this.dropRemoteAsk(n, ask);
    if (mayStillAnswer) this.failedAsks.set(n, { replyTo: ask.replyTo, id: ask.id, action: ask.action, deadline: ask.deadline });
    this.local.deliver(ask.replyTo, { kind: EnvelopeKind.failure, action: ask.action, payload: error, id: ask.id });
  }

  /**
   * The caller of asks `ids` called them off (their signal aborted; see
   * `ActorTransport.cancelAsks`): those sent to other hosts are not sent once the cluster is
   * back if held, nor sent again if their answer may have been lost, and their encoded messages
   * are let go now rather than at their deadline. An answer a host still sends is a
   * 'late-reply' dead letter here, as for an ask failed here. Those of this process are the
   * local transport's.
   */
  cancelAsks(replyTo: string, ids: readonly number[]): void {
    this.local.cancelAsks?.(replyTo, ids);
    if (this.remoteAsks.size === 0) return;
    for (const id of ids) {
      const n = this.remoteAskNumbers.get(id);
      const ask = n === undefined ? undefined : this.remoteAsks.get(n);
      if (ask === undefined || ask.replyTo !== replyTo) continue;
      this.dropRemoteAsk(n!, ask);
      this.failedAsks.set(n!, { replyTo, id, action: ask.action, deadline: ask.deadline });
    }
  }

  /** Those waiting for a name of this host's group (an ask published to another host is out of reach). */
  takeBackAsks(to: string, replyTo: string, ids: readonly number[]): void {
    this.local.takeBackAsks?.(to, replyTo, ids);
  }

  private dropRemoteAsk(n: number, ask: RemoteAsk): void {
    this.remoteAsks.delete(n);
    if (this.remoteAskNumbers.get(ask.id) === n) this.remoteAskNumbers.delete(ask.id);
  }

  // ---------------------------------------------------------------- serving other hosts

  /** Serves `name` to other hosts: on its queue group's subject, and on this node's own subject for it (asks a host sends here by choice). */
  private serve(name: string, entry: ServedName): EngineSubscription {
    const subject = this.subjectOf(name);
    const handler = (m: EngineMessage): void => this.onRequest(name, entry, m);
    const pool = this.engine.subscribe(subject, { queue: subject }, handler);
    const own = this.engine.subscribe(`${subject}.${this.directToken}`, {}, handler);
    return {
      close: () => {
        pool.close();
        own.close();
      },
      drain: async () => {
        await Promise.all([pool, own].map((s) => (s.drain ? s.drain() : Promise.resolve(s.close()))));
      },
    };
  }

  private onRequest(name: string, entry: ServedName, m: EngineMessage): void {
    const receiver = entry.receiver;
    let action: string;
    let payload: unknown;
    let sender: string | null;
    try {
      [action, payload, sender] = this.packr.unpack(m.data) as [string, unknown, string | null];
      if (typeof action !== 'string') throw new Error('no action');
    } catch (err) {
      this.log.warn({ err, name }, 'undecodable message from another host dropped');
      if (m.reply)
        this.engine.publish(m.reply, this.packr.pack(toWireError(new MpBusError('DECODE_FAILED', `message to '${name}' could not be decoded`))), {
          headers: { [ClusterHeaders.kind]: 'failure', [ClusterHeaders.node]: this.nodeId },
        });
      return;
    }
    const trace = m.headers[ClusterHeaders.trace];
    const envelope: Envelope = { kind: EnvelopeKind.tell, action, payload };
    if (sender !== null && sender !== undefined) envelope.sender = sender;
    if (trace !== undefined) envelope.trace = trace;
    if (m.reply !== undefined && m.headers[ClusterHeaders.kind] === 'ask') {
      const timeoutMs = Number(m.headers[ClusterHeaders.timeoutMs]);
      // In the clock a nested ask reads its time left with (wallClockAt: up to 1 ms behind
      // Date.now()), so it never gets more than its caller gave (a 400 ms ask's inner ask got 401).
      const deadline = wallClockAt(performance.now()) + (Number.isFinite(timeoutMs) && timeoutMs > 0 ? timeoutMs : 10_000);
      const id = this.nextHeld++;
      this.held.set(id, { reply: m.reply, trace, expires: deadline + 1000 });
      this.scheduleAck(id);
      envelope.kind = EnvelopeKind.ask;
      envelope.id = id;
      envelope.replyTo = this.heldReplyAddress;
      envelope.deadline = deadline;
    }
    if (receiver.settles) entry.fromOtherHosts++;
    receiver.receive(envelope);
  }

  /**
   * Acknowledges held asks once this turn of the event loop is over: an ask answered at once
   * needs no ack (its answer names the node), one still in hand gets one, so its asker knows
   * which node to watch.
   */
  private scheduleAck(id: number): void {
    this.acks.push(id);
    if (this.acks.length > 1) return;
    setImmediate(() => {
      const ids = this.acks.splice(0);
      for (const held of ids) {
        const entry = this.held.get(held);
        if (!entry) continue;
        try {
          this.engine.publish(entry.reply, new Uint8Array(0), { headers: { [ClusterHeaders.kind]: 'ack', [ClusterHeaders.node]: this.nodeId } });
        } catch (err) {
          this.log.debug({ err }, 'ack not sent (connection down)');
        }
      }
    });
  }

  /** The local actor answered an ask from another host: send the answer back. */
  private answerHeld(envelope: Envelope): DeliveryStatus {
    const held = envelope.id === undefined ? undefined : this.held.get(envelope.id);
    if (!held) {
      // its asker stopped waiting a while ago (the entry expired): an answer too late, as locally
      this.undeliverable?.(this.heldReplyAddress, envelope, undefined, 'late-reply');
      return 'delivered';
    }
    this.held.delete(envelope.id!);
    const kind = envelope.kind === EnvelopeKind.failure ? 'failure' : 'reply';
    const headers: EngineHeaders = { [ClusterHeaders.kind]: kind, [ClusterHeaders.node]: this.nodeId };
    if (held.trace !== undefined) headers[ClusterHeaders.trace] = held.trace;
    let data: Uint8Array;
    try {
      data = this.packr.pack(encodeValue(envelope.payload, payloadRoot[envelope.kind]));
    } catch (err) {
      data = this.packr.pack(toWireError(unsendableAnswer(err)));
      headers[ClusterHeaders.kind] = 'failure';
    }
    try {
      this.engine.publish(held.reply, data, { headers });
    } catch (err) {
      if (isTooLarge(err)) {
        // The asker learns at once why, rather than at its timeout.
        headers[ClusterHeaders.kind] = 'failure';
        const failure = new MpBusError(ErrorCodes.messageTooLarge, `the answer could not be sent: ${(err as Error).message}`);
        try {
          this.engine.publish(held.reply, this.packr.pack(toWireError(failure)), { headers });
          return 'delivered';
        } catch {
          // down as well: lost like any answer while the connection is down
        }
      }
      this.log.debug({ err }, 'answer to another host lost (connection down)');
    }
    return 'delivered';
  }

  // ---------------------------------------------------------------- membership

  private sendDirectory(what: 'hb' | 'hello' | 'bye'): void {
    const a: NodeAnnouncement = {
      node: this.nodeId,
      pid: process.pid,
      host: hostname(),
      names: what === 'bye' ? [] : [...this.served.keys()],
      inbox: this.inbox,
      direct: true,
    };
    // A long list of names goes in parts: one message of it all would be refused over max_payload.
    for (const m of announcementParts(a, ++this.announceRound)) {
      try {
        this.engine.publish(`${this.prefix}.$dir`, this.packr.pack(m), { headers: { [ClusterHeaders.dir]: what } });
      } catch (err) {
        // (a part too large for the servers is this node's problem to report; an outage is not)
        if (isTooLarge(err)) this.log.warn({ err, names: a.names.length }, 'directory message not sent');
        else this.log.debug({ err }, 'directory message not sent');
        return;
      }
    }
  }

  private announce(): void {
    if (this.started && !this.closed && this.engine.connected) this.sendDirectory('hb');
  }

  /** Announces soon, once for a burst of registrations. */
  private scheduleAnnounce(): void {
    if (this.announcePending || !this.started) return;
    this.announcePending = true;
    setImmediate(() => {
      this.announcePending = false;
      this.announce();
    });
  }

  private onDirectory(m: EngineMessage): void {
    let message: AnnouncementMessage;
    try {
      message = this.packr.unpack(m.data) as AnnouncementMessage;
      if (typeof message?.node !== 'string' || !Array.isArray(message.names)) throw new Error('malformed');
    } catch {
      return;
    }
    if (message.node === this.nodeId) return;
    this.directoryMessages++;
    const what = m.headers[ClusterHeaders.dir];
    if (what === 'bye') {
      this.nodeRemoved(message.node, 'left');
      return;
    }
    this.directory.touch(message.node, Date.now());
    const whole = this.assembly.add(message);
    if (whole !== undefined) this.learn(whole, what === 'hello');
  }

  /** Takes in another node's whole announcement (`hello`: it just came, or came back). */
  private learn(a: NodeAnnouncement, hello: boolean): void {
    const fresh = !this.directory.knows(a.node);
    const vanished = this.directory.announce(
      {
        node: a.node,
        pid: Number(a.pid) || -1,
        host: String(a.host ?? ''),
        names: a.names.filter((n) => typeof n === 'string'),
        inbox: typeof a.inbox === 'string' && a.inbox.length <= INBOX_MAX_LENGTH && SUBJECT_LITERAL.test(a.inbox) ? a.inbox : undefined,
      },
      Date.now(),
    );
    this.unresponsive.delete(a.node);
    // (made once per node, not at each of its heartbeats)
    if (a.direct !== true) this.directTokens.delete(a.node);
    else if (!this.directTokens.has(a.node)) this.directTokens.set(a.node, `@${subjectToken(a.node)}`);
    for (const name of vanished) this.nameGone(name, 'stopped');
    // A node that just came (or came back) wants to know us now, not at our next heartbeat.
    if (hello || fresh) this.scheduleAnnounce();
    this.heardAgain(a.node);
  }

  /**
   * Forgets `node`: it said goodbye ('left'), went silent for `nodeTimeoutMs` ('silent'), or its
   * inbox has no subscriber on the server any more ('connection-closed': its NATS connection is
   * gone). The asks it acknowledged fail, and so do those to the queue groups of names no one
   * serves now; when it died ('silent', 'connection-closed'), those sent to it or (with 'fail')
   * to its names' queue groups that no host acknowledged too (see {@link failUnacknowledged}).
   */
  private nodeRemoved(node: string, how: 'left' | 'silent' | 'connection-closed'): void {
    const reason = how === 'left' ? 'stopped' : 'process-exited';
    const inbox = this.directory.inboxOf(node);
    const removed = this.directory.remove(node, reason);
    this.assembly.forget(node);
    if (removed) {
      if (how === 'silent' && inbox !== undefined) this.unresponsive.set(node, { names: removed.names, inbox });
      this.forgotten(removed, how);
    }
    // (after: the last node awaited after an outage releases what it held)
    this.heardAgain(node);
  }

  /** What follows when a node is forgotten (see {@link nodeRemoved}): its asks end, its names go. */
  private forgotten(removed: NodeRemoved, how: 'left' | 'silent' | 'connection-closed'): void {
    const { node, reason } = removed;
    this.log.info({ node, reason, how, vanished: removed.vanished }, 'node left the cluster');
    const cause =
      how === 'left' ? 'it left the cluster' : how === 'silent' ? 'no heartbeat from it within nodeTimeoutMs' : 'its connection to the cluster closed';
    this.directTokens.delete(node);
    this.suspects.delete(node);
    for (const [n, ask] of this.remoteAsks) {
      if (ask.responder === node) this.failAsk(n, hostWentAway(ask, cause), true);
      else if (ask.responder === undefined && ask.node === undefined && removed.vanished.includes(ask.to)) this.failAsk(n, hostWentAway(ask, cause), true);
      // 'retry', held: not sent yet, or sent again once the outage is over; to the others then
      else if (ask.node === node && ask.responder === undefined && this.holding) this.toQueueGroup(ask);
    }
    // A host that left answered what it took in before its goodbye: an ask sent to it and not
    // answered was not delivered, and "no responders" is on its way (it then goes to the others).
    if (how !== 'left' && !this.holding) this.failUnacknowledged(removed, Date.now(), cause);
    for (const name of removed.vanished) this.nameGone(name, reason);
  }

  /**
   * `removed` died by `diedBy`: the asks sent before then that no host acknowledged fail once a
   * live host would have acknowledged them (`overdueMs` after they were sent; a live host
   * acknowledges within a turn of its event loop), now or on one timer: those sent to it (one
   * not delivered there gets "no responders" meanwhile, and goes to the others), and with
   * 'fail' those to the queue groups of the names it served. Most likely those went to it as it
   * died (a killed process's connection lingers for a few ms, and NATS still gives it messages
   * of its queue groups), and would otherwise wait for their whole timeout.
   */
  private failUnacknowledged(removed: NodeRemoved, diedBy: number, cause: string): void {
    if (this.closed) return;
    const now = Date.now();
    const queueAsksToo = this.whileDisconnected === 'fail';
    let later = false;
    for (const [n, ask] of this.remoteAsks) {
      if (ask.responder !== undefined || ask.sentAt >= diedBy) continue;
      if (ask.node === undefined ? !queueAsksToo || !removed.names.has(ask.to) : ask.node !== removed.node) continue;
      if (now - ask.sentAt >= this.overdueMs) this.failAsk(n, hostWentAway(ask, `${cause}; it had not acknowledged the ask`), true);
      else later = true;
    }
    if (later) setTimeout(() => this.failUnacknowledged(removed, diedBy, cause), this.overdueMs).unref();
  }

  /**
   * Whether other nodes are probed ({@link probeSuspects}): with 'fail' only ('retry' waits out
   * other hosts' outages), while connected, and not just after this node's own reconnection
   * (the others' subscriptions may not be back on the server yet).
   */
  private probing(now: number): boolean {
    return this.whileDisconnected === 'fail' && this.engine.connected && this.pastReconnectGrace(now);
  }

  /** Whether the other nodes' subscriptions are back on the server after this node's last reconnection (or it never reconnected). */
  private pastReconnectGrace(now: number): boolean {
    return now - this.reconnectedAt > this.nodeTimeoutMs + RECONNECT_GRACE_MS;
  }

  /**
   * Publishes an empty message to the inbox of each node in `suspects` (one that holds an ask
   * long unacknowledged, or serves the name of one), with a reply subject here: while the node's
   * NATS connection is open the message reaches it and nothing comes back; once it is closed
   * (the process was killed) the server answers "no responders" at once, and the node is
   * forgotten then ({@link onProbeAnswer}) rather than after `nodeTimeoutMs` of silence.
   */
  private probeSuspects(suspects: Set<string>, now: number): void {
    for (const node of suspects) {
      const inbox = this.directory.inboxOf(node);
      if (inbox !== undefined && !this.probe(node, inbox, now)) return;
    }
  }

  /** Publishes a probe to `inbox`, the inbox of `node`; false when it could not go (the connection is down). */
  private probe(node: string, inbox: string, now: number): boolean {
    const k = this.nextProbe++;
    this.probes.set(k, { node, inbox, at: now });
    try {
      this.engine.publish(`${inbox}.probe`, new Uint8Array(0), {
        reply: `${this.inbox}.p${k}`,
        headers: { [ClusterHeaders.kind]: 'probe', [ClusterHeaders.node]: this.nodeId },
      });
      return true;
    } catch (err) {
      this.probes.delete(k);
      this.log.debug({ err }, 'probe not sent (connection down)');
      return false;
    }
  }

  private onProbeAnswer(k: number, m: EngineMessage): void {
    const probe = this.probes.get(k);
    if (probe === undefined) return;
    this.probes.delete(k);
    if (!m.noResponders) return;
    // A host forgotten for its silence whose connection is closed now: its queue groups are the others'.
    if (this.unresponsive.get(probe.node)?.inbox === probe.inbox) this.unresponsive.delete(probe.node);
    // (a node that announced another inbox since is not the one probed)
    else if (this.probing(Date.now()) && this.directory.inboxOf(probe.node) === probe.inbox) this.nodeRemoved(probe.node, 'connection-closed');
  }

  private nameGone(name: string, reason: 'stopped' | 'process-exited'): void {
    if (this.local.lookup(name)) return;
    this.remoteGone.next({ name, reason });
  }

  private tick(): void {
    const now = Date.now();
    // A tick a heartbeat late: this process did not run (a long synchronous task, a large
    // value's encoding, a stopped process), and what the others sent meanwhile waits unread
    // behind this timer. Their silence says nothing then: they get a fresh grace period.
    const late = this.lastTickAt !== 0 && now - this.lastTickAt > this.heartbeatMs;
    this.lastTickAt = now;
    this.announce();
    if (late) this.directory.touchAll(now);
    // While this node is cut off it hears no one: silence then says nothing about the others.
    else if (this.engine.connected) for (const node of this.directory.silentSince(now - this.nodeTimeoutMs)) this.nodeRemoved(node, 'silent');
    for (const [k, probe] of this.probes) if (probe.at + this.heartbeatMs < now) this.probes.delete(k);
    for (const [n, failed] of this.failedAsks) if (failed.deadline + 1000 < now) this.failedAsks.delete(n);
    const probing = !late && this.probing(now);
    let unacknowledged: Set<string> | undefined;
    for (const [n, ask] of this.remoteAsks) {
      if (ask.deadline + 1000 < now) this.dropRemoteAsk(n, ask);
      else if (!probing) continue;
      else if (ask.responder !== undefined) {
        if (now - ask.sentAt >= this.heartbeatMs) this.suspects.add(ask.responder);
      } else if (now - ask.sentAt < this.overdueMs) continue;
      else if (ask.node !== undefined) this.suspects.add(ask.node);
      else (unacknowledged ??= new Set()).add(ask.to);
    }
    for (const name of unacknowledged ?? []) for (const node of this.directory.holdersOf(name)) this.suspects.add(node);
    if (probing && this.suspects.size > 0) this.probeSuspects(this.suspects, now);
    this.suspects.clear();
    if (!late && this.engine.connected && this.pastReconnectGrace(now))
      for (const [node, host] of this.unresponsive) if (!this.probe(node, host.inbox, now)) break;
    for (const [id, held] of this.held) if (held.expires < now) this.held.delete(id);
  }

  private onDisconnected(): void {
    if (this.whileDisconnected === 'retry') {
      this.stopAwaiting(); // (held until the next reconnection's hosts are heard)
      return;
    }
    for (const n of this.remoteAsks.keys()) this.failAsk(n, this.unavailable(), true);
  }

  private onReconnected(): void {
    this.reconnectedAt = Date.now();
    this.directory.touchAll(Date.now() + RECONNECT_GRACE_MS);
    this.sendDirectory('hello');
    this.announce();
    if (this.whileDisconnected !== 'retry') return;
    // Held until every host known before the outage announced itself again (its subscriptions are
    // back by then: a client sends them before anything else) or is forgotten, or this long.
    this.awaitedNodes = new Set(this.directory.snapshot().map((n) => n.node));
    this.awaitTimer = setTimeout(() => this.releaseHeld(), this.nodeTimeoutMs + RECONNECT_GRACE_MS);
    this.awaitTimer.unref();
    if (this.awaitedNodes.size === 0) this.releaseHeld();
  }

  /** `node` announced itself (or was forgotten): the last of those awaited releases what is held. */
  private heardAgain(node: string): void {
    if (this.awaitedNodes?.delete(node) && this.awaitedNodes.size === 0 && this.engine.connected) this.releaseHeld();
  }

  private stopAwaiting(): void {
    clearTimeout(this.awaitTimer);
    this.awaitTimer = undefined;
    this.awaitedNodes = undefined;
  }

  /**
   * 'retry': sends what the outage held, in the order it was sent: asks made while away, asks
   * whose answer the outage may have lost (sent again), and the held tells between them.
   */
  private releaseHeld(): void {
    this.stopAwaiting();
    if (this.whileDisconnected !== 'retry' || !this.engine.connected) return;
    const tells = this.heldTells;
    this.heldTells = [];
    this.heldTellBytes = 0;
    let t = 0;
    const now = Date.now();
    for (const [n, ask] of this.remoteAsks) {
      for (; t < tells.length && tells[t]!.before <= n; t++) this.sendHeldTell(tells[t]!);
      if (ask.deadline > now) this.publishAsk(n, ask);
    }
    for (; t < tells.length; t++) this.sendHeldTell(tells[t]!);
  }

  private sendHeldTell(tell: HeldTell): void {
    const status = this.directory.has(tell.to) ? this.publishTell(tell.to, tell.envelope, tell.data, tell.headers) : 'unknown';
    if (status === 'unknown') this.undeliverable?.(tell.to, tell.envelope);
  }
}

/** The failure of an ask whose host went away (`cause`: how that was noticed). */
function hostWentAway(ask: RemoteAsk, cause: string): WireError {
  return {
    name: 'ActorStoppedError',
    code: ActorErrorCodes.actorStopped,
    message: `the host serving '${ask.to}' went away`,
    fields: { why: `went away with its host (${cause})` },
  };
}
