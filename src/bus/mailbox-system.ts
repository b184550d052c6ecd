/**
 * This process's mailbox system (MailboxSystem): made once per process on the runtime's
 * attachment, it opens mailboxes here, hands out send handles to any mailbox of the group,
 * watches names, and closes it all with the runtime. The work is done by the pieces it puts
 * together: src/bus/mailbox-port.ts (shared native access), mailbox-pump.ts (receiving),
 * mailbox-ref.ts (sending), local-mailbox.ts (a mailbox), mailbox-watch.ts (death watch).
 */
import type { Observable } from 'rxjs';
import { MpBusError, ErrorCodes } from '../errors.js';
import { checkedOptions, integerIn, optionKeys } from '../validation.js';
import { attach, attachAsync, MEMORY_DEFAULTS, memorySettings, type Attachment } from './attachment.js';
import { Membership } from './membership.js';
import { checkName, registry, type MailboxAddress } from './registry.js';
import { countMailboxes } from './mailbox-counters.js';
import { Mailbox } from './local-mailbox.js';
import { MailboxPort } from './mailbox-port.js';
import { MailboxPump } from './mailbox-pump.js';
import { MailboxRef } from './mailbox-ref.js';
import { NameWatch } from './mailbox-watch.js';
import type { MailboxOptions, MailboxSystemOptions, MailboxGone, SendOptions, TrySendResult } from './mailbox-types.js';

const DEFAULT_CAPACITY = 1024;
const DEFAULT_SPIN_US = 10;
const DEFAULT_IDLE_PARK_MS = 1;
/** Refs cached before the first sweep of those whose name is gone (see `MailboxSystem.sweepRefs`). */
const REF_SWEEP_MIN = 1024;

let system: MailboxSystem | undefined;

/** This process's mailboxes and the way to send to any mailbox of the group. */
export class MailboxSystem {
  /** Who is alive in the group (peer death events, reaping). */
  readonly membership: Membership;
  /** Messages that could not be delivered here: bad descriptors, undecodable payloads, dead letters. */
  readonly errors$: Observable<MpBusError>;

  private readonly att: Attachment;
  private readonly port: MailboxPort;
  private readonly pump: MailboxPump;
  private readonly names: NameWatch;
  private readonly refs = new Map<string, MailboxRef<unknown>>();
  /** Size of {@link refs} at which the refs of names no longer in the group are dropped. */
  private sweepRefsAt = REF_SWEEP_MIN;

  /** What this process's mailbox system was opened with (defaults filled in): later opens must agree. */
  private readonly settings: Required<MailboxSystemOptions>;

  private constructor(att: Attachment, options: MailboxSystemOptions) {
    this.att = att;
    const given = definedOf(options);
    this.settings = {
      poolBuffers: given.poolBuffers ?? MEMORY_DEFAULTS.poolBuffers,
      bufferSize: given.bufferSize ?? MEMORY_DEFAULTS.bufferSize,
      inboxSize: given.inboxSize ?? MEMORY_DEFAULTS.inboxSize,
      registryEntries: given.registryEntries ?? MEMORY_DEFAULTS.registryEntries,
      spinUs: given.spinUs ?? DEFAULT_SPIN_US,
      idleParkMs: given.idleParkMs ?? DEFAULT_IDLE_PARK_MS,
      keepAlive: given.keepAlive ?? true,
    };
    this.port = new MailboxPort(att, options.keepAlive ?? true);
    this.membership = Membership.join();
    this.errors$ = this.port.errors.asObservable();
    this.pump = new MailboxPump(this.port, this.settings.spinUs, this.settings.idleParkMs);
    this.names = new NameWatch(this.port, this.membership);
    att.beforeDetach.push(() => this.shutdown());
    att.beforeDetach.push(countMailboxes(() => this.port.boxes.values()));
    this.pump.start();
  }

  /**
   * This process's mailbox system (made on first call; later calls return it). Requires a
   * started {@link Runtime}; it is closed with the runtime. The first call's options decide:
   * a later call may repeat them or leave them out, not change them.
   *
   * @throws {MpBusError} `EBUSY` while another process of the group is still creating the
   *   group's mailbox objects (processes starting together): use {@link MailboxSystem.openAsync},
   *   which waits for that without blocking. `INVALID_OPTION` for an option out of range, or one
   *   that differs from the first call's.
   */
  static open(options: MailboxSystemOptions = {}): MailboxSystem {
    checkSystemOptions(options);
    if (system && !system.closed) return system.agreeing(options);
    system = new MailboxSystem(attach(options), options);
    return system;
  }

