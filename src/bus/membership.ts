/**
 * {@link Membership}: who is alive in the process group, as RxJS streams.
 *
 * Every mpbus process that uses mailboxes or membership holds a slot of a process table in
 * shared memory (its lcore id, pid, role, generation). A slot whose process is gone (SIGKILL
 * included: the kernel's /proc tells) is reaped by the first process that notices: its mailbox
 * names are unregistered, its inbox is drained and the buffers returned.
 *
 * Each process watches the others' exits ({@link ProcessExits}: a pidfd per peer, no polling),
 * so peers learn of a death as soon as the kernel has ended the process, and scans the table
 * once every {@link WATCHED_SCAN_INTERVAL_MS} for what exits do not show: processes that joined,
 * and one that left the group but runs on. Where exits cannot be watched, it scans every
 * {@link SCAN_INTERVAL_MS} instead, and that is how late a death is learned.
 *
 * ```ts
 * const members = Membership.join();
 * members.peerDown$.subscribe(({ peer, reason }) => console.log(`pid ${peer.pid} ${reason}`));
 * ```
 */
import { BehaviorSubject, Subject, type Observable } from 'rxjs';
import { mailboxNative, type SlotInfo } from '../native/mailbox.js';
import { attach, type MailboxMemoryOptions } from './attachment.js';
import { ProcessExits } from '../runtime/process-exits.js';

/** How often each process scans the process table where other processes' exits cannot be watched (ms). */
export const SCAN_INTERVAL_MS = 200;

/**
 * How often each process scans the process table while it watches the others' exits (ms): a
 * scan then only finds joins and clean leaves of processes that run on, so it can be rare,
 * which is most of what an idle process does.
 */
export const WATCHED_SCAN_INTERVAL_MS = 1000;

/** One live process of the group. */
export interface Peer {
  /** Its slot in the process table: its lcore id. */
  readonly slot: number;
  /** Incremented each time the slot is taken: (slot, generation) names one process's life. */
  readonly generation: number;
  readonly pid: number;
  readonly role: 'primary' | 'secondary';
  /** True for this process. */
  readonly self: boolean;
}

/** A process that is no longer part of the group. */
export interface PeerDown {
  readonly peer: Peer;
  /** 'left': it closed its runtime; 'died': it was killed or crashed and was reaped. */
  readonly reason: 'left' | 'died';
}

const key = (slot: number, generation: number): string => `${slot}:${generation}`;

let instance: Membership | undefined;

export class Membership {
  /** This process. */
  readonly self: Peer;
  private readonly peersSubject: BehaviorSubject<readonly Peer[]>;
  private readonly upSubject = new Subject<Peer>();
  private readonly downSubject = new Subject<PeerDown>();
  private known = new Map<string, Peer>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Where exits are watched: the function that stops watching each known peer's process, by key. */
  private readonly exits = ProcessExits.shared();
  private readonly unwatch = new Map<string, () => void>();

  /** Every live process (this one included), the current list first, then each change. */
  readonly peers$: Observable<readonly Peer[]>;
  /** A process joined. */
  readonly peerUp$: Observable<Peer>;
  /** A process left or died (SIGKILL included), within a second. */
  readonly peerDown$: Observable<PeerDown>;

  private constructor(slot: number, generation: number, role: 'primary' | 'secondary') {
    this.self = { slot, generation, pid: process.pid, role, self: true };
    this.peersSubject = new BehaviorSubject<readonly Peer[]>([this.self]);
    this.peers$ = this.peersSubject.asObservable();
    this.peerUp$ = this.upSubject.asObservable();
    this.peerDown$ = this.downSubject.asObservable();
  }

  /**
   * Joins the membership of the running group (once per process; later calls return the same
   * object). Requires a started {@link Runtime}. `memory` sizes the group's shared mailbox
   * objects when this is the first process to use them.
   *
   * @throws {MpBusError} `EBUSY` while another process is still creating the group's mailbox
   *   objects: `await MailboxSystem.openAsync()` first waits for that.
   */
  static join(memory: MailboxMemoryOptions = {}): Membership {
    const a = attach(memory);
    if (instance && !instance.closed && instance.self.slot === a.slot && instance.self.generation === a.generation) return instance;
    const m = new Membership(a.slot, a.generation, a.rt.processType);
    instance = m;
    a.beforeDetach.push(() => m.close());
    m.scan();
    m.timer = setInterval(() => m.scan(), m.exits ? WATCHED_SCAN_INTERVAL_MS : SCAN_INTERVAL_MS);
    m.timer.unref();
    return m;
  }

  /** The live processes now (this one included): scans the table, so the answer is fresh. */
  peers(): readonly Peer[] {
    this.scan();
    return this.peersSubject.value;
  }

  /** True while the process (slot, generation) is a live member. */
  isAlive(slot: number, generation: number): boolean {
    return this.known.has(key(slot, generation));
  }

  /** The live member with this pid, if any. */
  byPid(pid: number): Peer | undefined {
    return this.peersSubject.value.find((p) => p.pid === pid);
  }

  /** Scans the process table now (also done on a timer and when a peer's process ends); reaps dead processes. */
  scan(): void {
    if (this.closed) return;
    const { alive, reaped, exits } = mailboxNative().mbxScan();
    const next = new Map<string, Peer>();
    for (const s of alive) next.set(key(s.slot, s.generation), this.peerOf(s));
    const reasons = new Map<string, 'left' | 'died'>();
    for (const r of reaped) reasons.set(key(r.slot, r.generation), 'died');
    for (const x of exits) if (!reasons.has(key(x.slot, x.generation))) reasons.set(key(x.slot, x.generation), x.reason);
    const gone: PeerDown[] = [];
    for (const [k, peer] of this.known) {
      if (!next.has(k)) gone.push({ peer, reason: reasons.get(k) ?? 'died' });
    }
    const joined = [...next].filter(([k]) => !this.known.has(k)).map(([, p]) => p);
    if (gone.length === 0 && joined.length === 0) return;
    this.known = next;
    this.watchExits(joined, gone);
    this.peersSubject.next([...next.values()].sort((a, b) => a.slot - b.slot));
    for (const d of gone) this.downSubject.next(d);
    for (const p of joined) if (!p.self) this.upSubject.next(p);
  }

  /** Follows the exits of peers that joined, and stops following those that are gone. */
  private watchExits(joined: readonly Peer[], gone: readonly PeerDown[]): void {
    if (this.exits === undefined) return;
    for (const { peer } of gone) {
      const k = key(peer.slot, peer.generation);
      this.unwatch.get(k)?.();
      this.unwatch.delete(k);
    }
    for (const peer of joined) {
      if (peer.self) continue;
      // scanned on the next turn, not from inside this scan (an exit already past calls back at once)
      this.unwatch.set(
        key(peer.slot, peer.generation),
        this.exits.watch(peer.pid, () => setImmediate(() => this.scan())),
      );
    }
  }

  private peerOf(s: SlotInfo): Peer {
    const existing = this.known.get(key(s.slot, s.generation));
    if (existing) return existing;
    const self = s.slot === this.self.slot && s.generation === this.self.generation;
    return self ? this.self : { slot: s.slot, generation: s.generation, pid: s.pid, role: s.role, self: false };
  }

  /** Stops watching (done by the runtime's close). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const stop of this.unwatch.values()) stop();
    this.unwatch.clear();
    this.upSubject.complete();
    this.downSubject.complete();
    this.peersSubject.complete();
    if (instance === this) instance = undefined;
  }
}
