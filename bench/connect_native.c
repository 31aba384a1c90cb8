// The baseline for bench/connect.sh: a plain one-thread nonblocking connect loop, the least
// a client has to do to open N TCP connections. Each socket is made nonblocking
// (SOCK_NONBLOCK), connect()ed, and registered with epoll for EPOLLOUT|EPOLLONESHOT (no
// second epoll_ctl to take it out); at most W connects are in flight. A completion is
// checked with SO_ERROR. The rate runs from the first socket() to the last completion.
// The connections are then held for HOLD_MS and closed (timed too); with "reset" they are
// closed with SO_LINGER 0 (an RST, no TIME_WAIT left to slow the next run's connects).
// With ADDRESSES > 1, socket i connects to 127.0.0.(1 + i % ADDRESSES), as Loadshear spreads
// sessions over ENDPOINTS.
// Usage: connect_native <port> <sessions> <window> [hold_ms [fin|reset [addresses]]];
// prints key=value:
// native_connected, native_failed, native_seconds, native_connect_per_s, native_close_seconds.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: connect_native <port> <sessions> <window> [hold_ms [fin|reset [addresses]]]\n");
        return 64;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]), window = atoi(argv[3]);
    int hold_ms = argc > 4 ? atoi(argv[4]) : 0;
    int reset = argc > 5 && strcmp(argv[5], "reset") == 0;
    int addresses = argc > 6 ? atoi(argv[6]) : 1;
    if (addresses < 1) addresses = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int *fds = calloc(n, sizeof *fds);
    int ep = epoll_create1(0);
    struct epoll_event evs[1024];
    int next = 0, in_flight = 0, connected = 0, failed = 0, first_error = 0;
    double t0 = now_s(), t_last = t0;
    while (connected + failed < n) {
        while (in_flight < window && next < n) {
            int i = next++;
            int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            fds[i] = s;
            if (s < 0) { failed++; if (!first_error) first_error = errno; continue; }
            a.sin_addr.s_addr = htonl(0x7f000001 + i % addresses);
            if (connect(s, (void *)&a, sizeof a) == 0) { connected++; t_last = now_s(); continue; }
            if (errno != EINPROGRESS) {
                failed++;
                if (!first_error) first_error = errno;
                close(s);
                fds[i] = -1;
                continue;
            }
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT, .data.u32 = (unsigned)i};
            epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
            in_flight++;
        }
        if (in_flight == 0) continue;
        int k = epoll_wait(ep, evs, 1024, 5000);
        if (k <= 0) { fprintf(stderr, "connect_native: no completion in 5 s\n"); break; }
        for (int j = 0; j < k; j++) {
            int i = (int)evs[j].data.u32, err = 0;
            socklen_t len = sizeof err;
            getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &len);
            in_flight--;
            if (err) {
                failed++;
                if (!first_error) first_error = err;
                close(fds[i]);
                fds[i] = -1;
            } else {
                connected++;
            }
        }
        t_last = now_s();
    }
    double secs = t_last - t0;
    if (hold_ms > 0) usleep(hold_ms * 1000);
    double c0 = now_s();
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    for (int i = 0; i < next; i++) {
        if (fds[i] < 0) continue;
        if (reset) setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fds[i]);
    }
    double close_secs = now_s() - c0;
    printf("native_connected=%d\n", connected);
    printf("native_failed=%d\n", failed);
    if (first_error) printf("native_first_error=%s\n", strerror(first_error));
    printf("native_seconds=%.4f\n", secs);
    printf("native_connect_per_s=%.0f\n", secs > 0 ? connected / secs : 0);
    printf("native_close_seconds=%.4f\n", close_secs);
    return failed ? 1 : 0;
}