  /**
   * Like {@link MailboxSystem.open}, but when another process of the group is still creating
   * the group's mailbox objects (a primary and secondaries starting together), or reaping the
   * dead previous holder of this process's slot, it waits for that on timers (up to 5 s,
   * `ETIMEDOUT` then) where `open` throws `EBUSY`. The JS thread never sleeps in either.
   */
  static async openAsync(options: MailboxSystemOptions = {}): Promise<MailboxSystem> {
    checkSystemOptions(options);
    if (system && !system.closed) return system.agreeing(options);
    await attachAsync(options);
    return MailboxSystem.open(options);
  }

  /**
   * This system, when `options` (of a later open) agree with those it was opened with: the first
   * open decides, and a later one that asks for something else would be ignored unseen.
   */
  private agreeing(options: MailboxSystemOptions): MailboxSystem {
    for (const [key, value] of Object.entries(definedOf(options))) {
      const now = (this.settings as Record<string, unknown>)[key];
      if (now !== undefined && now !== value) {
        throw new MpBusError(
          ErrorCodes.invalidOption,
          `this process's mailbox system is open already, with ${key} ${JSON.stringify(now)}: it cannot change to ${JSON.stringify(value)}; give every open (and startActorSystem's mailboxes) the same options, or none after the first`,
        );
      }
    }
    return this;
  }

  /** This process's slot in the process table (its lcore id). */
  get slot(): number {
    return this.att.slot;
  }

  /** Largest payload (bytes) that fits in one pool buffer; larger ones go through rte_malloc. */
  get maxInlineBytes(): number {
    return this.port.maxInlineBytes;
  }

  /** True once closed (with the runtime). */
  get closed(): boolean {
    return this.port.closed;
  }

  /**
   * Opens a mailbox named `name` in this process and registers the name in the group.
   * @throws {MpBusError} NAME_TAKEN when a mailbox of that name exists anywhere in the group.
   */
  open<T = unknown>(name: string, options: MailboxOptions = {}): Mailbox<T> {
    this.port.assertOpen();
    checkName(name);
    checkedOptions(options, MAILBOX_OPTION_KEYS, `open('${name}') options`);
    const capacity = integerIn(options.capacity ?? DEFAULT_CAPACITY, 'capacity', 1, 0x7fffffff);
    const native = this.port.native;
    const id = native.mbxOpen(capacity);
    const address: MailboxAddress = { slot: this.att.slot, generation: this.att.generation, id };
    // A name still held by a process that died and was not reaped yet (a restarted worker taking
    // its predecessor's names back): a scan reaps it, which unregisters its names.
    if (!registry.add(name, address) && !(this.membership.scan(), registry.add(name, address))) {
      native.mbxClose(id);
      const where = registry.lookup(name);
      const owner = where && this.membership.peers().find((p) => p.slot === where.slot);
      throw new MpBusError(
        ErrorCodes.nameTaken,
        `a mailbox named '${name}' is already open${owner ? ` in pid ${owner.pid}` : ''}: close it first or pick another name`,
      );
    }
    const box = new Mailbox<T>(this.port, name, address, capacity);
    this.port.addBox(box);
    return box;
  }

  /** A sending handle for the mailbox `name`, anywhere in the group (cached; cheap to call). */
  ref<T = unknown>(name: string): MailboxRef<T> {
    let ref = this.refs.get(name);
    if (!ref) {
      checkName(name);
      if (this.refs.size >= this.sweepRefsAt) this.sweepRefs();
      ref = new MailboxRef<unknown>(this.port, this.pump, name);
      this.refs.set(name, ref);
    }
    return ref;
  }

  /**
   * Drops the cached refs of names that no one holds now and that have nothing waiting to be
   * sent: a process that answers or asks short-lived processes (secondaries that attach, ask
   * and leave; pool children restarted under new names) would otherwise keep one per name it
   * ever sent to. A dropped name's next ref() is a new one. The size that starts the next
   * sweep doubles with what is kept, so the sweeps cost O(1) per ref made.
   */
  private sweepRefs(): void {
    for (const [name, ref] of this.refs) if (ref.idle && registry.lookup(name) === undefined) this.refs.delete(name);
    this.sweepRefsAt = Math.max(REF_SWEEP_MIN, 2 * this.refs.size);
  }

  /** Sends without waiting: see {@link MailboxRef.trySend}. */
  trySend(name: string, value: unknown): TrySendResult {
    return this.ref(name).trySend(value);
  }

  /** Sends, waiting for room: see {@link MailboxRef.send}. */
  send(name: string, value: unknown, options?: SendOptions): Promise<void> {
    return this.ref(name).send(value, options);
  }

