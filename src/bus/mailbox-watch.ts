/**
 * Death watch of mailbox names (MailboxSystem.watch): one entry per watched name, looked up
 * again when the registry's removal epoch moves or a peer dies, and told once, as closed or as
 * its process having died, when the name no longer points at the mailbox it did.
 */
import { Observable, type Subscriber, type Subscription } from 'rxjs';
import { Membership, SCAN_INTERVAL_MS } from './membership.js';
import { checkName, registry, type MailboxAddress } from './registry.js';
import type { MailboxPort } from './mailbox-port.js';
import type { MailboxGone } from './mailbox-types.js';

export class NameWatch {
  private readonly watched = new Map<string, { address: MailboxAddress; pid: number | undefined; subscribers: Set<Subscriber<MailboxGone>> }>();
  private watchTimer: NodeJS.Timeout | undefined;
  private watchEpoch = -1;
  private peerDownSub: Subscription | undefined;

  constructor(
    private readonly port: MailboxPort,
    private readonly membership: Membership,
  ) {}

  /** See {@link MailboxSystem.watch}. */
  watch(name: string): Observable<MailboxGone> {
    checkName(name);
    return new Observable<MailboxGone>((subscriber) => {
      this.port.assertOpen();
      let entry = this.watched.get(name);
      if (!entry) {
        const address = registry.lookup(name);
        if (!address) {
          subscriber.next({ name, reason: 'closed' });
          subscriber.complete();
          return undefined;
        }
        const pid = this.membership.peers().find((p) => p.slot === address.slot && p.generation === address.generation)?.pid;
        entry = { address, pid, subscribers: new Set() };
        this.watched.set(name, entry);
        this.startWatching();
      }
      const e = entry;
      e.subscribers.add(subscriber);
      return () => {
        e.subscribers.delete(subscriber);
        if (e.subscribers.size === 0 && this.watched.get(name) === e) this.watched.delete(name);
      };
    });
  }

  /** Ends every watch without an emission (the mailbox system closed). */
  stop(): void {
    clearInterval(this.watchTimer);
    this.peerDownSub?.unsubscribe();
    for (const entry of this.watched.values()) for (const sub of entry.subscribers) sub.complete();
    this.watched.clear();
  }

  private startWatching(): void {
    if (this.watchTimer) return;
    this.watchEpoch = registry.epoch();
    this.watchTimer = setInterval(() => this.checkWatched(false), SCAN_INTERVAL_MS);
    this.watchTimer.unref();
    this.peerDownSub ??= this.membership.peerDown$.subscribe(() => this.checkWatched(true));
  }

  /** Registry removals bump an epoch: names are looked up again only when it moved. */
  private checkWatched(force: boolean): void {
    if (this.port.closed) return;
    if (this.watched.size === 0) {
      clearInterval(this.watchTimer);
      this.watchTimer = undefined;
      return;
    }
    const epoch = registry.epoch();
    if (!force && epoch === this.watchEpoch) return;
    this.watchEpoch = epoch;
    this.membership.scan(); // so a process reaped just now is known dead here too
    for (const [name, entry] of [...this.watched]) {
      const now = registry.lookup(name);
      const a = entry.address;
      if (now && now.slot === a.slot && now.generation === a.generation && now.id === a.id) continue;
      this.watched.delete(name);
      const alive = this.membership.isAlive(a.slot, a.generation);
      const gone: MailboxGone = alive ? { name, reason: 'closed' } : { name, reason: 'process-died', ...(entry.pid !== undefined ? { pid: entry.pid } : {}) };
      for (const sub of [...entry.subscribers]) {
        sub.next(gone);
        sub.complete();
      }
    }
  }
}
