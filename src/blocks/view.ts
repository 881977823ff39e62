/**
 * A read-only view of a block manager: what policies and other readers may
 * see (sizes, metadata, lookups, counts) and nothing that changes it. The
 * metadata arrays are shared zero-copy, read-only by contract.
 */
import type { BlockManagerLike } from './types.js';

/** The members a view reads through: the one list of them. */
const READ_PROPERTIES = [
  'blockSize',
  'bytesPerBlock',
  'deviceBlocks',
  'hostBlocks',
  'numBlockIds',
  'maxClasses',
  'metadata',
  'classScores',
  'clock',
  'numRequests',
] as const;
const READ_METHODS = ['lookup', 'hasRequest', 'requestBlocks', 'usedBlocks', 'evictableBlocks', 'pinnedDeviceBlocks'] as const;

export type BlockManagerView = Pick<BlockManagerLike, (typeof READ_PROPERTIES)[number] | (typeof READ_METHODS)[number]>;

/** A frozen view of `manager` that forwards only the reading members; properties follow the manager live. */
export function readOnlyView(manager: BlockManagerLike): BlockManagerView {
  const view: Record<string, unknown> = {};
  for (const name of READ_PROPERTIES) Object.defineProperty(view, name, { get: () => manager[name], enumerable: true });
  for (const name of READ_METHODS) view[name] = manager[name].bind(manager);
  return Object.freeze(view) as unknown as BlockManagerView;
}
