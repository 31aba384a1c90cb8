// A native reference for bench/pace.sh: the same paced load with no runtime at all.
// THREADS threads share SESSIONS TCP connections (contiguous blocks); every session writes
// an 8-byte payload RATE times a second for SECONDS, session g of n staggered g/n of a
// period, exactly as PACE schedules it. Each thread walks its sessions' payloads in
// intended-time order, sleeping (then spinning the last 20 µs) until each is due, and
// records lag = write start − intended time. Prints key=value lines like the bench.
// Usage: pace_native <port> <sessions> <rate> <seconds> <threads>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_time.h"

static int port, sessions;
static double rate, seconds;
static long long origin;

struct worker {
    int lo, hi;
    long long *lags;
    long count;
};

static void *work(void *arg) {
    struct worker *w = arg;
    int k = w->hi - w->lo;
    int *fds = malloc(sizeof(int) * k);
    for (int i = 0; i < k; i++) {
        int one = 1;
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&to, sizeof to) != 0) {
            perror("pace_native: connect");
            exit(1);
        }
    }
    double period = 1e9 / rate;
    long rounds = (long)(seconds * rate);
    w->lags = malloc(sizeof(long long) * rounds * k);
    for (long j = 0; j < rounds; j++) {
        for (int i = 0; i < k; i++) {
            long long due = origin + (long long)(period * (w->lo + i) / sessions + period * j);
            long long now = now_ns();
            while (now < due) {
                if (due - now > 50000) {
                    struct timespec nap = {0, due - now - 20000};
                    nanosleep(&nap, NULL);
                }
                now = now_ns();
            }
            if (write(fds[i], "ping0123", 8) != 8) {
                perror("pace_native: write");
                exit(1);
            }
            w->lags[w->count++] = now - due;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: pace_native <port> <sessions> <rate> <seconds> <threads>\n");
        return 2;
    }
    port = atoi(argv[1]);
    sessions = atoi(argv[2]);
    rate = atof(argv[3]);
    seconds = atof(argv[4]);
    int threads = atoi(argv[5]);
    if (threads < 1 || threads > 64) return 2;
    struct worker workers[64] = {0};
    pthread_t ids[64];
    origin = now_ns() + 3000000000LL;  // leaves time for every connect
    for (int t = 0; t < threads; t++) {
        workers[t].lo = sessions * t / threads;
        workers[t].hi = sessions * (t + 1) / threads;
        pthread_create(&ids[t], NULL, work, &workers[t]);
    }
    long total = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        total += workers[t].count;
    }
    long long *all = malloc(sizeof(long long) * total);
    long at = 0;
    for (int t = 0; t < threads; t++) {
        memcpy(all + at, workers[t].lags, sizeof(long long) * workers[t].count);
        at += workers[t].count;
    }
    qsort(all, total, sizeof(long long), by_value);
    printf("native_payloads=%ld\n", total);
    printf("native_lag_p50_us=%lld\n", all[total / 2] / 1000);
    printf("native_lag_p99_us=%lld\n", all[total * 99 / 100] / 1000);
    printf("native_lag_max_us=%lld\n", all[total - 1] / 1000);
    return 0;
}
