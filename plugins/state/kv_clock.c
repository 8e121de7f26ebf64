/*
 * kv_clock - the state layer's one clock (kv_now_ms in kv.h), apart from the
 * store front so that the backends, which read it, and the front, which
 * opens them, do not depend on each other.  Wall-clock time, not monotonic:
 * windows and greylist times are compared across the instances of a fleet
 * through a shared Redis, so every host must read the same clock (NTP).
 */
#include "kv.h"

#include <time.h>

int64_t kv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
