/**
 * What a group looks like from outside, read from its files only (no EAL, no lcore, no message
 * to any of its processes): the groups on this machine, their primary and members, their
 * hugepage memory, alive or dead; and the removal of a dead group's files. Used by `mpbus ls`
 * and `mpbus clean`.
 */
import { isFilePrefix } from '../validation.js';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MpBusError, ErrorCodes } from '../errors.js';
import { dpdkRuntimeRoot, GroupFiles, livePrimaryPidNamespace, lockHolders, ownPidNamespace, pidAlive } from './group.js';

/** One group as its files describe it. */
export interface GroupSurvey {
  /** The group's `--file-prefix`. */
  prefix: string;
  /** 'alive': its primary lives; 'orphaned': no primary but live secondaries; 'dead': no process lives (files left behind). */
  state: 'alive' | 'orphaned' | 'dead';
  /** The live primary's pid (mpbus or not), from the kernel's lock table; null when none lives. */
  primaryPid: number | null;
  /** True when the primary (live or last known) is an mpbus process. */
  mpbusPrimary: boolean;
  /** Pids of the live secondaries (mpbus or not), from their rte_mp sockets. */
  secondaryPids: number[];
  /** Bytes of hugepage memory the group's files hold. */
  hugepageBytes: number;
  /** The group's runtime dir. */
  runtimeDir: string;
  /**
   * The group's PID namespace (`pid:[inode]`) when it is not this process's (its primary runs in
   * another container): the pids in its counters are that namespace's, not this one's.
   */
  otherPidNamespace?: string | undefined;
}

/** Every group with a runtime dir on this machine (this user's DPDK runtime root), by prefix. */
export function surveyGroups(): GroupSurvey[] {
  const root = dpdkRuntimeRoot();
  let names: string[] = [];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  return (
    names
      // (a C program's prefix outside mpbus's rule is not a group mpbus can name)
      .filter((name) => isFilePrefix(name) && (existsSync(join(root, name, 'config')) || existsSync(join(root, name, 'mpbus_settings.json'))))
      .sort()
      .map((name) => surveyGroup(name))
  );
}

/** One group, whether or not it is alive. */
export function surveyGroup(prefix: string): GroupSurvey {
  const group = new GroupFiles(prefix);
  const primaryPid = posixLockHolder(group.configPath) ?? null;
  const settings = group.readSettings();
  const secondaryPids = group.liveSecondaryPids().filter((pid) => pid !== primaryPid);
  const hugepageBytes = group.hugepageFiles().reduce((sum, file) => sum + sizeOf(file), 0);
  const state = primaryPid !== null ? 'alive' : secondaryPids.length > 0 || group.otherMemberAlive() ? 'orphaned' : 'dead';
  return {
    prefix,
    state,
    primaryPid,
    mpbusPrimary: settings !== undefined && (primaryPid === null || settings.primaryPid === primaryPid),
    secondaryPids,
    hugepageBytes,
    runtimeDir: group.runtimeDir,
    ...otherPidNamespaceOf(state === 'dead' ? undefined : livePrimaryPidNamespace(settings, primaryPid ?? undefined)),
  };
}

/** `{ otherPidNamespace }` when `namespace` is known and not this process's. */
function otherPidNamespaceOf(namespace: string | undefined): { otherPidNamespace?: string } {
  return namespace !== undefined && namespace !== ownPidNamespace() ? { otherPidNamespace: namespace } : {};
}

/**
 * Removes a dead group's hugepage files and runtime dir. Refused with `GROUP_BUSY` while any
 * process of the group lives (it would lose its memory), `ENOENT` when there is no such group.
 */
export function cleanGroup(prefix: string): GroupSurvey {
  const survey = surveyGroup(prefix);
  const group = new GroupFiles(prefix);
  if (!existsSync(group.runtimeDir) && group.hugepageFiles().length === 0) {
    throw new MpBusError(ErrorCodes.notFound, `no group '${prefix}' on this machine (no ${group.runtimeDir}, no hugepage files): 'mpbus ls' lists the groups`);
  }
  if (survey.state !== 'dead') {
    const pids = [survey.primaryPid, ...survey.secondaryPids].filter((p) => p !== null);
    throw new MpBusError(
      ErrorCodes.groupBusy,
      `group '${prefix}' still has live processes${pids.length ? ` (pids ${pids.join(', ')})` : ''}: stop them first (the last one out removes the files itself)`,
    );
  }
  // Taken exclusively: no mpbus process can be joining or leaving while the files go.
  const members = group.tryLock('members', true);
  const primary = members >= 0 ? group.tryLock('primary', true) : -1;
  try {
    if (primary < 0 || group.primaryAlive() || group.liveSecondaryPids().length > 0) {
      throw new MpBusError(ErrorCodes.groupBusy, `group '${prefix}' is being started or left right now: try again in a moment`);
    }
    group.removeLeftovers(false);
  } finally {
    group.unlock(primary);
    group.unlock(members);
  }
  return survey;
}

/** The pid holding a POSIX (fcntl) lock on `path`: how DPDK's primary holds `config`. */
function posixLockHolder(path: string): number | undefined {
  return lockHolders(path, 'POSIX').find((pid) => pidAlive(pid));
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
