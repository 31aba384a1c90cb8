// A reference server for bench/response.sh: a one-thread epoll TCP echo that sends each
// read back DELAY_US microseconds after it arrived, woken by an absolute timerfd with the
// timer slack set to 1 ns (no spinning, so it leaves the CPU to the client), so the true
// service time is known to a few microseconds and the client's response-time figure can be
// judged against it. Usage: delay_echo <port> <delay_us>; prints "port N".
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loopback_listen.h"

#define QUEUE (1 << 20)
struct pending { long long due; int fd; int len; char data[64]; };
static struct pending queue[QUEUE];
static long head, tail;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    long long delay = (argc > 2 ? atoll(argv[2]) : 1000) * 1000LL;
    int ls = loopback_listen(port), one = 1;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    int ep = epoll_create1(0), tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, te = {.events = EPOLLIN, .data.fd = tfd}, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &te);
    long long armed = 0;
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        long long t = now_ns();
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == tfd) {
                unsigned long long expirations;
                (void)!read(tfd, &expirations, sizeof expirations);
                armed = 0;
                continue;
            }
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            char buf[64];
            ssize_t r;
            while ((r = read(fd, buf, sizeof buf)) > 0) {
                struct pending *p = &queue[tail++ % QUEUE];
                p->due = t + delay;
                p->fd = fd;
                p->len = (int)r;
                memcpy(p->data, buf, (size_t)r);
            }
            if (r == 0 || (r < 0 && errno != EAGAIN)) { epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL); close(fd); }
        }
        // Send what is due; arm the timer for the next one.
        t = now_ns();
        while (head != tail && queue[head % QUEUE].due <= t) {
            struct pending *p = &queue[head++ % QUEUE];
            (void)!write(p->fd, p->data, (size_t)p->len);
        }
        if (head != tail && armed != queue[head % QUEUE].due) {
            armed = queue[head % QUEUE].due;
            struct itimerspec its = {.it_value = {.tv_sec = armed / 1000000000LL, .tv_nsec = armed % 1000000000LL}};
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
    }
}
