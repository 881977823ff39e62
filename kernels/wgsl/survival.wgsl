// Survival: for a batch of workloads, every F_h(a, b) for h = 1..H, the
// session-alive probabilities and the expected steps until each state runs,
// in one dispatch. Layouts are SurvivalOutput's (src/compute/survival.ts).
//
// The work is split into columns: workload w has states + 1 of them. Column
// b < states is target b: it carries f_h(a) = F_h(a, b) and the miss
// probability m_h(a) = 1 - F_h(a, b) for every start state a. Column
// b = states is the alive column: m_h(a) = 1 - (T^h)[a][END]. Columns are
// independent across steps, so each workgroup owns whole columns and runs
// all H steps with its column vectors in workgroup memory.
//
// Precision (float32 against a float64 reference): every quantity is
// computed by a recursion whose terms are non-negative, so no step
// subtracts nearly equal numbers. The miss probability is not taken as
// 1 - f (which loses all relative precision once f is near 1) but from
//   m_h(a) = deficit(a) + sum_{c != b} T[a][c] m_{h-1}(c),   m_0 = 1,
// which follows from f's recursion with 1 = deficit(a) + sum_c T[a][c]; the
// alive column is the same recursion over all c with m_0 = 1 - [a = END].
// deficit(a) = 1 - sum_c T[a][c] is exact input (computed in float64 on the
// host), so rows that sum to 1 only within float32 rounding stay consistent
// with the reference. Dot products use four partial sums.

struct Params {
  workloads: u32,
  states: u32,
  horizon: u32,
  // Columns per workgroup: a power of two <= min(WORKGROUP, ENTRIES / states).
  columnsPerGroup: u32,
  totalColumns: u32,
}

const WORKGROUP: u32 = 256u;
const ENTRIES: u32 = 1024u;

@group(0) @binding(0) var<storage, read> transitions: array<f32>;
@group(0) @binding(1) var<storage, read> deficit: array<f32>;
@group(0) @binding(2) var<storage, read> endState: array<i32>;
@group(0) @binding(3) var<storage, read_write> reach: array<f32>;
@group(0) @binding(4) var<storage, read_write> alive: array<f32>;
@group(0) @binding(5) var<storage, read_write> expectedSteps: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

// Column vectors of the previous step, [c * columnsPerGroup + column], with
// row b of target column b held at 0: that is how the sums skip c = b.
var<workgroup> reachPrevious: array<f32, ENTRIES>;
var<workgroup> missPrevious: array<f32, ENTRIES>;

