// Recording encoding of the goroutine census (record kind kRecGoCensus) and of the
// runtime's scheduling-latency histogram (kRecGoSchedLatency).
#pragma once
#include "gc/gc.h"
#include "go/timehist.h"
#include "record/format.h"

namespace schedscope::record {

void encode_census(ByteWriter& out, const gc::Census& c);
bool decode_census(ByteReader& in, gc::Census* c);
void encode_time_hist(ByteWriter& out, const go::TimeHist& h);
bool decode_time_hist(ByteReader& in, go::TimeHist* h);

}  // namespace schedscope::record
