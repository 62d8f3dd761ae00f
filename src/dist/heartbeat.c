/* src/dist/heartbeat.c -- the watchdog that turns a lost rank or a stuck collective into a
 * prompt, named failure instead of a hung job.
 *
 * Every rank binds a UDP socket and exchanges its addresses (its up, non-loopback IPv4
 * addresses, or 127.0.0.1 when it has none) with all ranks. A thread then sends a 16-byte
 * heartbeat {magic, rank, job token} once a second to the peers it watches (all ranks in jobs
 * of up to 64, else its ring neighbours rank - 1 and rank + 1) and records when it last heard
 * from each. Peers on the same host are reached over loopback. A peer silent for
 * opts.timeout_s has crashed, hung hard, or been cut off the network: the thread reports it
 * through opts.on_fault naming the rank and host. It also ends the job when a collective call has
 * blocked longer than opts.collective_timeout_s (a rank alive but stuck). Heartbeats run on their
 * own thread, so long computation or I/O on the main thread never looks like a lost peer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dist/dist.h"
#include "moka/log.h"

#define MAX_ADDRS 4
#define MAGIC 0x4d4b4842u /* "MKHB" */
#define SEND_EVERY_NS 1000000000LL
#define POLL_MS 200
#define FULL_MESH_MAX 64

typedef struct {
    uint32_t addr[MAX_ADDRS]; /* network byte order */
    int32_t naddr;
    uint16_t port; /* network byte order */
    uint16_t pad;
} peer_addr;

typedef struct {
    uint32_t magic, rank;
    uint64_t token;
} packet;

struct moka_heartbeat {
    moka_dist *d;
    int fd;
    uint64_t token;
    peer_addr *peers; /* d->size */
    int *watch, nwatch;
    int64_t *last_ns; /* d->size, touched only by the thread */
    atomic_bool stop;
    bool started;
    pthread_t thread;
};

