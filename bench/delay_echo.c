// A reference server for bench/response.sh: a one-thread epoll TCP echo that sends each
// read back DELAY_US microseconds after it arrived, woken by an absolute timerfd with the
// timer slack set to 1 ns (no spinning, so it leaves the CPU to the client), so the true
// service time is known to a few microseconds and the client's response-time figure can be
// judged against it. It also measures what it truly served: each reply's write time minus
// its request's arrival, in 1 µs buckets; SIGUSR1 prints "service p50_us P p99_us Q
// replies N" for the replies since the last SIGUSR1 and starts afresh. So the client's
// error can be judged against the service time the server really gave (on a loaded 2-core
// machine its timer wakes late too), not only against the nominal delay.
// Usage: delay_echo <port> <delay_us>; prints "port N".
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
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

#include "bench_time.h"
#include "loopback_listen.h"

#define QUEUE (1 << 20)
struct pending { long long due; int fd; int len; char data[64]; };
static struct pending queue[QUEUE];
static long head, tail;
static long long arrived[QUEUE];

#define BUCKETS 100001  // 1 µs each up to 100 ms; the last holds everything longer
static long long served[BUCKETS], served_count;
static volatile sig_atomic_t report_wanted;
static void on_usr1(int sig) { (void)sig; report_wanted = 1; }

static long long percentile(double q) {
    long long rank = (long long)(q * (double)served_count + 0.999999), seen = 0;
    for (int i = 0; i < BUCKETS; i++) if ((seen += served[i]) >= rank && rank > 0) return i;
    return 0;
}

static void report(void) {
    printf("service p50_us %lld p99_us %lld replies %lld\n", percentile(0.5), percentile(0.99), served_count);
    fflush(stdout);
    memset(served, 0, sizeof served);
    served_count = 0;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    long long delay = (argc > 2 ? atoll(argv[2]) : 1000) * 1000LL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int ls = loopback_listen(port), one = 1;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    // SIGUSR1 is blocked except inside epoll_pwait, so it always interrupts the wait and
    // none arrives unseen while events are handled.
    sigset_t usr1, waiting;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &waiting);
    sigdelset(&waiting, SIGUSR1);
    int ep = epoll_create1(0), tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, te = {.events = EPOLLIN, .data.fd = tfd}, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &te);
    long long armed = 0;
    for (;;) {
        int n = epoll_pwait(ep, evs, 256, -1, &waiting);
        if (report_wanted) { report_wanted = 0; report(); }
        if (n < 0) continue;  // EINTR: the report's signal
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
                arrived[tail % QUEUE] = t;
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
            long long written = now_ns(), us = (written - arrived[head % QUEUE]) / 1000;
            struct pending *p = &queue[head++ % QUEUE];
            (void)!write(p->fd, p->data, (size_t)p->len);
            served[us < BUCKETS - 1 ? us : BUCKETS - 1]++;
            served_count++;
        }
        if (head != tail && armed != queue[head % QUEUE].due) {
            armed = queue[head % QUEUE].due;
            struct itimerspec its = {.it_value = {.tv_sec = armed / 1000000000LL, .tv_nsec = armed % 1000000000LL}};
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
    }
}
