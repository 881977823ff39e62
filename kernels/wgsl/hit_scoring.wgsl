// Hit scoring: the retention score of every block id in one dispatch, and
// the k evictable device leaves that the block manager would evict first.
//
// score_blocks reads the metadata arrays (packed into one word buffer at
// the offsets in Params) and writes each block's effective score (its
// class's score when classed, else its own) and a 128-bit sort key. The key
// orders exactly as the manager orders victims: (score, lastAccess, id)
// ascending, with -0 equal to 0. Floats are compared through
// order-preserving integer images of their bits, so subnormals and signed
// zeros compare as the CPU compares them, whatever the device does with
// denormal floats. Blocks that are not evictable get the all-ones key.
//
// Selection is a radix select followed by a small sort, so the work grows
// with the block count only through a few streaming passes:
//   radix_histogram / radix_select, once per 8-bit digit of the key, most
//     significant first, narrow the key prefix that holds the k-th smallest
//     key, until every key with that prefix is wanted (at most 16 rounds;
//     rounds after that return at once);
//   compact_selected copies the wanted keys (those whose masked key is at
//     most the prefix) to the candidate array, in no particular order;
//   sort_local / sort_global bitonic-sort the candidate array, padded with
//     all-ones keys to a power of two.

struct Params {
  blockCount: u32,
  classCount: u32,
  // Word offsets of each metadata array in `metadata`.
  tierOffset: u32,
  committedOffset: u32,
  refCountOffset: u32,
  deviceChildrenOffset: u32,
  lastAccessOffset: u32,
  scoreOffset: u32,
  scoreClassOffset: u32,
  classScoreOffset: u32,
  // radix_histogram / radix_select: the digit, 0 = top byte of key.x.
  digit: u32,
  // Candidate array length, a power of two.
  candidateCount: u32,
  // sort_global: stride (half-cleaner) or half span (flip).
  stride: u32,
  // 1: the first compare of a merge, which pairs i with the mirror of i.
  flip: u32,
  // sort_local: 0 sorts tiles from scratch, 1 finishes a merge.
  localMode: u32,
}

struct Selection {
  // The key bits fixed so far and their values.
  prefix: vec4<u32>,
  mask: vec4<u32>,
  // Keys still to pick among those matching the prefix.
  remaining: u32,
  // 1 once every key matching the prefix is wanted.
  done: u32,
  selected: atomic<u32>,
  histogram: array<atomic<u32>, 256>,
}

const WORKGROUP: u32 = 256u;
const TILE: u32 = 512u;
const TIER_DEVICE: u32 = 1u;
const NOT_EVICTABLE: vec4<u32> = vec4<u32>(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);

@group(0) @binding(0) var<storage, read> metadata: array<u32>;
@group(0) @binding(1) var<storage, read_write> scoreBits: array<u32>;
@group(0) @binding(2) var<storage, read_write> keys: array<vec4<u32>>;
@group(0) @binding(3) var<uniform> params: Params;
@group(0) @binding(4) var<storage, read_write> selection: Selection;
@group(0) @binding(5) var<storage, read_write> candidates: array<vec4<u32>>;

var<workgroup> tile: array<vec4<u32>, TILE>;
var<workgroup> localHistogram: array<atomic<u32>, 256>;
var<workgroup> finished: u32;

fn byteAt(offset: u32, index: u32) -> u32 {
  return (metadata[offset + index / 4u] >> ((index % 4u) * 8u)) & 0xffu;
}

// Unsigned order image of a float32: x < y as floats iff image(x) < image(y).
fn orderF32(bits: u32) -> u32 {
  var b = bits;
  if (b == 0x80000000u) { b = 0u; }
  if ((b & 0x80000000u) != 0u) { return ~b; }
  return b | 0x80000000u;
}

