/**
 * Calling an rte_mp handler and turning what it gave (a value, a promise, an `MpReplyWith`, a
 * throw) into the outcome the bus replies with; and closing the fds of messages nobody owns.
 */
import { closeSync } from 'node:fs';
import { describeThrown } from '../errors.js';
import { MpEnvelopeKind } from './envelope.js';
import { isThenable } from './thenable.js';
import { MpReplyWith, type MpHandler, type MpMessage } from './types.js';

/** What a handler answered: the reply's envelope kind, its value and fds. */
export interface Outcome {
  kind: MpEnvelopeKind;
  value: unknown;
  fds?: number[];
}

function toOutcome(result: unknown): Outcome {
  if (result instanceof MpReplyWith) return { kind: MpEnvelopeKind.reply, value: result.value, fds: result.fds };
  return { kind: MpEnvelopeKind.reply, value: result };
}

/** What crosses to the requester of a handler that failed. */
export function errorPayload(err: unknown): { code: string; message: string } {
  if (err instanceof Error) return { code: String((err as { code?: unknown }).code ?? err.name), message: err.message };
  return { code: 'Error', message: describeThrown(err) };
}

/** Runs a handler; a synchronous result is answered without a microtask hop. */
export function invokeHandler(handler: MpHandler<unknown, unknown>, msg: MpMessage, answer: (o: Outcome) => void): void {
  let result: unknown;
  try {
    result = handler(msg.value, msg);
  } catch (err) {
    answer({ kind: MpEnvelopeKind.errorReply, value: errorPayload(err) });
    return;
  }
  if (isThenable(result)) {
    result.then(
      (v) => answer(toOutcome(v)),
      (err: unknown) => answer({ kind: MpEnvelopeKind.errorReply, value: errorPayload(err) }),
    );
  } else {
    answer(toOutcome(result));
  }
}

/** Closes fds this process received and nobody took (an fd may already be closed by its owner). */
export function closeFds(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // already closed by its owner
    }
  }
}
