/**
 * Entry point of the TypeScript reference model of the block manager, the
 * oracle the native manager is property-tested against. The model lives in
 * src/blocks/reference/, one file per file of native/core/.
 */
export { ReferenceBlockManager } from './reference/block_manager.js';
