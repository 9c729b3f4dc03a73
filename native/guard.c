/* Surviving a shared-memory file that shrinks or disappears under its mapping.
 *
 * Why a SIGBUS handler: a read or write of a mapped page past the end of its file raises SIGBUS,
 * whoever does it: our C copies, a numpy view of the mapping, the GL upload reading it, the Scream
 * reader's Python code. Checking the file size before each access cannot close the window between
 * the check and the access (the guest side or a `truncate` can shrink it at any moment), and sealing
 * (memfd F_SEAL_SHRINK) only works for files we create, not for the /dev/shm file QEMU or
 * tmpfiles.d made. So every mapping is registered in a small fixed table, and one process-wide handler
 * looks the fault address (si_addr) up: inside a registered range it maps anonymous zero pages over
 * that whole range (MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS), which makes the faulting access
 * complete (it now reads zeros) for every reader, marks the range lost and returns. The owner checks
 * the flag (and the file's size, a cheap early check) and drops the mapping. A fault outside every
 * range goes to the handler that was there before (Python's faulthandler, pytest's) or the default
 * action, so real crashes still crash.
 *
 * The handler only reads the table (atomics), calls mmap (a plain system call on Linux) and sets a
 * flag: nothing that takes a lock or allocates.
 */
#include "kv_internal.h"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUARD_SLOTS 64

struct guard_slot {
    uintptr_t start;            /* page-aligned */
    uint64_t  len;              /* whole pages */
    uint32_t  used;             /* atomic */
    uint32_t  lost;             /* atomic */
};

static struct guard_slot slots[GUARD_SLOTS];
static struct sigaction previous;
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    if (si->si_code > 0) {   /* a fault, not a kill(): si_addr is meaningful */
        for (int i = 0; i < GUARD_SLOTS; ++i) {
            struct guard_slot *s = &slots[i];
            if (!__atomic_load_n(&s->used, __ATOMIC_ACQUIRE))
                continue;
            uintptr_t start = __atomic_load_n(&s->start, __ATOMIC_RELAXED);
            uint64_t len = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
            if (a < start || a - start >= len)
                continue;
            void *r = mmap((void *)start, len, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (r == MAP_FAILED)
                break;   /* cannot repair: let the previous handler or the default action have it */
            __atomic_store_n(&s->lost, 1, __ATOMIC_RELEASE);
            return;   /* the faulting access is retried and now completes on zero pages */
        }
    }
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction) {
            previous.sa_sigaction(sig, si, uc);
            return;
        }
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    /* Default action: for a fault, returning re-executes the access, which faults again and now
     * terminates the process as it would have without us; a sent SIGBUS is raised again. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGBUS, &dfl, NULL);
    if (si->si_code <= 0)
        raise(sig);
}

/* Install the handler, or put it back in front when something (e.g. faulthandler enabled after us)
 * replaced it; whatever was there becomes the handler we chain to. Caller holds table_mu. */
static void ensure_handler(void)
{
    struct sigaction cur;
    if (sigaction(SIGBUS, NULL, &cur) != 0)
        return;
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    previous = cur;
    sigaction(SIGBUS, &sa, NULL);
}

int kv_guard_add(const void *addr, uint64_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t pg = page > 0 ? (uintptr_t)page : 4096u;
    uintptr_t start = (uintptr_t)addr & ~(pg - 1);
    uint64_t end = ((uint64_t)(uintptr_t)addr + len + pg - 1) & ~((uint64_t)pg - 1);
    if (!addr || !len)
        return -1;
    pthread_mutex_lock(&table_mu);
    ensure_handler();
    int id = -1;
    for (int i = 0; i < GUARD_SLOTS; ++i) {
        if (!__atomic_load_n(&slots[i].used, __ATOMIC_ACQUIRE)) {
            __atomic_store_n(&slots[i].start, start, __ATOMIC_RELAXED);
            __atomic_store_n(&slots[i].len, end - start, __ATOMIC_RELAXED);
            __atomic_store_n(&slots[i].lost, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&slots[i].used, 1, __ATOMIC_RELEASE);
            id = i;
            break;
        }
    }
    pthread_mutex_unlock(&table_mu);
    return id;
}

void kv_guard_remove(int id)
{
    if (id < 0 || id >= GUARD_SLOTS)
        return;
    pthread_mutex_lock(&table_mu);
    __atomic_store_n(&slots[id].used, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&table_mu);
}

int kv_guard_lost(int id)
{
    if (id < 0 || id >= GUARD_SLOTS)
        return 0;
    return (int)__atomic_load_n(&slots[id].lost, __ATOMIC_ACQUIRE);
}
