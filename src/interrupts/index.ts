/**
 * Interrupts reach every process: the primary watches DPDK's sources (ethdev events, hotplug,
 * alarms, fds on the EAL interrupt thread) and every process sees them as observables.
 * See docs/interrupts.md.
 */
import type { Runtime } from '../runtime/runtime.js';
import { logger } from '../log.js';
import { MpBus } from '../bus/index.js';
import { Interrupts } from './interrupts.js';
import { PrimarySources } from './primary.js';
import { RelayClient, serveRelay } from './relay.js';

export { Interrupts, type InterruptBackend, type Hold, type Watch, type EventSource } from './interrupts.js';
export { ofType, ofPort, ofAlarm, ofFd } from './operators.js';
export type { InterruptEvent, InterruptType, LinkEvent, PortEvent, AlarmEvent, FdEvent, LinkState, LinkVia, WatchSpec, PortInfo } from './types.js';

const attached = new WeakMap<Runtime, Interrupts>();

/**
 * The interrupts of a runtime's group, created on first use (`rt.interrupts` calls this).
 *
 * In the primary this opens the native sources and starts relaying: every event is broadcast
 * to the secondaries, and their requests (watch a source, read a link, hotplug...) are served.
 * A primary serves from its first use of interrupts on, so a primary whose secondaries use
 * interrupts should touch `rt.interrupts` once after start. In a secondary it subscribes to the
 * relayed events. Everything is released when the runtime closes, before DPDK is cleaned up.
 */
export function interruptsOf(rt: Runtime): Interrupts {
  let intr = attached.get(rt);
  if (intr) return intr;
  rt.assertOpen();
  const log = logger('interrupts', { prefix: rt.filePrefix, role: rt.processType });
  const bus = MpBus.open({ runtime: rt });
  if (rt.processType === 'primary') {
    const sources = new PrimarySources(log);
    let stopRelay: () => void;
    try {
      stopRelay = serveRelay(sources, bus, log);
    } catch (err) {
      sources.close();
      throw err;
    }
    rt.onClose(() => {
      stopRelay();
      sources.close();
    });
    intr = new Interrupts(sources, sources);
  } else {
    const client = new RelayClient(bus, log);
    rt.onClose(() => client.close());
    intr = new Interrupts(client, undefined);
  }
  attached.set(rt, intr);
  return intr;
}
