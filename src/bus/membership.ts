/**
 * {@link Membership}: who is alive in the process group, as RxJS streams.
 *
 * Every mpbus process that uses mailboxes or membership holds a slot of a process table in
 * shared memory (its lcore id, pid, role, generation). Every process scans the table a few
 * times a second; a slot whose process is gone (SIGKILL included: the kernel's /proc tells) is
 * reaped by the first process that notices: its mailbox names are unregistered, its inbox is
 * drained and the buffers returned. Peers learn within {@link SCAN_INTERVAL_MS} (well under a second).
 *
 * ```ts
 * const members = Membership.join();
 * members.peerDown$.subscribe(({ peer, reason }) => console.log(`pid ${peer.pid} ${reason}`));
 * ```
 */
import { BehaviorSubject, Subject, type Observable } from 'rxjs';
import { mailboxNative, type SlotInfo } from '../native/mailbox.js';
import { attach, type MailboxMemoryOptions } from './attachment.js';

/** How often each process scans the process table (ms). */
export const SCAN_INTERVAL_MS = 200;

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
    m.timer = setInterval(() => m.scan(), SCAN_INTERVAL_MS);
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

  /** Scans the process table now (also done every {@link SCAN_INTERVAL_MS}); reaps dead processes. */
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
    this.peersSubject.next([...next.values()].sort((a, b) => a.slot - b.slot));
    for (const d of gone) this.downSubject.next(d);
    for (const p of joined) if (!p.self) this.upSubject.next(p);
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
    this.upSubject.complete();
    this.downSubject.complete();
    this.peersSubject.complete();
    if (instance === this) instance = undefined;
  }
}
