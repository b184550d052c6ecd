/** Typings of native/telemetry.cc (mpbus's DPDK telemetry commands). No policy: see src/runtime/runtime.ts. */
import { addon } from './addon.js';

export interface TelemetryBinding {
  /** Registers /mpbus/processes, /mpbus/actors and /mpbus/mailboxes (once per process; later calls do nothing). */
  telemetryRegister(): void;
}

/** The addon's telemetry functions. */
export function telemetryNative(): TelemetryBinding {
  return addon() as unknown as TelemetryBinding;
}
