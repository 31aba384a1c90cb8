// Shared by the bench's C clients and servers: the monotonic clock in nanoseconds (the
// clock Loadshear's own timestamps use, so figures from both sides compare) and a qsort
// comparator for the percentiles.
#ifndef BENCH_TIME_H
#define BENCH_TIME_H
#include <time.h>

static inline long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int by_value(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}
#endif
