// The block manager and the CPU data plane on their own, as an engine uses
// them: admit a prompt, write its KV into the block table, share the full
// blocks, then find them again after they were demoted to host memory.
import { BlockManager, CpuDataPlane, hashTokenBlocks } from 'cachesage/blocks';

// 64 KiB per block (a small model's KV for 16 tokens): 64 MiB of device
// pool and 256 MiB of host pool. A real engine sizes these from its model.
const sizes = { bytesPerBlock: 64 << 10, deviceBlocks: 1024, hostBlocks: 4096 };
const manager = new BlockManager({ blockSize: 16, ...sizes });
const dataPlane = new CpuDataPlane(sizes);

// Token ids stand in for a tokenizer's output: 1,000 tokens, 62 full blocks.
const prompt = Uint32Array.from({ length: 1000 }, (_, i) => 1000 + i);
const hashes = hashTokenBlocks(prompt, 16); // one chained hash per full block

const first = manager.admit(1, hashes, prompt.length, { workload: 0, agent: 3, session: 42 });
if (first === null) throw new Error('no unpinned device capacity: queue the request and retry');
dataPlane.execute(manager.takeCopyPlan()); // demotions and host->device loads, if any
// Tokens whose KV needs no prefill: those cached on device, then the loaded blocks.
const reused = (r) => r.cachedDeviceTokens + r.loadedBlocks * manager.blockSize;
// "Prefill" the rest: write each block's KV into its device slot.
first.blockTable.forEach((slot, i) => dataPlane.write('device', slot, new Uint8Array(sizes.bytesPerBlock).fill(i % 251)));
manager.commit(1, hashes.length); // the full blocks become shared cache
manager.release(1); // unpinned; cached until evicted
console.log(`first call: ${reused(first)} of ${prompt.length} tokens reused`);

// Memory pressure: move the cached blocks to the host tier, leaves first.
const demoted = manager.demote(first.blockIds.slice(0, hashes.length).reverse());
dataPlane.execute(manager.takeCopyPlan());
console.log(`demoted ${demoted} blocks to host`);

// The same prefix again: the blocks come back from host, bytes intact.
const again = manager.admit(2, hashes, prompt.length);
if (again === null) throw new Error('no unpinned device capacity');
dataPlane.execute(manager.takeCopyPlan());
const intact = again.blockTable.subarray(0, hashes.length).every((slot, i) => dataPlane.read('device', slot)[7] === i % 251);
console.log(`second call: ${reused(again)} of ${prompt.length} tokens reused (${again.loadedBlocks} blocks loaded from host), KV intact: ${intact}`);
manager.release(2);

// A policy steers eviction with one score per block id (lower goes first).
const m = manager.metadata; // zero-copy typed arrays
const scores = new Float32Array(manager.numBlockIds);
for (let id = 0; id < scores.length; id++) scores[id] = m.lastAccess[id] - m.depth[id] * 1e-3;
manager.setAllScores(scores);
console.log(`invariants: ${manager.checkInvariants() || 'hold'}`);
