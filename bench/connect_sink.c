// A reference accept sink for bench/connect.sh: a one-thread epoll TCP server on 127.0.0.1
// that accepts as fast as it can (accept4 in a loop until EAGAIN on every wake-up), keeps
// every connection open, and reads and discards whatever arrives (at most a few reads per
// wake-up, so one busy connection cannot starve accept). A connection is closed when the
// peer closes or resets it. The backlog asked for is 65535; the kernel caps it at
// net.core.somaxconn (4096 here). With ADDRESSES > 1 it listens on 127.0.0.1 to
// 127.0.0.ADDRESSES on one port: one client has ~14k fast ephemeral ports per destination
// (Linux tries the even half of ip_local_port_range first), so 15,000 sessions need two.
// Usage: connect_sink [port [addresses]]; prints "port N", and on SIGINT or SIGTERM
// "accepted=N open=N" before it exits.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int addresses = argc > 2 ? atoi(argv[2]) : 1;
    if (addresses < 1 || addresses > 254) addresses = 1;
    int ep = epoll_create1(0), one = 1;
    int ls_first = -1, ls_last = -1;
    for (int k = 0; k < addresses; k++) {
        int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {
            .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001 + k)};
        if (bind(ls, (void *)&a, sizeof a) || listen(ls, 65535)) { perror("listen"); return 1; }
        socklen_t alen = sizeof a;
        getsockname(ls, (void *)&a, &alen);
        port = ntohs(a.sin_port);  // the others take the port the first one got
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
        epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
        if (ls_first < 0) ls_first = ls;
        ls_last = ls;  // listening sockets are ls_first..ls_last (made in a row, nothing in between)
    }
    printf("port %d\n", port);
    fflush(stdout);
    struct sigaction sa = {.sa_handler = on_signal};  // no SA_RESTART: epoll_wait returns EINTR
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct epoll_event evs[512];
    static char buf[65536];
    long accepted = 0, open = 0;
    while (!stop) {
        int n = epoll_wait(ep, evs, 512, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd >= ls_first && fd <= ls_last) {
                int c;
                while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                    accepted++;
                    open++;
                }
                if (errno == EMFILE || errno == ENFILE) perror("accept4");
                continue;
            }
            // Bounded reads per wake-up; level-triggered, so the rest comes next time.
            for (int r = 0; r < 4; r++) {
                ssize_t k = read(fd, buf, sizeof buf);
                if (k > 0) continue;
                if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
                    close(fd);  // also leaves the epoll set
                    open--;
                }
                break;
            }
        }
    }
    printf("accepted=%ld open=%ld\n", accepted, open);
    return 0;
}
