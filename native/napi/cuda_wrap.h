#pragma once

#include <napi.h>

namespace cachesage::napi {

// Adds the CUDA entry points to the module's exports:
//
//   cudaInfo() -> { built, available, reason, device }
//     built: the addon was compiled with CUDA (CACHESAGE_HAVE_CUDA);
//     available: a device can run this build's kernels (cudaAvailable());
//     reason: why not, when it cannot ('' when it can);
//     device: the device description when available, else ''.
//
// and, only in builds with CUDA, the classes over kernels/cuda/cuda_backend.h:
//
//   new NativeCudaSurvival()
//     .compute(workloads, states, horizon, transitions: Float32Array,
//              endState: Int32Array) -> { reach, alive, expectedSteps }
//     .computeAsync(same) -> Promise of the same, computed off the main thread
//     .maxStates() -> number
//   new NativeCudaHitScorer()
//     .selectVictims(tier, committed, refCount, deviceChildren, lastAccess,
//                    score, scoreClass, classScores, k) -> { scores, victims }
//     .selectVictimsAsync(same) -> Promise of the same, off the main thread
//   new NativeCudaDataPlane(bytesPerBlock, deviceBlocks, hostBlocks)
//     .execute(srcTier, srcSlot, dstTier, dstSlot, stageStarts)
//     .prefetch(hostSlots: Int32Array, deviceSlots: Int32Array)
//     .waitForPrefetch(), .prefetchComplete() -> boolean, .synchronize()
//     .write(tier, slot, bytes: Uint8Array), .read(tier, slot) -> Uint8Array
//
// Each class also has destroy(), which frees its device memory at once;
// later calls throw. Constructing a class where no device is available
// throws an Error that says why. Builds without CUDA export cudaInfo() alone, so callers test
// for the classes' presence.
void ExportCuda(Napi::Env env, Napi::Object exports);

}  // namespace cachesage::napi
