/**
 * Snapshots of what the runtime learned, written atomically (temp file,
 * fsync, rename) so a crash never leaves a half-written file, and refused
 * with a clear error when corrupt or foreign.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';

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
