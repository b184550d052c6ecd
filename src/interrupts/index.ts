/**
 * Interrupts reach every process: the primary watches DPDK's sources (ethdev events, hotplug,
 * alarms, fds on the EAL interrupt thread) and every process sees them as observables.
 * See docs/interrupts.md.
 */
import type { Runtime } from '../runtime/runtime.js';
import { logger } from '../log.js';
import { MpBusError, ErrorCodes } from '../errors.js';
import { Interrupts } from './interrupts.js';
import { PrimarySources } from './primary.js';

export { Interrupts, type InterruptBackend, type Watch, type EventSource } from './interrupts.js';
export { ofType, ofPort, ofAlarm, ofFd } from './operators.js';
export type { InterruptEvent, InterruptType, LinkEvent, PortEvent, AlarmEvent, FdEvent, LinkState, LinkVia, WatchSpec, PortInfo } from './types.js';

const attached = new WeakMap<Runtime, Interrupts>();

/**
 * The interrupts of a runtime's group, created on first use (`rt.interrupts` calls this). In the
 * primary this opens the native sources; they are released when the runtime closes, before
 * DPDK is cleaned up.
 */
export function interruptsOf(rt: Runtime): Interrupts {
  let intr = attached.get(rt);
  if (intr) return intr;
  rt.assertOpen();
  const log = logger('interrupts', { prefix: rt.filePrefix, role: rt.processType });
  if (rt.processType !== 'primary') {
    throw new MpBusError(ErrorCodes.notSupported, 'interrupts in a secondary need the rte_mp relay, which is not available yet');
  }
  const sources = new PrimarySources(log);
  rt.onClose(() => sources.close());
  intr = new Interrupts(sources, sources);
  attached.set(rt, intr);
  return intr;
}
