// A native reference for bench/response.sh: the same paced request/response load with no
// runtime at all, so the machine's own floor (two loopback hops and the wake-ups on each
// side) can be told apart from what Loadshear adds. One thread, epoll and an absolute
// timerfd (no spinning, as Loadshear does not spin): SESSIONS TCP connections, session g of
// n sends its request RATE/SESSIONS times a second, staggered g/n of a period, exactly as
// PACE schedules it. A request is an 8-byte header (type 2, body length 8) and an 8-byte
// body holding its intended send time; the echo sends it back, and the response time is the
// reply's read time minus that intended time (coordinated omission corrected, as Loadshear
// measures it). Prints native_response_p50_us, _p99_us, native_lag_p50_us and the count.
// Usage: response_native <port> <sessions> <total rate> <seconds>
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench_time.h"

struct conn { int fd, have; unsigned char buf[4096]; };

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: response_native <port> <sessions> <total rate> <seconds>\n");
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]);
    double rate = atof(argv[3]), seconds = atof(argv[4]);
    if (n < 1 || n > 4096 || rate <= 0 || seconds <= 0) return 2;
    struct conn *conns = calloc((size_t)n, sizeof *conns);
    int ep = epoll_create1(0), tfd = timerfd_create(CLOCK_MONOTONIC, 0), one = 1;
    struct epoll_event te = {.events = EPOLLIN, .data.u32 = (unsigned)n}, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &te);
    for (int i = 0; i < n; i++) {
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        conns[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(conns[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(conns[i].fd, (struct sockaddr *)&to, sizeof to) != 0) {
            perror("response_native: connect");
            return 1;
        }
        struct epoll_event ce = {.events = EPOLLIN, .data.u32 = (unsigned)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ce);
    }
    // Payload k (all sessions, in intended-time order) belongs to session k % n, round k / n.
    double period = 1e9 * n / rate;
    long total = (long)(seconds * rate), next = 0, replies = 0;
    long long origin = now_ns() + 100000000LL, *responses = malloc(sizeof(long long) * total),
              *lags = malloc(sizeof(long long) * total);
    long long last_due = origin + (long long)(period * (double)(total - 1) / n);
    while (replies < total && now_ns() < last_due + 2000000000LL) {
        if (next < total) {
            long long due = origin + (long long)(period * (double)next / n);
            struct itimerspec its = {.it_value = {.tv_sec = due / 1000000000LL, .tv_nsec = due % 1000000000LL}};
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
        int k = epoll_wait(ep, evs, 256, 100);
        long long t = now_ns();
        for (int e = 0; e < k; e++) {
            unsigned i = evs[e].data.u32;
            if (i == (unsigned)n) {
                unsigned long long expirations;
                (void)!read(tfd, &expirations, sizeof expirations);
                continue;
            }
            struct conn *c = &conns[i];
            ssize_t r = read(c->fd, c->buf + c->have, sizeof c->buf - (size_t)c->have);
            if (r <= 0) continue;
            c->have += (int)r;
            int at = 0;
            for (; c->have - at >= 16; at += 16) {
                long long intended;
                memcpy(&intended, c->buf + at + 8, 8);
                if (replies < total) responses[replies++] = t - intended;
            }
            memmove(c->buf, c->buf + at, (size_t)(c->have - at));
            c->have -= at;
        }
        for (t = now_ns(); next < total; next++) {
            long long due = origin + (long long)(period * (double)next / n);
            if (due > t) break;
            unsigned char req[16] = {0, 0, 0, 2, 0, 0, 0, 8};
            memcpy(req + 8, &due, 8);
            if (write(conns[next % n].fd, req, sizeof req) != sizeof req) {
                perror("response_native: write");
                return 1;
            }
            lags[next] = t - due;
        }
    }
    qsort(responses, (size_t)replies, sizeof(long long), by_value);
    qsort(lags, (size_t)next, sizeof(long long), by_value);
    printf("native_replies=%ld\n", replies);
    if (replies > 0) {
        printf("native_response_p50_us=%lld\n", responses[replies / 2] / 1000);
        printf("native_response_p99_us=%lld\n", responses[replies * 99 / 100] / 1000);
    }
    if (next > 0) printf("native_lag_p50_us=%lld\n", lags[next / 2] / 1000);
    return 0;
}