// The same for a float64 given as (low word, high word); returns (high, low).
fn orderF64(low: u32, high: u32) -> vec2<u32> {
  if (high == 0x80000000u && low == 0u) { return vec2<u32>(0x80000000u, 0u); }
  if ((high & 0x80000000u) != 0u) { return vec2<u32>(~high, ~low); }
  return vec2<u32>(high | 0x80000000u, low);
}

fn keyLess(a: vec4<u32>, b: vec4<u32>) -> bool {
  if (a.x != b.x) { return a.x < b.x; }
  if (a.y != b.y) { return a.y < b.y; }
  if (a.z != b.z) { return a.z < b.z; }
  return a.w < b.w;
}

fn isEvictableKey(key: vec4<u32>) -> bool {
  // Real ids are below 2^31, so only the marker has an all-ones id.
  return key.w != 0xffffffffu;
}

fn linearGroup(id: vec3<u32>, groups: vec3<u32>) -> u32 {
  return id.y * groups.x + id.x;
}

@compute @workgroup_size(256)
fn score_blocks(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let id = linearGroup(group, groups) * WORKGROUP + lane;
  if (id >= params.blockCount) { return; }
  let scoreClass = bitcast<i32>(metadata[params.scoreClassOffset + id]);
  var bits: u32;
  if (scoreClass >= 0) {
    bits = metadata[params.classScoreOffset + min(u32(scoreClass), params.classCount - 1u)];
  } else {
    bits = metadata[params.scoreOffset + id];
  }
  scoreBits[id] = bits;

  let evictable = byteAt(params.tierOffset, id) == TIER_DEVICE
    && byteAt(params.committedOffset, id) == 1u
    && metadata[params.refCountOffset + id] == 0u
    && metadata[params.deviceChildrenOffset + id] == 0u;
  if (!evictable) {
    keys[id] = NOT_EVICTABLE;
    return;
  }
  let last = orderF64(
    metadata[params.lastAccessOffset + 2u * id],
    metadata[params.lastAccessOffset + 2u * id + 1u],
  );
  keys[id] = vec4<u32>(orderF32(bits), last.x, last.y, id);
}

// Whether the selection is complete, read once per workgroup so that the
// early return is uniform and the barriers after it are legal.
fn selectionFinished(lane: u32) -> bool {
  if (lane == 0u) { finished = selection.done; }
  return workgroupUniformLoad(&finished) != 0u;
}

fn digitOf(key: vec4<u32>, digit: u32) -> u32 {
  return (key[digit / 4u] >> (24u - 8u * (digit % 4u))) & 0xffu;
}

@compute @workgroup_size(256)
fn radix_histogram(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  if (selectionFinished(lane)) { return; }
  atomicStore(&localHistogram[lane], 0u);
  workgroupBarrier();
  let prefix = selection.prefix;
  let mask = selection.mask;
  let gridSize = groups.x * groups.y * WORKGROUP;
  for (var i = linearGroup(group, groups) * WORKGROUP + lane; i < params.blockCount; i += gridSize) {
    let key = keys[i];
    if (isEvictableKey(key) && all((key & mask) == prefix)) {
      atomicAdd(&localHistogram[digitOf(key, params.digit)], 1u);
    }
  }
  workgroupBarrier();
  let count = atomicLoad(&localHistogram[lane]);
  if (count != 0u) { atomicAdd(&selection.histogram[lane], count); }
}

// One invocation: the scan is 256 bins, too little to share out.
@compute @workgroup_size(1)
fn radix_select() {
  if (selection.done != 0u) { return; }
  var total = 0u;
  for (var bin = 0u; bin < 256u; bin++) { total += atomicLoad(&selection.histogram[bin]); }
  let remaining = selection.remaining;
  if (total <= remaining) {
    // Fewer keys match than are wanted (only possible on the first digit,
    // when fewer blocks are evictable than k): take them all.
    selection.done = 1u;
  } else {
    var below = 0u;
    var chosen = 255u;
    var count = 0u;
    for (var bin = 0u; bin < 256u; bin++) {
      count = atomicLoad(&selection.histogram[bin]);
      if (below + count >= remaining) {
        chosen = bin;
        break;
      }
      below += count;
    }
    let word = params.digit / 4u;
    let shift = 24u - 8u * (params.digit % 4u);
    selection.prefix[word] |= chosen << shift;
    selection.mask[word] |= 0xffu << shift;
    selection.remaining = remaining - below;
    if (count == remaining - below) { selection.done = 1u; }
  }
  for (var bin = 0u; bin < 256u; bin++) { atomicStore(&selection.histogram[bin], 0u); }
}

