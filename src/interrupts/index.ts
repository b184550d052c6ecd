/**
 * Interrupts reach every process: the primary watches DPDK's sources (ethdev events, hotplug,
 * alarms, fds on the EAL interrupt thread) and every process sees them as observables.
 * See docs/interrupts.md.
 */
import type { Subscription } from 'rxjs';
import type { Runtime } from '../runtime/runtime.js';
import { logger } from '../log.js';
import { MpBus } from '../bus/index.js';
import { Interrupts } from './interrupts.js';
import { PrimarySources } from './primary.js';
import { serveControl, serveRelay, type RelayServer } from './control.js';
import { RelayClient } from './relay-client.js';
import { RelayEndFile } from './relay-protocol.js';

export { Interrupts, type Watch, type EventSource } from './interrupts.js';
export type { InterruptBackend, Hold } from './backend.js';
export { ofType, ofPort, ofAlarm, ofFd } from './operators.js';
export type {
  InterruptEvent,
  InterruptEventOf,
  InterruptType,
  LinkEvent,
  PortEvent,
  AlarmEvent,
  FdEvent,
  LinkState,
  LinkVia,
  WatchSpec,
  PortInfo,
  EventLoss,
  RelayStats,
} from './types.js';

interface Attached {
  intr?: Interrupts;
  server?: RelayServer;
  control?: Subscription;
}

const attached = new WeakMap<Runtime, Attached>();

function stateOf(rt: Runtime): Attached {
  let state = attached.get(rt);
  if (!state) {
    state = {};
    attached.set(rt, state);
  }
  return state;
}

/**
 * Primary: answers secondaries' interrupt requests from now on, without opening any source yet.
 * The first request (or the primary's own first use of `rt.interrupts`) opens the sources and
 * starts relaying. `Runtime.start` calls this in every primary: the cost is the rte_mp bus
 * opened at start (its lane actions registered; nothing runs while idle).
 */
export function serveInterruptsOnRequest(rt: Runtime): void {
  const state = stateOf(rt);
  if (state.control || rt.processType !== 'primary') return;
  rt.assertOpen();
  const bus = MpBus.open({ runtime: rt, implicit: true });
  state.control = serveControl(bus, () => {
    interruptsOf(rt);
    return state.server!;
  });
}

/**
 * The interrupts of a runtime's group, created on first use (`rt.interrupts` calls this).
 *
 * In the primary this opens the native sources and starts relaying: every event is broadcast
 * to the secondaries, and their requests (watch a source, read a link, hotplug...) are served
 * (from `Runtime.start` on: the first request of a secondary creates them). In a secondary it
 * subscribes to the relayed events. Everything is released when the runtime closes, before DPDK
 * is cleaned up.
 */
export function interruptsOf(rt: Runtime): Interrupts {
  const state = stateOf(rt);
  if (state.intr) return state.intr;
  rt.assertOpen();
  const log = logger('interrupts', { prefix: rt.filePrefix, role: rt.processType });
  const bus = MpBus.open({ runtime: rt, implicit: true });
  let intr: Interrupts;
  if (rt.processType === 'primary') {
    const sources = new PrimarySources(log);
    let server: RelayServer;
    try {
      server = serveRelay(sources, bus, log, new RelayEndFile(rt.group.runtimeDir));
      state.control ??= serveControl(bus, () => state.server!);
    } catch (err) {
      sources.close();
      throw err;
    }
    state.server = server;
    rt.onClose(() => {
      state.control?.unsubscribe();
      // the sources first: their last events go through the relay before it sends its end
      sources.close();
      server.stop();
      // a hotplug still in DPDK (waiting for a stopped secondary's answer: seconds) ends before DPDK's cleanup runs
      return sources.hotplugsEnded();
    });
    intr = new Interrupts(sources, sources, () => server.stats());
  } else {
    const client = new RelayClient(bus, log, rt.primaryIsMpbus, new RelayEndFile(rt.group.runtimeDir));
    // 'exit' and 'close' close the runtime, which completes the streams; under 'ignore' the
    // process lives on, and its streams fail (they could never emit again).
    const lost = rt.primaryLost$.subscribe(({ pid, reason, policy }) => {
      client.primaryLeaving(reason, pid);
      if (policy === 'ignore') client.primaryLost(pid, reason);
    });
    rt.onClose(async (context) => {
      lost.unsubscribe();
      // what the primary sent before it went is still coming in: delivered, or reported lost
      if (context.reason === 'primary-lost') await client.settle();
      client.close();
    });
    intr = new Interrupts(client, undefined);
  }
  state.intr = intr;
  return intr;
}
