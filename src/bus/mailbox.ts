/**
 * Mailboxes: named, bounded message queues that any process of the group can send to, through
 * shared hugepage memory (see docs/mailboxes.md). This file is the mailbox API in one import;
 * each part lives in a file of its own (listed in docs/mailboxes.md, "Where the code is").
 *
 * ```ts
 * const mailboxes = await MailboxSystem.openAsync();
 * const inbox = mailboxes.open<Order>('orders');
 * inbox.messages$.subscribe((order) => handle(order));
 * // in any process of the group:
 * await MailboxSystem.open().send('orders', { id: 1, item: 'tea' });
 * ```
 *
 * Each process has ONE inbox ring; a message is a small descriptor (a pointer to a buffer of
 * the group's pool) on the receiver's inbox, demultiplexed to the mailbox by the id in the
 * buffer header. The receiving JS thread drains its inbox itself in bursts while messages flow
 * and parks on a futex doorbell after ~1 ms without any (0% CPU when idle).
 */
export { MailboxSystem } from './mailbox-system.js';
export { Mailbox } from './local-mailbox.js';
export { MailboxRef } from './mailbox-ref.js';
export { MessageBurst } from './message-burst.js';
export { OfferStatus, type MailboxGone, type TrySendResult, type MailboxSystemOptions, type MailboxOptions, type SendOptions } from './mailbox-types.js';