static int local_addrs(uint32_t *out)
{
    struct ifaddrs *ifa = NULL;
    int n = 0;
    if (getifaddrs(&ifa) == 0) {
        for (struct ifaddrs *i = ifa; i && n < MAX_ADDRS; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
            if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
            out[n++] = ((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr.s_addr;
        }
        freeifaddrs(ifa);
    }
    if (n == 0) out[n++] = htonl(INADDR_LOOPBACK);
    return n;
}

static void send_all(moka_heartbeat *hb)
{
    const moka_dist *d = hb->d;
    const packet p = {MAGIC, (uint32_t)d->rank, hb->token};
    for (int w = 0; w < hb->nwatch; w++) {
        const int r = hb->watch[w];
        const peer_addr *pa = &hb->peers[r];
        struct sockaddr_in to;
        memset(&to, 0, sizeof to);
        to.sin_family = AF_INET;
        to.sin_port = pa->port;
        if (strcmp(d->hosts[r], d->hosts[d->rank]) == 0) {
            to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            (void)sendto(hb->fd, &p, sizeof p, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to);
            continue;
        }
        for (int a = 0; a < pa->naddr && a < MAX_ADDRS; a++) {
            to.sin_addr.s_addr = pa->addr[a];
            (void)sendto(hb->fd, &p, sizeof p, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to);
        }
    }
}

static void receive_all(moka_heartbeat *hb, int64_t now)
{
    for (;;) {
        packet p;
        const ssize_t n = recv(hb->fd, &p, sizeof p, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (n != (ssize_t)sizeof p || p.magic != MAGIC || p.token != hb->token) continue;
        if (p.rank < (uint32_t)hb->d->size) hb->last_ns[p.rank] = now;
    }
}

static void fault(moka_heartbeat *hb, const char *msg)
{
    moka_dist *d = hb->d;
    if (d->opts.on_fault) d->opts.on_fault(msg, d->opts.fault_user);
    moka_logf(MOKA_LOG_ERROR, "dist", "%s", msg);
    moka_transport_abort(d, 1);
}

static void *run(void *arg)
{
    moka_heartbeat *hb = arg;
    moka_dist *d = hb->d;
    const int64_t timeout_ns = (int64_t)(d->opts.timeout_s * 1e9);
    const int64_t coll_ns = (int64_t)(d->opts.collective_timeout_s * 1e9);
    int64_t next_send = 0;
    const int64_t t0 = moka_dist_now_ns();
    for (int w = 0; w < hb->nwatch; w++) hb->last_ns[hb->watch[w]] = t0;
    while (!atomic_load(&hb->stop)) {
        int64_t now = moka_dist_now_ns();
        if (now >= next_send) {
            send_all(hb);
            next_send = now + SEND_EVERY_NS;
        }
        struct pollfd pfd = {hb->fd, POLLIN, 0};
        (void)poll(&pfd, 1, POLL_MS);
        now = moka_dist_now_ns();
        receive_all(hb, now);
        if (atomic_load(&hb->stop)) break;
        char msg[512];
        for (int w = 0; w < hb->nwatch; w++) {
            const int r = hb->watch[w];
            const double silent = (double)(now - hb->last_ns[r]) * 1e-9;
            if (now - hb->last_ns[r] > timeout_ns) {
                snprintf(msg, sizeof msg,
                         "rank %d lost rank %d on host %s: no heartbeat for %.0f s (the process "
                         "or node crashed, or the node is cut off the network); ending the job",
                         d->rank, r, d->hosts[r], silent);
                fault(hb, msg);
                return NULL;
            }
        }
        const int64_t busy = atomic_load(&d->busy_since_ns);
        if (busy > 0 && now - busy > coll_ns) {
            snprintf(msg, sizeof msg,
                     "rank %d on host %s: %s blocked for %.0f s (another rank is alive but "
                     "stuck); ending the job",
                     d->rank, d->hosts[d->rank], d->busy_what, (double)(now - busy) * 1e-9);
            fault(hb, msg);
            return NULL;
        }
    }
    return NULL;
}

static void free_hb(moka_heartbeat *hb)
{
    if (hb->fd >= 0) close(hb->fd);
    free(hb->peers);
    free(hb->watch);
    free(hb->last_ns);
    free(hb);
}

moka_status moka_heartbeat_start(moka_dist *d, moka_heartbeat **out, moka_err *err)
{
    *out = NULL;
    moka_heartbeat *hb = calloc(1, sizeof *hb);
    if (!hb) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    hb->d = d;
    hb->fd = -1;
    hb->peers = calloc((size_t)d->size, sizeof *hb->peers);
    hb->watch = calloc((size_t)d->size, sizeof *hb->watch);
    hb->last_ns = calloc((size_t)d->size, sizeof *hb->last_ns);
    if (!hb->peers || !hb->watch || !hb->last_ns) {
        free_hb(hb);
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    }
    /* Every rank takes part in the exchanges below even when its socket failed, so that no rank
     * is left waiting; the failure is reported afterwards. */
    moka_status st = MOKA_OK;
    peer_addr me;
    memset(&me, 0, sizeof me);
    hb->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    socklen_t len = sizeof sa;
    if (hb->fd < 0 || bind(hb->fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(hb->fd, (struct sockaddr *)&sa, &len) != 0)
        st = moka_errf(err, MOKA_ERR_IO, "rank %d: cannot open the heartbeat socket: %s", d->rank,
                       strerror(errno));
    me.port = sa.sin_port;
    me.naddr = local_addrs(me.addr);
    uint64_t token = (uint64_t)moka_dist_now_ns() ^ ((uint64_t)getpid() << 32);
    moka_err e2;
    moka_status st2 = moka_transport_broadcast(d, &token, sizeof token, &e2);
    if (st2 == MOKA_OK) st2 = moka_transport_allgather(d, &me, hb->peers, sizeof me, &e2);
    if (st2 != MOKA_OK && st == MOKA_OK) {
        st = st2;
        if (err) *err = e2;
    }
    if (st != MOKA_OK) {
        free_hb(hb);
        return st;
    }
    hb->token = token;
    if (d->size <= FULL_MESH_MAX) {
        for (int r = 0; r < d->size; r++)
            if (r != d->rank) hb->watch[hb->nwatch++] = r;
    } else {
        hb->watch[hb->nwatch++] = (d->rank + d->size - 1) % d->size;
        hb->watch[hb->nwatch++] = (d->rank + 1) % d->size;
    }
    atomic_init(&hb->stop, false);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    const int rc = pthread_create(&hb->thread, NULL, run, hb);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        free_hb(hb);
        return moka_errf(err, MOKA_ERR_NOMEM, "cannot start the heartbeat thread: %s",
                         strerror(rc));
    }
    hb->started = true;
    *out = hb;
    return MOKA_OK;
}

void moka_heartbeat_stop(moka_heartbeat *hb)
{
    if (!hb) return;
    atomic_store(&hb->stop, true);
    if (hb->started) pthread_join(hb->thread, NULL);
    free_hb(hb);
}
