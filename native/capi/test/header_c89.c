/* Compiled as strict C89 (see CMakeLists.txt) so that cachesage.h stays
 * usable from the oldest C compilers; the test calls this to keep it linked. */
#include "cachesage.h"

int capi_c89_abi_version(const cs_config* config);

int capi_c89_abi_version(const cs_config* config) {
  cs_metadata md;
  cs_copy_plan plan;
  cs_events events;
  md.num_blocks = 0;
  plan.count = 0;
  events.count = 0;
  if (config == 0 || config->device_blocks < 1) return -1;
  return (int)cs_abi_version() + md.num_blocks + plan.count + events.count;
}
