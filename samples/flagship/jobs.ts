/** The flagship's job contract and the worker actor that serves it. */
import 'reflect-metadata';
import { injectable } from 'tsyringe';
import { Actor, ActorContext, type Handlers } from '../../src/index.js';

/** One unit of work. */
export interface Job {
  id: number;
  /** Jobs with one key go to one worker under the consistent-hash strategy. */
  key: string;
  payload: Uint8Array;
}

/** A worker's answer. */
export interface JobResult {
  id: number;
  worker: string;
  /** The worker's process (a restarted worker keeps its name in a new process). */
  pid: number;
  checksum: number;
}

/** What the worker pool understands: a typed contract. */
export interface JobContract {
  job: { msg: Job; reply: JobResult };
}

/** The work itself: a checksum of the payload (a service injected into each worker). */
@injectable()
export class Checksum {
  of(bytes: Uint8Array): number {
    let hash = 0x811c9dc5;
    for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
    return hash >>> 0;
  }
}

/** A worker: spawned in each worker process with its own name, in the group 'workers'. */
@Actor(undefined, { groups: ['workers'] })
export class JobWorker implements Handlers<JobContract> {
  constructor(
    private readonly checksum: Checksum,
    private readonly ctx: ActorContext<JobContract>,
  ) {}

  job(job: Job): JobResult {
    return { id: job.id, worker: this.ctx.name, pid: process.pid, checksum: this.checksum.of(job.payload) };
  }
}
