/**
 * {@link InProcessTransport}: the actor transport within one process. Several actor systems can
 * share one {@link InProcessHub} and then behave like processes of one group (names, groups and
 * death notices are shared), which is how unit tests exercise routing and death watch without
 * spawning processes. Payloads are passed by reference, not copied.
 */
import { Subject, type Observable } from 'rxjs';
import { ActorErrorCodes } from './errors.js';
import { MpBusError } from '../errors.js';
import type { ActorTransport, DeliveryStatus, Envelope, Location, MembershipChange, NameGone, Receiver, Registration } from './transport.js';

interface Entry {
  receiver: Receiver;
  owner: InProcessTransport;
}

/** The shared namespace of in-process transports. */
export class InProcessHub {
  /** The hub systems of this process use unless given another. */
  static readonly shared = new InProcessHub();

  /** @internal */ readonly names = new Map<string, Entry>();
  /** @internal */ readonly groups = new Map<string, Set<string>>();
  /** @internal */ readonly gone = new Subject<NameGone>();
  /** @internal */ readonly membership = new Subject<MembershipChange>();
  private nextNode = 1;

  /** A new transport (a new "node") on this hub. */
  connect(): InProcessTransport {
    return new InProcessTransport(this, `${process.pid}.${this.nextNode++}`);
  }

  /** @internal */
  remove(name: string, reason: NameGone['reason']): void {
    if (!this.names.delete(name)) return;
    for (const [group, members] of this.groups) {
      if (members.delete(name)) this.membership.next({ group, name, change: 'left' });
    }
    this.gone.next({ name, reason, pid: process.pid });
  }
}

export class InProcessTransport implements ActorTransport {
  readonly pid = process.pid;
  readonly gone$: Observable<NameGone>;
  readonly membership$: Observable<MembershipChange>;
  private readonly own = new Set<string>();
  /** After simulateCrash: whatever this node still sends is lost, as a dead process sends nothing. */
  private crashed = false;

  /** @internal use `hub.connect()` */
  constructor(
    private readonly hub: InProcessHub,
    readonly nodeId: string,
  ) {
    this.gone$ = hub.gone.asObservable();
    this.membership$ = hub.membership.asObservable();
  }

  register(name: string, receiver: Receiver): Registration {
    if (this.crashed) throw new MpBusError(ActorErrorCodes.systemClosed, 'this node has crashed');
    if (this.hub.names.has(name)) {
      throw new MpBusError(ActorErrorCodes.nameTaken, `the name '${name}' is already taken in this group: stop that actor first or choose another name`);
    }
    this.hub.names.set(name, { receiver, owner: this });
    this.own.add(name);
    return {
      name,
      close: () => {
        if (this.hub.names.get(name)?.owner !== this) return;
        this.own.delete(name);
        this.hub.remove(name, 'stopped');
      },
    };
  }

  deliver(to: string, envelope: Envelope): DeliveryStatus {
    if (this.crashed) return 'delivered';
    const entry = this.hub.names.get(to);
    if (!entry) return 'unknown';
    entry.receiver.receive(envelope);
    return 'delivered';
  }

  lookup(name: string): Location | undefined {
    const entry = this.hub.names.get(name);
    return entry ? { pid: this.pid, local: entry.owner === this } : undefined;
  }

  depth(name: string): number | undefined {
    return this.hub.names.get(name)?.receiver.depth();
  }

  join(group: string, name: string): void {
    if (this.hub.names.get(name)?.owner !== this) {
      throw new MpBusError(ActorErrorCodes.actorNotFound, `cannot add '${name}' to group '${group}': it is not registered by this system`);
    }
    let members = this.hub.groups.get(group);
    if (!members) this.hub.groups.set(group, (members = new Set()));
    if (members.has(name)) return;
    members.add(name);
    this.hub.membership.next({ group, name, change: 'joined' });
  }

  leave(group: string, name: string): void {
    if (this.hub.groups.get(group)?.delete(name)) this.hub.membership.next({ group, name, change: 'left' });
  }

  members(group: string): string[] {
    return [...(this.hub.groups.get(group) ?? [])];
  }

  /**
   * Test aid: behaves as if this node's process had been killed: its names vanish with reason
   * 'process-exited' and nothing of it runs any more.
   */
  simulateCrash(): void {
    this.crashed = true;
    for (const name of [...this.own]) this.hub.remove(name, 'process-exited');
    this.own.clear();
  }

  async close(): Promise<void> {
    for (const name of [...this.own]) this.hub.remove(name, 'stopped');
    this.own.clear();
  }
}
