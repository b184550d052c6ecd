/** The actor SDK: `ActorSystem`, class and function actors, refs, supervision, routers. */
import 'reflect-metadata';

export {
  ActorSystem,
  type ActorSystemOptions,
  type ActorEvent,
  type DeadLetter,
  type CloseOptions,
  type DrainedOptions,
  type WhenServedOptions,
} from './system.js';
export { ActorRef, type AskArgs, type RefContract, type TellArgs } from './ref.js';
export {
  ActorContext,
  type ActorCounters,
  type Terminated,
  type FunctionBehavior,
  type SpawnOptions,
  type HandlerOf,
  type Handlers,
  type HandlerMap,
  type ClassActor,
} from './context.js';
export { Actor, Handle, type ActorClass, type ActorDeclaration } from './decorators.js';
export type { ActionSpec, AnyContract, ActionOf, MsgOf, ReplyOf, ContractOf, AskOptions } from './contract.js';
export { defaultSupervision, type SupervisionStrategy } from './supervision.js';
export { Router, fnv1a, type KeyArgs, type RouterOptions, type RouterStats, type RoutingStrategy } from './router.js';
export {
  ActorErrorCodes,
  AskTimeoutError,
  AskAbortedError,
  ActorNotFoundError,
  ActorStoppedError,
  SystemClosedError,
  PrimaryLostError,
  ActorHandlerError,
  ClusterUnavailableError,
  ChildFailedError,
} from './errors.js';
export { InProcessHub, InProcessTransport } from './in-process.js';
export { MailboxTransport, type MailboxTransportOptions } from './mailbox-transport.js';
export { startActorSystem, type GroupActorSystem, type StartActorSystemOptions } from './join.js';
export {
  ProcessPool,
  type LaunchOptions,
  type ReadyWhen,
  type PoolEvent,
  type PoolChild,
  type PoolSlot,
  type PoolState,
  type ChildExit,
  type ExitReason,
} from './process-pool.js';
export { GAVE_UP_EXIT_CODE, launchedChild, signalReady, type LaunchedChild } from './launched-child.js';
export type { RestartPolicy } from './restart-budget.js';
export {
  EnvelopeKind,
  type ActorTransport,
  type Envelope,
  type DeliveryStatus,
  type Receiver,
  type Registration,
  type NameGone,
  type MembershipChange,
  type Location,
  type WireError,
} from './transport.js';
export type { DeadLetterReason } from './cell.js';
