/**
 * The composition of the layers, at the top: what a {@link Runtime} does and offers of the layers
 * above the runtime, wired here so that the runtime imports none of them. A primary serves
 * interrupts to its secondaries from `Runtime.start` on (a start hook), and every runtime offers
 * `rt.interrupts`, `rt.interrupts$` and `rt.linkState$`; the actor layer's closing codes are
 * among those a process mpbus ends does not crash on. The package's entry (src/index.ts) imports
 * this module, so whoever imports `mpbus` gets all three.
 */
import type { Observable } from 'rxjs';
import { addStartHook, Runtime } from './runtime/runtime.js';
import { interruptsOf, serveInterruptsOnRequest, type InterruptEvent, type Interrupts, type LinkState } from './interrupts/index.js';
import { PolledPorts } from './ports/polled.js';
import { addClosingCodes } from './runtime/process-end.js';
import { ActorErrorCodes } from './actors/errors.js';

declare module './runtime/runtime.js' {
  interface Runtime {
    /** The group's interrupt and event sources (link status, hotplug, alarms, fds), in every process. */
    readonly interrupts: Interrupts;
    /** Every interrupt event this process receives, in the primary's order (see {@link Interrupts}). */
    readonly interrupts$: Observable<InterruptEvent>;
    /**
     * A port's link: the current state first, then its changes (see {@link Interrupts.linkState$}).
     * In a secondary whose primary is not an mpbus process (a C DPDK program relays no events),
     * this process polls the link itself every 500 ms ({@link PolledPorts}).
     */
    linkState$(port: number): Observable<LinkState>;
  }
}

addStartHook({
  run(rt) {
    if (rt.processType === 'primary') serveInterruptsOnRequest(rt);
  },
  // Secondaries then get ENOTREADY for interrupts until this process uses them itself.
  failure: 'cannot serve interrupts to secondaries yet',
});

// What asks, launches and pools in flight fail with when the group closes under them: while
// mpbus ends the process (a signal), an application's unhandled one is not a crash.
addClosingCodes(ActorErrorCodes.systemClosed, ActorErrorCodes.poolClosed, ActorErrorCodes.childFailed);

Object.defineProperties(Runtime.prototype, {
  interrupts: {
    configurable: true,
    get(this: Runtime): Interrupts {
      return interruptsOf(this);
    },
  },
  interrupts$: {
    configurable: true,
    get(this: Runtime): Observable<InterruptEvent> {
      return interruptsOf(this).events$;
    },
  },
  linkState$: {
    configurable: true,
    writable: true,
    value(this: Runtime, port: number): Observable<LinkState> {
      if (this.processType === 'secondary' && !this.group.mpbusPrimaryAlive()) return new PolledPorts(this).linkState$(port);
      return interruptsOf(this).linkState$(port);
    },
  },
});

/** The runtime with what this module adds: the package's entry exports it from here, so its types carry the additions. */
export { Runtime };