@compute @workgroup_size(256)
fn fill_candidates(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let i = linearGroup(group, groups) * WORKGROUP + lane;
  if (i < params.candidateCount) { candidates[i] = NOT_EVICTABLE; }
}

@compute @workgroup_size(256)
fn compact_selected(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let prefix = selection.prefix;
  let mask = selection.mask;
  let gridSize = groups.x * groups.y * WORKGROUP;
  for (var i = linearGroup(group, groups) * WORKGROUP + lane; i < params.blockCount; i += gridSize) {
    let key = keys[i];
    let masked = key & mask;
    if (isEvictableKey(key) && !keyLess(prefix, masked)) {
      let slot = atomicAdd(&selection.selected, 1u);
      // The selection holds at most candidateCount keys; the guard only
      // keeps a broken invariant from writing out of bounds.
      if (slot < params.candidateCount) { candidates[slot] = key; }
    }
  }
}

// The compare-exchange pair `pair` of a flip over spans of 2 * half keys,
// or of a half-cleaner with stride `half`.
fn pairIndices(pair: u32, half: u32, flip: bool) -> vec2<u32> {
  let start = (pair / half) * 2u * half;
  let offset = pair % half;
  if (flip) { return vec2<u32>(start + offset, start + 2u * half - 1u - offset); }
  return vec2<u32>(start + offset, start + offset + half);
}

@compute @workgroup_size(256)
fn sort_global(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let pair = linearGroup(group, groups) * WORKGROUP + lane;
  if (pair >= params.candidateCount / 2u) { return; }
  let v = pairIndices(pair, params.stride, params.flip == 1u);
  let a = candidates[v.x];
  let b = candidates[v.y];
  if (keyLess(b, a)) {
    candidates[v.x] = b;
    candidates[v.y] = a;
  }
}

fn tileCompareExchange(lane: u32, half: u32, flip: bool) {
  let v = pairIndices(lane, half, flip);
  let a = tile[v.x];
  let b = tile[v.y];
  if (keyLess(b, a)) {
    tile[v.x] = b;
    tile[v.y] = a;
  }
}

@compute @workgroup_size(256)
fn sort_local(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let base = linearGroup(group, groups) * TILE;
  let count = params.candidateCount;
  // Every workgroup runs the same barriers; lanes past the array only
  // shuffle padding and write nothing back.
  for (var i = 0u; i < TILE / WORKGROUP; i++) {
    let v = base + lane + i * WORKGROUP;
    if (v < count) {
      tile[lane + i * WORKGROUP] = candidates[v];
    } else {
      tile[lane + i * WORKGROUP] = NOT_EVICTABLE;
    }
  }
  workgroupBarrier();

  let span = min(count, TILE);
  if (params.localMode == 0u) {
    for (var size = 2u; size <= span; size *= 2u) {
      tileCompareExchange(lane, size / 2u, true);
      workgroupBarrier();
      for (var stride = size / 4u; stride > 0u; stride /= 2u) {
        tileCompareExchange(lane, stride, false);
        workgroupBarrier();
      }
    }
  } else {
    for (var stride = span / 2u; stride > 0u; stride /= 2u) {
      tileCompareExchange(lane, stride, false);
      workgroupBarrier();
    }
  }

  for (var i = 0u; i < TILE / WORKGROUP; i++) {
    let v = base + lane + i * WORKGROUP;
    if (v < count) { candidates[v] = tile[lane + i * WORKGROUP]; }
  }
}
