// Shared by the bench's reference servers: a non-blocking TCP listener on 127.0.0.1:port
// (0 for a free one), with "port N" printed once it listens, for the scripts to read.
#ifndef LOOPBACK_LISTEN_H
#define LOOPBACK_LISTEN_H
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

static int loopback_listen(int port) {
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    if (bind(ls, (void *)&a, sizeof a) || listen(ls, 4096)) { perror("listen"); exit(1); }
    socklen_t alen = sizeof a;
    getsockname(ls, (void *)&a, &alen);
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    return ls;
}
#endif
