/** mpbus: an actor and message-bus runtime for Node.js on DPDK's multi-process model. */
import 'reflect-metadata';

export { MpBusError, ErrorCodes } from './errors.js';
// The runtime as the composition completes it (rt.interrupts, serving interrupts from the start).
export { Runtime } from './composition.js';
export type { CloseHook } from './runtime/runtime.js';
export { PRIMARY_LOST_EXIT_CODE } from './runtime/runtime.js';
export type { RuntimeOptions, ProcType, LogLevelName } from './runtime/options.js';
export type { MpBusLogger, LogMethod } from './log.js';
export { formatCpuList, parseCpuList, type CpuList, type Placement } from './runtime/cpus.js';
export { MPBUS_VERSION } from './runtime/version.js';
export { Ring, type RingOptions, type RingSyncMode } from './shm/ring.js';
export { Memzone, type MemzoneOptions } from './shm/memzone.js';
export { Mempool, type MempoolOptions, type MempoolMemoryChunk } from './shm/mempool.js';
export { PolledPorts, type PolledPortsOptions, type PolledPortInfo, type PortStats } from './ports/polled.js';
export * from './bus/index.js';
export { Interrupts, interruptsOf, ofType, ofPort, ofAlarm, ofFd } from './interrupts/index.js';
export type {
  InterruptBackend,
  Watch as InterruptWatch,
  EventSource as InterruptEventSource,
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
} from './interrupts/index.js';
export {
  MailboxSystem,
  Mailbox,
  MailboxRef,
  MessageBurst,
  type MailboxGone,
  type TrySendResult,
  type MailboxSystemOptions,
  type MailboxOptions,
  type SendOptions,
} from './bus/mailbox.js';
export { Membership, SCAN_INTERVAL_MS, type Peer, type PeerDown } from './bus/membership.js';
export { registry, MAX_NAME_BYTES, type MailboxAddress } from './bus/registry.js';
export type { MailboxMemoryOptions } from './bus/attachment.js';
export { registerClass, checkValue, type RegisterClassOptions } from './bus/value-codec.js';
export * from './actors/index.js';
export * from './cluster/index.js';
export { groupMetrics, groupMetricsText, ASK_DURATION_BUCKETS, type GroupMetricsOptions } from './obs/prometheus.js';
export {
  readGroupCounters,
  actorViews,
  remoteAskViews,
  groupAskViews,
  type GroupCounters,
  type ProcessCounters,
  type RowCounters,
  type ActorView,
  type RemoteAskView,
} from './obs/group-counters.js';
