/**
 * Packing into a buffer of one's own without disturbing anyone else's packed bytes.
 *
 * msgpackr keeps the buffer it packs into, and the position in it, in its module, shared by
 * every `Packr` of the process whatever the instance: `useBuffer()` on one moves every other's
 * next pack there. A pack's result is a view of that buffer, which stays valid only as long as
 * nobody packs over it, and some are kept past the call (the NATS client copies what it
 * publishes on its next flush; an rte_mp request waits for a free slot).
 */
import { REUSE_BUFFER_MODE, type Packr } from 'msgpackr';

/**
 * Runs `fn`, which may point msgpackr at a buffer of its own (`packr.useBuffer`), and then gives
 * msgpackr back the buffer it packed into before, at the place it had reached: packs after it
 * go on past every byte packed before, as if `fn` had not run. Without it, a later pack landed
 * in `fn`'s buffer, and `fn`'s next run wrote over it.
 */
export function packingAside<R>(packr: Packr, fn: () => R): R {
  // A byte packed now shows which buffer packs go to, and where (REUSE_BUFFER_MODE answers the
  // buffer itself, with the start of the byte).
  const resume = packr.pack(null, REUSE_BUFFER_MODE) as Buffer & { start: number };
  const resumeAt = resume.start;
  try {
    return fn();
  } finally {
    packr.useBuffer(resume);
    packr.position = resumeAt;
  }
}
