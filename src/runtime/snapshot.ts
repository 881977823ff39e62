/**
 * Snapshots of what the runtime learned, written atomically (temp file,
 * fsync, rename) so a crash never leaves a half-written file, and refused
 * with a clear error when corrupt or foreign.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
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

export function writeSnapshotAtomically(path: string, snapshot: RuntimeSnapshot): void {
  const text = JSON.stringify(snapshot);
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(temp, 'w', 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(temp, path);
  } catch (error) {
    unlinkSync(temp);
    throw error;
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
