/**
 * Snapshots of what the runtime learned, written atomically (temp file,
 * fsync, rename, fsync of the directory) so a crash never leaves a
 * half-written file, and refused with a clear error when corrupt or foreign.
 */
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';

import type { Policy } from '../policies/types.js';

export const SNAPSHOT_FORMAT = 'cachesage.runtime';
export const SNAPSHOT_VERSION = 1;

export interface RuntimeSnapshot {
  format: typeof SNAPSHOT_FORMAT;
  version: typeof SNAPSHOT_VERSION;
  savedAt: string;
  /** Per policy name, what that policy's snapshot() returned. */
  policies: Record<string, unknown>;
}

export class SnapshotError extends Error {
  override name = 'SnapshotError';
}

/** `.NAME.PID.MILLISECONDS.tmp` beside NAME: the writer's process id is in the name. */
function tempPattern(path: string): RegExp {
  return new RegExp(`^\\.${basename(path).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d+)\\.\\d+\\.tmp$`);
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temp files that writers of `path` left behind when they died
 * between creating and renaming them (a kill, a power cut). A temp file of
 * a live process may be a write in progress and is left alone.
 */
function removeStaleTemps(path: string): void {
  const pattern = tempPattern(path);
  const dir = dirname(path);
  for (const name of readdirSync(dir)) {
    const pid = Number(pattern.exec(name)?.[1] ?? NaN);
    if (!Number.isInteger(pid) || pid === process.pid || processIsAlive(pid)) continue;
    try {
      unlinkSync(join(dir, name));
    } catch (error) {
      // Another writer removed it first.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

function writeAll(fd: number, bytes: Buffer): void {
  for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
}

/**
 * Writes `snapshot` to `path` so that `path` always holds a complete
 * snapshot, the old one or the new one, whenever the process dies: the
 * bytes go to a temp file that is flushed, then renamed over `path`, and
 * the directory is flushed so the rename itself survives a power cut.
 */
export function writeSnapshotAtomically(path: string, snapshot: RuntimeSnapshot): void {
  const bytes = Buffer.from(JSON.stringify(snapshot), 'utf8');
  const dir = dirname(path);
  removeStaleTemps(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(temp, 'w', 0o644);
  try {
    try {
      writeAll(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (error) {
    try {
      unlinkSync(temp);
    } catch {
      // Renamed already, or never created: nothing to remove.
    }
    throw error;
  }
  // Windows cannot open a directory to flush it; its renames are journaled.
  if (process.platform === 'win32') return;
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

export function readSnapshot(path: string): RuntimeSnapshot {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new SnapshotError(`cannot read snapshot ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new SnapshotError(`snapshot ${path} is corrupt: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null) throw new SnapshotError(`snapshot ${path} is not an object`);
  const s = value as Partial<RuntimeSnapshot>;
  if (s.format !== SNAPSHOT_FORMAT) {
    throw new SnapshotError(`${path} is not a cachesage runtime snapshot (format ${JSON.stringify(s.format)})`);
  }
  if (s.version !== SNAPSHOT_VERSION) {
    throw new SnapshotError(`snapshot ${path} has version ${JSON.stringify(s.version)}; this runtime reads version ${SNAPSHOT_VERSION}`);
  }
  if (typeof s.policies !== 'object' || s.policies === null || Array.isArray(s.policies)) {
    throw new SnapshotError(`snapshot ${path} has no policies object`);
  }
  return s as RuntimeSnapshot;
}

/** Writes what the policies learned to `path`, atomically. */
export function snapshotPolicies(policies: readonly Policy[], path: string): void {
  const learned: Record<string, unknown> = {};
  for (const p of policies) {
    if (p.snapshot) learned[p.name] = p.snapshot();
  }
  writeSnapshotAtomically(path, { format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, savedAt: new Date().toISOString(), policies: learned });
}

/**
 * Restores what the policies learned from `path`. Every policy's part is
 * applied or none is: on a refused part the others are put back.
 *
 * @throws SnapshotError when the file is corrupt, foreign or a part is refused.
 */
export function restorePolicies(policies: readonly Policy[], path: string): void {
  const snapshot = readSnapshot(path);
  const staged: [Policy, unknown][] = [];
  for (const p of policies) {
    if (p.restore && p.name in snapshot.policies) staged.push([p, snapshot.policies[p.name]]);
  }
  const backups = staged.map(([p]) => p.snapshot?.());
  try {
    for (const [p, state] of staged) p.restore!(state);
  } catch (error) {
    staged.forEach(([p], i) => {
      if (backups[i] !== undefined) p.restore!(backups[i]);
    });
    throw new SnapshotError(`snapshot ${path} was refused: ${(error as Error).message}`);
  }
}
