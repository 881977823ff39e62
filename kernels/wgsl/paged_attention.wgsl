// Paged attention over the engine's page layout (native/engine/model_config.h):
// the pool holds f32 blocks back to back,
//
//   pool[slot][layer][0 = K, 1 = V][kvHead][token in block][dim],
//
// with the strides of PageLayout in floats, and a block table lists a
// request's device slots in token order. Queries and outputs are
// [rows][heads][headDim]; appended K and V rows are [tokens][kvHeads][headDim].
// Query head h reads KV head h / (heads / kvHeads).
//
// Three entry points:
//   append_kv          writes the K/V rows of tokens at firstPosition + i;
//   prefill_attention  row i of a chunk sits at firstPosition + i and
//                      attends causally to [0, firstPosition + i] through
//                      the one table at slots[0];
//   decode_attention   row s is a sequence whose table starts at
//                      sequences[s].x and whose query sits at sequences[s].y.
//
// Attention runs one workgroup per (row, query head) over the row's context
// in tiles of TILE positions with an online softmax: the running maximum
// and sum, and the output sums rescaled whenever the maximum grows, so any
// context fits in fixed workgroup memory.

struct Params {
  layer: u32,
  heads: u32,
  kvHeads: u32,
  headDim: u32,
  blockSize: u32,
  layerStride: u32,
  kvStride: u32,
  blockStride: u32,
  // Attention rows, or appended floats (tokens x kvHeads x headDim).
  items: u32,
  firstPosition: u32,
  // Workgroups along x of a grid folded by foldWorkgroups (device.ts).
  groupsX: u32,
  // 1 / sqrt(headDim).
  scale: f32,
}

// Must match WORKGROUP and MAX_HEAD_DIM in paged_attention_program.ts.
const WORKGROUP: u32 = 64u;
const TILE: u32 = 64u;
const MAX_HEAD_DIM: u32 = 256u;

// Appends move words, not floats, so K/V bytes land exactly as given.
@group(0) @binding(0) var<storage, read_write> poolWords: array<u32>;
@group(0) @binding(1) var<storage, read> pool: array<f32>;
@group(0) @binding(2) var<storage, read> slots: array<u32>;
@group(0) @binding(3) var<storage, read> sequences: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read> newKeys: array<u32>;
@group(0) @binding(5) var<storage, read> newValues: array<u32>;
@group(0) @binding(6) var<storage, read> queries: array<f32>;
@group(0) @binding(7) var<storage, read_write> outputs: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;

var<workgroup> query: array<f32, MAX_HEAD_DIM>;
var<workgroup> sums: array<f32, MAX_HEAD_DIM>;
// Scores of the tile's positions, then their softmax weights.
var<workgroup> weights: array<f32, TILE>;
// Pool offset of each position's K row; its V row is kvStride further.
var<workgroup> keyOffsets: array<u32, TILE>;

@compute @workgroup_size(WORKGROUP)
fn append_kv(
  @builtin(workgroup_id) id: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let index = (id.y * params.groupsX + id.x) * WORKGROUP + lane;
  if (index >= params.items) { return; }
  let hd = params.headDim;
  let perToken = params.kvHeads * hd;
  let position = params.firstPosition + index / perToken;
  let within = index % perToken;
  let offset = slots[position / params.blockSize] * params.blockStride + params.layer * params.layerStride +
               (within / hd) * params.blockSize * hd + (position % params.blockSize) * hd + within % hd;
  poolWords[offset] = newKeys[index];
  poolWords[offset + params.kvStride] = newValues[index];
}

// The output of query `head` of `row`, at `position`, through the table at
// slots[tableStart]. Every invocation of the workgroup calls it with the
// same arguments.
fn attend(row: u32, head: u32, tableStart: u32, position: u32, lane: u32) {
  let hd = params.headDim;
  let bs = params.blockSize;
  let kvHead = head / (params.heads / params.kvHeads);
  let queryBase = (row * params.heads + head) * hd;
  for (var d = lane; d < hd; d += WORKGROUP) {
    query[d] = queries[queryBase + d];
    sums[d] = 0.0;
  }
  workgroupBarrier();

  let headBase = params.layer * params.layerStride + kvHead * bs * hd;
  let context = position + 1u;
  // Below any score, and exp(maximum - first tile's maximum) is 0.
  var maximum = -3.0e38;
  var total = 0.0;
  for (var first = 0u; first < context; first += TILE) {
    let n = min(TILE, context - first);
    if (lane < n) {
      let p = first + lane;
      let offset = slots[tableStart + p / bs] * params.blockStride + headBase + (p % bs) * hd;
      var score = 0.0;
      for (var d = 0u; d < hd; d++) { score += query[d] * pool[offset + d]; }
      weights[lane] = score * params.scale;
      keyOffsets[lane] = offset;
    }
    workgroupBarrier();
    var tileMaximum = weights[0];
    for (var j = 1u; j < n; j++) { tileMaximum = max(tileMaximum, weights[j]); }
    let newMaximum = max(maximum, tileMaximum);
    let rescale = exp(maximum - newMaximum);
    // Every invocation has read the scores before they become weights.
    workgroupBarrier();
    if (lane < n) { weights[lane] = exp(weights[lane] - newMaximum); }
    workgroupBarrier();
    var tileTotal = 0.0;
    for (var j = 0u; j < n; j++) { tileTotal += weights[j]; }
    total = total * rescale + tileTotal;
    maximum = newMaximum;
    // Each invocation owns dimensions lane, lane + WORKGROUP, ... of sums.
    for (var d = lane; d < hd; d += WORKGROUP) {
      var accumulated = 0.0;
      for (var j = 0u; j < n; j++) { accumulated += weights[j] * pool[keyOffsets[j] + params.kvStride + d]; }
      sums[d] = sums[d] * rescale + accumulated;
    }
    // The next tile overwrites weights and offsets.
    workgroupBarrier();
  }
  let inverse = 1.0 / total;
  for (var d = lane; d < hd; d += WORKGROUP) { outputs[queryBase + d] = sums[d] * inverse; }
}

@compute @workgroup_size(WORKGROUP)
fn prefill_attention(
  @builtin(workgroup_id) id: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let group = id.y * params.groupsX + id.x;
  let row = group / params.heads;
  if (row >= params.items) { return; }
  attend(row, group % params.heads, 0u, params.firstPosition + row, lane);
}

@compute @workgroup_size(WORKGROUP)
fn decode_attention(
  @builtin(workgroup_id) id: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let group = id.y * params.groupsX + id.x;
  let row = group / params.heads;
  if (row >= params.items) { return; }
  let sequence = sequences[row];
  attend(row, group % params.heads, sequence.x, sequence.y, lane);
}
