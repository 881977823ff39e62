#include "block_metadata.h"

namespace cachesage {

BlockMetadata::BlockMetadata(int32_t n, int32_t numClasses)
    : tier(n, static_cast<uint8_t>(Tier::Free)),
      committed(n, 0),
      slot(n, -1),
      refCount(n, 0),
      lastAccess(n, 0),
      accessCount(n, 0),
      workload(n, -1),
      agentMask(n, 0),
      session(n, -1),
      depth(n, 0),
      cachedChildren(n, 0),
      deviceChildren(n, 0),
      hash(n, 0),
      parent(n, kNoBlock),
      score(n, 0.0f),
      scoreClass(n, -1),
      classScore(numClasses, 0.0f) {}

void BlockMetadata::reset(int32_t id) {
  committed[id] = 0;
  refCount[id] = 0;
  lastAccess[id] = 0;
  accessCount[id] = 0;
  workload[id] = -1;
  agentMask[id] = 0;
  session[id] = -1;
  depth[id] = 0;
  hash[id] = 0;
  parent[id] = kNoBlock;
  score[id] = 0.0f;
  scoreClass[id] = -1;
}

BlockTree::BlockTree(int32_t numBlocks)
    : firstChild_(numBlocks, kNoBlock),
      nextSibling_(numBlocks, kNoBlock),
      prevSibling_(numBlocks, kNoBlock) {}

void BlockTree::link(BlockMetadata& m, int32_t parentId, int32_t child) {
  m.parent[child] = parentId;
  if (parentId == kNoBlock) return;
  ++m.cachedChildren[parentId];
  if (m.tier[child] == static_cast<uint8_t>(Tier::Device)) ++m.deviceChildren[parentId];
  nextSibling_[child] = firstChild_[parentId];
  prevSibling_[child] = kNoBlock;
  if (firstChild_[parentId] != kNoBlock) prevSibling_[firstChild_[parentId]] = child;
  firstChild_[parentId] = child;
}

int32_t BlockTree::unlink(BlockMetadata& m, int32_t child) {
  const int32_t parentId = m.parent[child];
  if (parentId == kNoBlock) return kNoBlock;
  --m.cachedChildren[parentId];
  if (m.tier[child] == static_cast<uint8_t>(Tier::Device)) --m.deviceChildren[parentId];
  if (prevSibling_[child] != kNoBlock) {
    nextSibling_[prevSibling_[child]] = nextSibling_[child];
  } else {
    firstChild_[parentId] = nextSibling_[child];
  }
  if (nextSibling_[child] != kNoBlock) prevSibling_[nextSibling_[child]] = prevSibling_[child];
  nextSibling_[child] = prevSibling_[child] = kNoBlock;
  m.parent[child] = kNoBlock;
  return parentId;
}

}  // namespace cachesage
