/**
 * `cachesage/reference`: every plain TypeScript oracle the native code and
 * the kernels are tested against, in one place: the block manager, token
 * hashing, block copy, hit scoring with victim selection, and survival.
 */
export { ReferenceBlockManager } from './blocks/reference.js';
export { hashBlock, hashTokenBlocks as referenceHashTokenBlocks, type TokenArray } from './blocks/hash.js';
export { referenceBlockCopy, type BlockPools } from './compute/block_copy.js';
export { referenceHitScores, referenceHitScoring, referenceSelectVictims } from './compute/hit_scoring.js';
export { ReferenceSurvivalBackend } from './compute/survival.js';
