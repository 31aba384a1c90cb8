// A reference server for bench/handler.sh: a one-thread epoll heartbeat server for
// closed-loop request/response. Each connection gets a ping frame (8-byte header: type 1
// big-endian, body length big-endian; then a 16-byte body); every complete pong (type 2)
// it reads is answered with the next ping, so each connection has one request in flight.
// It counts round trips and prints "round_trips N" when stopped with SIGINT or SIGTERM.
// Usage: rr_server [port]; prints "port N" once listening.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loopback_listen.h"

#define BODY 16
#define FRAME (8 + BODY)
#define MAXFD 65536
static unsigned char inbuf[MAXFD][FRAME];
static int have[MAXFD];
static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

static void ping(int fd) {
    unsigned char f[FRAME] = {0, 0, 0, 1, 0, 0, 0, BODY};
    for (int i = 0; i < BODY; i++) f[8 + i] = (unsigned char)i;
    if (write(fd, f, FRAME) < 0 && errno != EAGAIN) close(fd);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0, one = 1;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    int ls = loopback_listen(port);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    long long trips = 0;
    unsigned char buf[65536];
    while (!stop) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= MAXFD) { close(c); continue; }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    have[c] = 0;
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                    ping(c);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
                continue;
            }
            for (ssize_t k = 0; k < r; k++) {
                inbuf[fd][have[fd]++] = buf[k];
                if (have[fd] == FRAME) {
                    have[fd] = 0;
                    if (inbuf[fd][3] == 2) { trips++; ping(fd); }
                }
            }
        }
    }
    printf("round_trips %lld\n", trips);
    return 0;
}
