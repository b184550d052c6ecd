/**
 * The rte_mp bus's outgoing messages. A secondary sends to the primary alone, on the JS thread.
 * The primary's messages go to every secondary from mpbus's sender thread (native/mp_send.cc), in
 * order, so a secondary that does not read never blocks the JS thread: this hands them over,
 * tells each `onSent` its outcome, and shortens DPDK's send timeout while some secondary is
 * known not to read.
 */
import { MpBusError } from '../errors.js';
import type { MpBinding, NativeSendDone } from '../native/mp.js';
import { MpErrorCodes, type MpRole } from './types.js';

/**
 * How long the primary's rte_mp socket waits for a secondary whose receive queue is full before
 * DPDK gives up on that one (EAGAIN) and goes on with the next. A healthy secondary's IPC
 * thread empties its queue within microseconds (it only copies each datagram into an inbox),
 * and even on a loaded 2-vCPU machine a runnable thread gets a CPU within a few milliseconds;
 * a queue that stays full for 100 ms belongs to a process that cannot run (SIGSTOP, a debugger)
 * or is dying. Short enough that such a peer costs the others little, long enough not to give up
 * on a merely busy one.
 */
export const PEER_SEND_TIMEOUT_MS = 100;
/**
 * The send timeout while a secondary is known not to read (a send failed and none has fully
 * succeeded since): every message would otherwise wait the full timeout for that peer, delaying
 * the others by as much. 10 ms still lets a healthy but descheduled IPC thread run (a scheduler
 * period on a loaded machine); a healthy peer that misses a message anyway is no worse off than
 * the stuck one (the interrupt relay replays). Back to {@link PEER_SEND_TIMEOUT_MS} on the first
 * message that reaches every secondary.
 */
export const STUCK_PEER_SEND_TIMEOUT_MS = 10;

/** What the sender needs of its bus. */
export interface SendHost {
  readonly role: MpRole;
  closed(): boolean;
  /** Problems that belong to no call (`errors$`). */
  report(err: unknown): void;
}

export class MpSender {
  /** Primary: `onSent` callbacks of queued messages, by ticket. */
  private readonly sendCallbacks = new Map<number, (error?: MpBusError) => void>();
  /** Primary: a send failed (some secondary does not read) and none fully succeeded since. */
  private peerStuck = false;
  private readonly role: MpRole;

  constructor(
    private readonly native: MpBinding,
    private readonly host: SendHost,
  ) {
    this.role = host.role;
  }

  /** Messages sent by the primary's sender thread and not yet returned from `rte_mp_sendmsg`. */
  get pending(): number {
    if (this.role !== 'primary') return 0;
    const { queued, done } = this.native.mpSendStats();
    return queued - done;
  }

  send(name: string, param: Uint8Array, fds: number[] | undefined, onSent: ((error?: MpBusError) => void) | undefined): void {
    if (this.role === 'primary') {
      const ticket = this.native.mpSendQueued(name, param, fds, onSent !== undefined);
      if (onSent) this.sendCallbacks.set(ticket, onSent);
      return;
    }
    // A secondary sends to the primary alone, on the JS thread: nothing to queue behind.
    this.native.mpSend(name, param, fds);
    if (onSent) queueMicrotask(() => this.callOnSent(onSent, undefined));
  }

  onSendDone(ev: NativeSendDone): void {
    const stuck = ev.code !== undefined && ev.code !== 'ECANCELED';
    if (stuck !== this.peerStuck && !this.host.closed()) {
      this.peerStuck = stuck;
      this.native.mpBoundSendTimeout(stuck ? STUCK_PEER_SEND_TIMEOUT_MS : PEER_SEND_TIMEOUT_MS);
    }
    const onSent = this.sendCallbacks.get(ev.ticket);
    this.sendCallbacks.delete(ev.ticket);
    const error =
      ev.code === undefined
        ? undefined
        : new MpBusError(
            ev.code === 'ECANCELED' ? MpErrorCodes.closed : MpErrorCodes.sendFailed,
            ev.code === 'ECANCELED'
              ? `'${ev.name}' was not sent: the bus closed while a secondary was not reading`
              : `'${ev.name}' did not reach every secondary: ${ev.message ?? ev.code} (a secondary whose socket stayed full past the send timeout: stopped or starved)`,
            { errno: ev.errno },
          );
    if (onSent) this.callOnSent(onSent, error);
    else if (error) this.host.report(error);
  }

  private callOnSent(onSent: (error?: MpBusError) => void, error: MpBusError | undefined): void {
    try {
      onSent(error);
    } catch (err) {
      this.host.report(err);
    }
  }

  /** Tells the `onSent` of every message the sender thread will not send (the bus closed). */
  close(): void {
    const closedSend = new MpBusError(MpErrorCodes.closed, 'the rte_mp bus closed before the message was sent');
    for (const onSent of this.sendCallbacks.values()) this.callOnSent(onSent, closedSend);
    this.sendCallbacks.clear();
  }
}
