// CUDA events for DeviceTimer (CUDA builds only), as opaque pointers so that
// core code needs no CUDA headers.
#pragma once

namespace topkformer::cuda {

void* create_event(int index);
void destroy_event(void* event);
// Records the event on device `index`'s stream.
void record_event(void* event, int index);
// Waits for `stop` and returns the seconds between the two recorded events.
double elapsed_seconds(void* start, void* stop);

}  // namespace topkformer::cuda
