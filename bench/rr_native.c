// The native client bench/handler.sh measures Loadshear against: no WASM, one thread,
// epoll. It opens N connections to the heartbeat server (rr_server.c) and answers every
// ping frame with a pong frame carrying the same body, one write per reply, as the
// heartbeat handler does, for S seconds. Prints "round_trips N" and "cpu_seconds X".
// Usage: rr_native <port> <connections> <seconds>
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEADER 8
#define MAXFD 65536
static unsigned char frame[MAXFD][4096 + HEADER];
static int have[MAXFD];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: rr_native port connections seconds\n"); return 64; }
    int port = atoi(argv[1]), conns = atoi(argv[2]), one = 1;
    double seconds = atof(argv[3]);
    int ep = epoll_create1(0);
    for (int i = 0; i < conns; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
        if (connect(s, (void *)&a, sizeof a)) { perror("connect"); return 1; }
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
        epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    }
    long long trips = 0;
    struct epoll_event evs[256];
    unsigned char buf[65536];
    double end = now() + seconds;
    while (now() < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) { epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL); continue; }
            for (ssize_t k = 0; k < r;) {
                unsigned char *f = frame[fd];
                int need = HEADER;
                if (have[fd] >= HEADER) {
                    int len = (f[4] << 24) | (f[5] << 16) | (f[6] << 8) | f[7];
                    need = HEADER + (len > 4096 ? 4096 : len);
                }
                int take = need - have[fd];
                if (take > r - k) take = (int)(r - k);
                memcpy(f + have[fd], buf + k, take);
                have[fd] += take;
                k += take;
                if (have[fd] == need && need > HEADER) {
                    if (f[3] == 1) {
                        f[3] = 2;
                        if (write(fd, f, need) < 0) { perror("write"); return 1; }
                        trips++;
                    }
                    have[fd] = 0;
                } else if (have[fd] == need && need == HEADER) {
                    int len = (f[4] << 24) | (f[5] << 16) | (f[6] << 8) | f[7];
                    if (len == 0) { have[fd] = 0; }
                }
            }
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("round_trips %lld\n", trips);
    printf("cpu_seconds %.3f\n", ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    return 0;
}