  /** Sends a batch without waiting: see {@link MailboxRef.trySendMany}. */
  trySendMany(name: string, values: readonly unknown[]): number {
    return this.ref(name).trySendMany(values);
  }

  /** Sends bytes as they are (no codec): see {@link MailboxRef.trySendRaw}. */
  trySendRaw(name: string, bytes: Uint8Array): TrySendResult {
    return this.ref(name).trySendRaw(bytes);
  }

  /** Sends bytes as they are, waiting for room: see {@link MailboxRef.sendRaw}. */
  sendRaw(name: string, bytes: Uint8Array, options?: SendOptions): Promise<void> {
    return this.ref(name).sendRaw(bytes, options);
  }

  /** Messages waiting in mailbox `name` (sent, not yet received), or undefined when there is no such mailbox. */
  depth(name: string): number | undefined {
    return this.ref(name).depth();
  }

  /**
   * Death watch of a name: emits once when mailbox `name` goes away (its owner closed it, or
   * its process died, SIGKILL included, or left), then completes. Emits at once when no such
   * mailbox exists now. Detection takes at most a few hundred ms.
   */
  watch(name: string): Observable<MailboxGone> {
    return this.names.watch(name);
  }

  /** Where `name` lives now, or undefined. */
  lookup(name: string): MailboxAddress | undefined {
    this.port.assertOpen();
    return registry.lookup(name);
  }

  /**
   * True when waiting should sleep, not spin: more of the group's processes are awake on this
   * process's CPUs than it has, or more tasks of any program are runnable than the machine has CPUs.
   */
  get crowded(): boolean {
    return this.port.crowded;
  }

  /** True while the receiver sleeps on its doorbell (for tests and stats). */
  get isParked(): boolean {
    return this.pump.isParked;
  }

  /**
   * @internal This process just sent messages outside a turn of its receive loop (the actor
   * layer's sends at the end of a turn): the loop drains now, waiting briefly for what comes back,
   * rather than after another turn of the event loop (see `MailboxPump.drainAfterSend`).
   */
  drainAfterSend(): void {
    this.pump.drainAfterSend();
  }

  /** @internal Delivers what this process's inbox holds now (see `MailboxPump.drainNow`): a closing actor system's last intake. */
  drainNow(): void {
    this.pump.drainNow();
  }

  /** @internal what the receive loop did so far (turns, drains, drains that found messages, parks, doorbell wakes): bench/profile-ask-wake.ts */
  get loopStats(): MailboxPump['loopStats'] {
    return this.pump.loopStats;
  }

  private shutdown(): void {
    const port = this.port;
    if (port.closed) return;
    port.closed = true;
    this.pump.stop();
    this.names.stop();
    for (const box of [...port.boxes.values()]) box.closeLocal();
    port.boxes.clear();
    for (const ref of this.refs.values()) ref.failAll(new MpBusError(ErrorCodes.closed, 'the mailbox system closed before this message could be sent'));
    this.refs.clear();
    port.errors.complete();
    if (system === this) system = undefined;
  }
}

/** The options given, without those left undefined. */
function definedOf(options: MailboxSystemOptions): MailboxSystemOptions {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}

/** Every option of {@link MailboxSystemOptions}. */
export const MAILBOX_SYSTEM_OPTION_KEYS = optionKeys<MailboxSystemOptions>({
  spinUs: true,
  idleParkMs: true,
  keepAlive: true,
  poolBuffers: true,
  bufferSize: true,
  inboxSize: true,
  registryEntries: true,
});
const MAILBOX_OPTION_KEYS = optionKeys<MailboxOptions>({ capacity: true });

/**
 * Checks every option of a mailbox system, before anything is attached (and before DPDK starts,
 * from startActorSystem). @throws {MpBusError} `INVALID_OPTION`.
 */
export function checkSystemOptions(options: MailboxSystemOptions): void {
  checkedOptions(options, MAILBOX_SYSTEM_OPTION_KEYS, 'MailboxSystem.open options');
  if (options.keepAlive !== undefined && typeof options.keepAlive !== 'boolean')
    throw new MpBusError(ErrorCodes.invalidOption, `keepAlive must be true or false, got ${JSON.stringify(options.keepAlive)}`);
  integerIn(options.spinUs ?? DEFAULT_SPIN_US, 'spinUs', 0, 1000);
  const idleParkMs = options.idleParkMs ?? DEFAULT_IDLE_PARK_MS;
  if (!(idleParkMs >= 0 && idleParkMs <= 1000))
    throw new MpBusError(ErrorCodes.invalidOption, `idleParkMs must be in 0..1000, got ${String(options.idleParkMs)}`);
  memorySettings(options);
}
