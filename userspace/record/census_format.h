// Recording encoding of the goroutine census (record kind kRecGoCensus).
#pragma once
#include "gc/gc.h"
#include "record/format.h"

namespace schedscope::record {

void encode_census(ByteWriter& out, const gc::Census& c);
bool decode_census(ByteReader& in, gc::Census* c);

}  // namespace schedscope::record