// Each invocation owns one column and four rows of it, rows r, r + R,
// r + 2R, r + 3R with R = WORKGROUP / columnsPerGroup, so one read of the
// column's previous vector serves four rows. Rows past the state count are
// computed on a clamped row and never stored.
@compute @workgroup_size(256)
fn survival(
  @builtin(workgroup_id) id: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let group = id.y * groups.x + id.x;
  let columns = params.columnsPerGroup;
  if (group * columns >= params.totalColumns) { return; }
  let n = params.states;
  let horizon = params.horizon;
  let rowStep = WORKGROUP / columns;

  let local = lane % columns;
  let column = group * columns + local;
  let validColumn = column < params.totalColumns;
  let workload = min(column, params.totalColumns - 1u) / (n + 1u);
  // Target state, or n for the alive column.
  let goal = column % (n + 1u);
  let isAlive = goal == n;
  let firstRow = lane / columns;
  let rows = vec4<u32>(firstRow, firstRow + rowStep, firstRow + 2u * rowStep, firstRow + 3u * rowStep);
  let validRow = (rows < vec4<u32>(n)) & vec4<bool>(validColumn);
  let clamped = min(rows, vec4<u32>(n - 1u));
  let rowStart = (workload * n + clamped) * n;
  let endRow = u32(endState[workload]);

  var deficitOf = vec4<f32>(0.0);
  var stepOf = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k++) {
    deficitOf[k] = deficit[workload * n + clamped[k]];
    if (!isAlive) { stepOf[k] = transitions[rowStart[k] + goal]; }
    if (validRow[k]) {
      let slot = rows[k] * columns + local;
      reachPrevious[slot] = 0.0;
      let excluded = rows[k] == goal || (isAlive && rows[k] == endRow);
      missPrevious[slot] = select(1.0, 0.0, excluded);
    }
  }
  var expected = vec4<f32>(1.0);
  workgroupBarrier();

  for (var h = 1u; h <= horizon; h++) {
    // Four partial sums per row (by c mod 4) keep float32 error small.
    var reach0 = vec4<f32>(0.0);
    var reach1 = vec4<f32>(0.0);
    var reach2 = vec4<f32>(0.0);
    var reach3 = vec4<f32>(0.0);
    var miss0 = vec4<f32>(0.0);
    var miss1 = vec4<f32>(0.0);
    var miss2 = vec4<f32>(0.0);
    var miss3 = vec4<f32>(0.0);
    var c = 0u;
    for (; c + 4u <= n; c += 4u) {
      let s = c * columns + local;
      let t0 = vec4<f32>(transitions[rowStart.x + c], transitions[rowStart.y + c], transitions[rowStart.z + c], transitions[rowStart.w + c]);
      let t1 = vec4<f32>(transitions[rowStart.x + c + 1u], transitions[rowStart.y + c + 1u], transitions[rowStart.z + c + 1u], transitions[rowStart.w + c + 1u]);
      let t2 = vec4<f32>(transitions[rowStart.x + c + 2u], transitions[rowStart.y + c + 2u], transitions[rowStart.z + c + 2u], transitions[rowStart.w + c + 2u]);
      let t3 = vec4<f32>(transitions[rowStart.x + c + 3u], transitions[rowStart.y + c + 3u], transitions[rowStart.z + c + 3u], transitions[rowStart.w + c + 3u]);
      reach0 += t0 * reachPrevious[s];
      reach1 += t1 * reachPrevious[s + columns];
      reach2 += t2 * reachPrevious[s + 2u * columns];
      reach3 += t3 * reachPrevious[s + 3u * columns];
      miss0 += t0 * missPrevious[s];
      miss1 += t1 * missPrevious[s + columns];
      miss2 += t2 * missPrevious[s + 2u * columns];
      miss3 += t3 * missPrevious[s + 3u * columns];
    }
    for (; c < n; c++) {
      let s = c * columns + local;
      let t = vec4<f32>(transitions[rowStart.x + c], transitions[rowStart.y + c], transitions[rowStart.z + c], transitions[rowStart.w + c]);
      reach0 += t * reachPrevious[s];
      miss0 += t * missPrevious[s];
    }
    let f = select(stepOf + ((reach0 + reach1) + (reach2 + reach3)), vec4<f32>(0.0), vec4<bool>(isAlive));
    let m = deficitOf + ((miss0 + miss1) + (miss2 + miss3));
    workgroupBarrier();

    for (var k = 0u; k < 4u; k++) {
      if (!validRow[k]) { continue; }
      let row = rows[k];
      if (isAlive) {
        alive[(workload * horizon + h - 1u) * n + row] = m[k];
      } else {
        reach[((workload * horizon + h - 1u) * n + row) * n + goal] = f[k];
      }
      let slot = row * columns + local;
      let excluded = row == goal;
      reachPrevious[slot] = select(f[k], 0.0, excluded);
      missPrevious[slot] = select(m[k], 0.0, excluded);
    }
    if (h < horizon) { expected += m; }
    workgroupBarrier();
  }

  if (!isAlive) {
    for (var k = 0u; k < 4u; k++) {
      if (validRow[k]) { expectedSteps[(workload * n + rows[k]) * n + goal] = expected[k]; }
    }
  }
}
