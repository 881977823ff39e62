// Block copy: runs the copies of one stage of a CopyPlan in one dispatch.
//
// Pools hold whole blocks back to back: slot s of a tier is words
// [s * wordsPerBlock, (s + 1) * wordsPerBlock). Each copy is one vec4 of
// the packed plan: (srcTier, srcSlot, dstTier, dstSlot), tier 1 = device,
// 2 = host, as in CopyPlan. The copies of a stage write distinct slots and
// read none that the stage writes, so invocations never race.
//
// Two entry points over the same layout: copy_quads moves 16 bytes per
// step and needs bytesPerBlock % 16 == 0; copy_words handles the rest.

struct Params {
  // First copy of the stage and how many it has.
  copyStart: u32,
  copyCount: u32,
  // Units (words or quads) per block.
  unitsPerBlock: u32,
}

// Workgroups stride over copies along y and over the units of a block along
// x, so every invocation of a workgroup works on one copy: the tier choice
// is uniform and no invocation divides to find its copy.
const TIER_DEVICE: u32 = 1u;
const WORKGROUP: u32 = 256u;

@group(0) @binding(0) var<storage, read_write> deviceWords: array<u32>;
@group(0) @binding(1) var<storage, read_write> hostWords: array<u32>;
@group(0) @binding(2) var<storage, read_write> deviceQuads: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> hostQuads: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> copies: array<vec4<u32>>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(256)
fn copy_words(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let units = params.unitsPerBlock;
  for (var index = group.y; index < params.copyCount; index += groups.y) {
    let copy = copies[params.copyStart + index];
    let source = copy.y * units;
    let destination = copy.w * units;
    for (var unit = group.x * WORKGROUP + lane; unit < units; unit += groups.x * WORKGROUP) {
      var value: u32;
      if (copy.x == TIER_DEVICE) { value = deviceWords[source + unit]; } else { value = hostWords[source + unit]; }
      if (copy.z == TIER_DEVICE) { deviceWords[destination + unit] = value; } else { hostWords[destination + unit] = value; }
    }
  }
}

@compute @workgroup_size(256)
fn copy_quads(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let units = params.unitsPerBlock;
  for (var index = group.y; index < params.copyCount; index += groups.y) {
    let copy = copies[params.copyStart + index];
    let source = copy.y * units;
    let destination = copy.w * units;
    for (var unit = group.x * WORKGROUP + lane; unit < units; unit += groups.x * WORKGROUP) {
      var value: vec4<u32>;
      if (copy.x == TIER_DEVICE) { value = deviceQuads[source + unit]; } else { value = hostQuads[source + unit]; }
      if (copy.z == TIER_DEVICE) { deviceQuads[destination + unit] = value; } else { hostQuads[destination + unit] = value; }
    }
  }
}
