/* The thread pool of every intrt kernel: persistent workers, the calling thread works too.

   intrt_pool_run(fn, ctx, ntasks, threads) calls fn(ctx, task, slot) once for every task in 0 .. ntasks - 1
   and returns when all have finished. `slot` is 0 on the calling thread and 1 .. threads - 1 on the workers
   that joined this job, so a kernel can give each slot its own scratch memory. Tasks are claimed one by one
   from a shared ticket, so a worker that the OS does not schedule (another process holds the core) just
   claims nothing: the calling thread runs the remaining tasks itself and never waits for a thread that has
   not started. It waits only for tasks already running.

   Locality: the calling thread claims tasks from the front (0, 1, 2, ...) and workers from the back
   (ntasks - 1, ntasks - 2, ...), so with two threads each keeps one end of every layer: kernels number tasks
   in memory order (images, rows), and the rows a thread wrote in one layer are mostly the rows it reads in
   the next, still in its own core's cache. Jobs of more than 65535 tasks claim from the front only.

   Waiting: a worker spins for a short, bounded time after each job (INTRT_POOL_SPIN_NS, so the next layer
   finds it awake), then sleeps on a condition variable; never an unbounded spin. While a model runs (between
   intrt_pool_hold(1) and intrt_pool_hold(0): a StepList) it spins up to INTRT_POOL_HOLD_NS instead: layers too
   small for threads run on the caller alone between two parallel ones, and a worker that went to sleep in such
   a gap is woken by the next parallel layer only after tens of microseconds in some virtual machines, when the
   caller has done most of that layer alone (MobileNetV2-0.35 batch 16, 2 threads on the AMD EPYC of the README:
   2.7 ms with 50 us spins, as one thread, and 1.7 ms while holding). After a run, the INTRT_POOL_SPIN_NS count
   from the run's end, not from the worker's last job: back-to-back runs find it up. Not while the pool runs
   jobs alone (see "Contention"). The caller likewise spins briefly for running tasks and then sleeps until the
   last one signals.

   Contention: when another process holds the cores, a worker can be descheduled in the middle of a task, and
   the caller then waits for it; a job split over threads can take longer than the caller alone would have.
   The caller times each parallel job (its own share of the tasks gives the time per task) and, when the job
   took clearly longer than running every task itself would have (INTRT_POOL_LOSS_RATIO, and at least
   INTRT_POOL_JOIN_NS more), or when it ran every task of a job longer than INTRT_POOL_JOIN_NS itself although
   its workers were awake (no worker got a core in time: waking and spinning workers then only take CPU time
   from it; workers it had to wake from sleep are not judged, they may just not be up yet) INTRT_POOL_STRIKES
   times in a row, runs the next `serial_left` jobs alone (no worker woken, so none spins) before trying threads
   again; the count doubles with every consecutive loss (8 .. INTRT_POOL_MAX_BACKOFF jobs) and starts over
   after a job that gained. One lost job is no evidence: in a virtual machine a polling thread misses about
   one job in 500-5000 by 20-190 us although nothing else runs (the host takes its CPU; measured on the AMD
   EPYC of the README), and falling back on each such miss ran MobileNetV2-0.35 batch 16 and the hand model
   with two threads at the speed of one (benchmarks/compare.py: 1700-2800 of their jobs alone in 15 rounds).
   Beside a CPU-bound process nearly every job misses, so the second strike follows at once.
   CPU share: most jobs do not stall outright, yet with more runnable threads than cores the workers, running
   and polling between jobs, take CPU time from the caller. Beside a CPU-bound process (benchmarks/compare.py
   --contend, 2 vCPUs) two threads took 1.13x (MobileNetV2-0.35 batch 16) and 1.35x (a 224x224 hand landmark
   model) of one thread's time with few jobs judged lost. So the caller also samples its own thread CPU time over
   some jobs; when it got less than INTRT_POOL_MIN_SHARE of a CPU while it had work (INTRT_POOL_STRIKES windows in
   a row, for the same reason), it runs alone for a count of jobs that doubles with every starved window and
   halves with every window that was not (there: 0.95x and 1.04x).
   Only speed depends on this: tasks write disjoint outputs, so results never depend on how they are split.

   One job runs at a time. A caller that finds the pool busy (another Python thread running a model)
   runs its tasks alone on its own thread: results never depend on how tasks are split, only speed does.

   Without pthreads (e.g. MSVC) the same function runs every task on the calling thread.

   Sharing a CPU: Linux often wakes a sleeping worker on the CPU of the thread that woke it (the caller), and a
   busy caller then keeps it queued there, for milliseconds, while another CPU is idle: the caller ran every
   task of most jobs alone, and two threads were no faster than one (in 2-vCPU virtual machines; a log of the
   lost jobs of benchmarks/compare.py showed the worker last on the caller's CPU in 33 of 35). The caller
   publishes its CPU with every job; a worker that finds itself on it (when it gets a slice there, or while
   polling) moves off it by leaving that CPU out of its affinity for one moment and then allowing every CPU it
   had again, so the OS can still place it anywhere later (Linux; at most once per INTRT_POOL_MOVE_NS).

   Posting a job takes no lock: the caller writes the job's fields and then the generation that spinning
   workers poll; the mutex and condition variable only wake workers that went to sleep.

   Stale workers: a worker reads the job after its generation and then claims tasks with a compare-and-swap on a
   64-bit ticket (generation << 32 | first << 16 | end: tasks first .. end - 1 are left; or, past 65535 tasks,
   generation << 32 | next task), so a worker that was descheduled between two jobs can never claim a task of
   a later job with the function of an earlier one. */
#ifndef INTRT_THREADPOOL_H
#define INTRT_THREADPOOL_H

#include <stdint.h>

typedef void (*intrt_task_fn)(void *ctx, int64_t task, int slot);

#if !defined(_MSC_VER) && !defined(INTRT_NO_THREADS) && (defined(__unix__) || defined(__APPLE__)) && \
    !defined(__STDC_NO_ATOMICS__)
#define INTRT_HAVE_POOL 1
#else
#define INTRT_HAVE_POOL 0
#endif

#define INTRT_POOL_MAX_THREADS 64
/* jobs of at most this many tasks are claimed from both ends (see "Locality") */
#define INTRT_POOL_TWO_ENDED_MAX 0xffff
/* jobs run on the caller alone after parallel jobs kept losing (see "Contention" above) */
#define INTRT_POOL_MIN_BACKOFF 8
#define INTRT_POOL_MAX_BACKOFF 4096
/* lost jobs (or starved windows) in a row that make a loss */
#define INTRT_POOL_STRIKES 2
/* CPU share: every INTRT_POOL_SHARE_EVERY-th parallel job, the caller's thread CPU time is read before and after
   (a system call: about 0.6 us each on the AMD EPYC of the README); when the jobs sampled over INTRT_POOL_SHARE_WINDOW_NS of wall
   time got less than INTRT_POOL_MIN_SHARE of a CPU, the caller was descheduled while its workers ran or spun:
   more runnable threads than cores. That is a loss even when no single job stalled. */
#define INTRT_POOL_SHARE_EVERY 4
#define INTRT_POOL_SHARE_WINDOW_NS 200000
#define INTRT_POOL_MIN_SHARE 0.8
/* a job "lost" when it took this many times longer than the caller alone would have, and INTRT_POOL_JOIN_NS
   more: a clear stall, not the unevenness of tasks, a worker's cold cache or the cost of posting a short job */
#define INTRT_POOL_LOSS_RATIO 1.5
/* a job that no worker joined counts as lost only past this long: a polling worker starts within a few
   microseconds, so a shorter job may simply have ended first */
#define INTRT_POOL_JOIN_NS 20000

/* The rule of "Contention" for one parallel job (1: lost): it took `took_ns`; the caller alone would have
   taken `alone_ns`; `caller_ran_all`: no worker took a task; `woken`: the workers were asleep when it was
   posted. */
static inline int intrt_pool_job_lost(double took_ns, double alone_ns, int caller_ran_all, int woken) {
    if (caller_ran_all && took_ns > INTRT_POOL_JOIN_NS && !woken) return 1;
    return took_ns > INTRT_POOL_LOSS_RATIO * alone_ns && took_ns - alone_ns > INTRT_POOL_JOIN_NS;
}

#if INTRT_HAVE_POOL
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define INTRT_CPU_RELAX() _mm_pause()
#else
#define INTRT_CPU_RELAX() ((void)0)
#endif

/* how long a worker keeps polling for the next job, and the caller for running tasks, before sleeping */
#ifndef INTRT_POOL_SPIN_NS
#define INTRT_POOL_SPIN_NS 50000
#endif
/* a worker moves off the caller's CPU at most this often (see "Sharing a CPU") */
#define INTRT_POOL_MOVE_NS 200000
/* how long a worker polls while a model runs (see "Waiting") */
#ifndef INTRT_POOL_HOLD_NS
#define INTRT_POOL_HOLD_NS 1000000
#endif

typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t wake;             /* workers sleep here */
    pthread_cond_t finished;         /* the caller sleeps here */
    _Atomic uint64_t ticket;         /* generation << 32 | tasks left (see "Stale workers") */
    _Atomic uint32_t generation;     /* bumped per job: what spinning workers poll */
    _Atomic int64_t done;            /* tasks finished in the current job */
    _Atomic int caller_sleeping;
    _Atomic int busy;                /* 1 while a job runs (one job at a time) */
    /* the current job: written by the caller before it publishes the generation (release), read by the
       workers after they see it (acquire); no lock on this path (see "Posting a job") */
    _Atomic(intrt_task_fn) fn;
    _Atomic(void *) ctx;
    _Atomic int64_t ntasks;
    _Atomic int want;                /* workers that may join */
    _Atomic uint64_t joined;         /* generation << 32 | workers that joined that job (slots handed out) */
    _Atomic int sleepers;            /* workers asleep on `wake`, or about to be */
    _Atomic int holding;             /* models running (intrt_pool_hold): workers poll longer, see "Waiting" */
    _Atomic int resting;             /* 1 while the caller runs jobs alone (serial_left > 0) */
    _Atomic int64_t released_ns;     /* when a model's run last ended (intrt_pool_hold(0)) */
    _Atomic int caller_cpu;          /* the CPU the caller posted the last job from (-1: unknown) */
    int nworkers;
    int64_t spin_ns;
    /* contention fallback, read and written only by the job's caller (it holds `busy`) */
    int serial_left;                 /* jobs still to run on the caller alone */
    int backoff;                     /* serial jobs after the next loss */
    int share_backoff;               /* serial jobs after the next starved window (see "CPU share") */
    int strikes, share_strikes;      /* lost jobs, starved windows in a row */
    int probe;                       /* parallel jobs until the next one whose caller CPU time is sampled */
    int64_t share_cpu, share_wall;   /* the sampled jobs' caller CPU and wall time since the last verdict */
    double min_share;                /* INTRT_POOL_MIN_SHARE unless set (intrt_pool_set_min_share) */
    int64_t losses, serial_jobs;     /* counters for intrt_pool_stats */
    pid_t pid;                       /* the process that made the workers (a fork child starts over) */
} intrt_pool;

static intrt_pool intrt_the_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                                    PTHREAD_COND_INITIALIZER};
static pthread_mutex_t intrt_pool_start_mutex = PTHREAD_MUTEX_INITIALIZER;

static inline int64_t intrt_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

#if defined(__linux__) && defined(CPU_SET)
#define INTRT_POOL_CAN_MOVE 1
static inline int intrt_pool_cpu(void) { return sched_getcpu(); }
/* "Sharing a CPU": leave CPU `cpu` if this thread runs there and may run elsewhere; returns 1 if it moved */
static int intrt_pool_leave_cpu(int cpu) {
    cpu_set_t all, others;
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getcpu() != cpu) return 0;
    if (sched_getaffinity(0, sizeof all, &all) != 0 || !CPU_ISSET(cpu, &all) || CPU_COUNT(&all) < 2) return 0;
    others = all;
    CPU_CLR(cpu, &others);
    if (sched_setaffinity(0, sizeof others, &others) != 0) return 0;
    sched_setaffinity(0, sizeof all, &all);
    return 1;
}
#else
#define INTRT_POOL_CAN_MOVE 0
static inline int intrt_pool_cpu(void) { return -1; }
static int intrt_pool_leave_cpu(int cpu) { (void)cpu; return 0; }
#endif

/* the ticket a job of `ntasks` tasks starts from */
static inline uint64_t intrt_pool_first_ticket(uint32_t gen, int64_t ntasks) {
    return (uint64_t)gen << 32 | (ntasks <= INTRT_POOL_TWO_ENDED_MAX ? (uint64_t)ntasks : 0);
}

/* run tasks of generation `gen` until none is left; returns how many this thread ran. Slot 0 (the caller)
   takes the first task left, workers the last one (two-ended jobs). */
static int64_t intrt_pool_claim(intrt_pool *p, uint32_t gen, intrt_task_fn fn, void *ctx, int64_t ntasks,
                                int slot) {
    const int two_ended = ntasks <= INTRT_POOL_TWO_ENDED_MAX;
    int64_t ran = 0, task;
    uint64_t t = atomic_load(&p->ticket), next;
    for (;;) {
        if ((uint32_t)(t >> 32) != gen) break;
        if (two_ended) {
            const uint32_t first = (uint32_t)(t >> 16) & 0xffffu, end = (uint32_t)t & 0xffffu;
            if (first >= end) break;
            if (slot == 0) {
                task = first;
                next = t + ((uint64_t)1 << 16);
            } else {
                task = end - 1;
                next = t - 1;
            }
        } else {
            task = (int64_t)(t & 0xffffffffu);
            if (task >= ntasks) break;
            next = t + 1;
        }
        if (!atomic_compare_exchange_weak(&p->ticket, &t, next)) continue;   /* t reloaded */
        fn(ctx, task, slot);
        ran++;
        t = atomic_load(&p->ticket);
    }
    return ran;
}

static void intrt_pool_finish_tasks(intrt_pool *p, int64_t ran, int64_t ntasks) {
    if (ran && atomic_fetch_add(&p->done, ran) + ran == ntasks && atomic_load(&p->caller_sleeping)) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_signal(&p->finished);
        pthread_mutex_unlock(&p->mutex);
    }
}

static void *intrt_pool_worker(void *arg) {
    intrt_pool *p = &intrt_the_pool;
    uint32_t seen = (uint32_t)(uintptr_t)arg;
    int64_t moved = 0;                 /* when this worker last left the caller's CPU */
    for (;;) {
        /* bounded spin for the next job, then sleep */
        const int64_t idle = intrt_now_ns();
        const int64_t hold_ns = p->spin_ns > INTRT_POOL_HOLD_NS ? p->spin_ns : INTRT_POOL_HOLD_NS;
        int polls = 0;
        while (atomic_load_explicit(&p->generation, memory_order_acquire) == seen) {
            INTRT_CPU_RELAX();
            if (++polls % 64 == 0) {
                const int64_t now = intrt_now_ns(), spun = now - idle;
                if (INTRT_POOL_CAN_MOVE && now - moved > INTRT_POOL_MOVE_NS &&
                    intrt_pool_cpu() == atomic_load_explicit(&p->caller_cpu, memory_order_relaxed) &&
                    intrt_pool_leave_cpu(atomic_load_explicit(&p->caller_cpu, memory_order_relaxed)))
                    moved = now;
                const int hold = atomic_load_explicit(&p->holding, memory_order_relaxed) > 0 &&
                                 !atomic_load_explicit(&p->resting, memory_order_relaxed);
                /* after a model's run the spin counts from its end, so that back-to-back runs find workers up */
                const int64_t released = atomic_load_explicit(&p->released_ns, memory_order_relaxed);
                const int64_t since = released > idle ? now - released : spun;
                if (hold ? spun > hold_ns : since > p->spin_ns) break;
                if (spun > p->spin_ns) sched_yield();
            }
        }
        if (atomic_load(&p->generation) == seen) {
            /* counted as a sleeper before the last look at the generation: a caller that publishes a job
               after that look sees the count and wakes us under the mutex (both sequentially consistent) */
            pthread_mutex_lock(&p->mutex);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->generation) == seen) pthread_cond_wait(&p->wake, &p->mutex);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mutex);
        }
        const uint32_t gen = atomic_load_explicit(&p->generation, memory_order_acquire);
        seen = gen;
        if (INTRT_POOL_CAN_MOVE) {     /* woken (or found the job) on the caller's CPU: the caller runs there */
            const int cpu = atomic_load_explicit(&p->caller_cpu, memory_order_relaxed);
            if (intrt_pool_cpu() == cpu) {
                const int64_t now = intrt_now_ns();
                if (now - moved > INTRT_POOL_MOVE_NS && intrt_pool_leave_cpu(cpu)) moved = now;
            }
        }
        intrt_task_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&p->ctx, memory_order_relaxed);
        const int64_t ntasks = atomic_load_explicit(&p->ntasks, memory_order_relaxed);
        const int want = atomic_load_explicit(&p->want, memory_order_relaxed);
        /* a slot of this generation's job, if one is left: a worker that saw a generation the caller has
           already moved past takes none (and a later job's fields read with this generation claim nothing:
           the ticket is stamped with its generation) */
        int slot = 0;
        uint64_t j = atomic_load(&p->joined);
        while ((uint32_t)(j >> 32) == gen && (int)(uint32_t)j < want) {
            if (atomic_compare_exchange_weak(&p->joined, &j, j + 1)) {
                slot = (int)(uint32_t)j + 1;
                break;
            }
        }
        if (slot) intrt_pool_finish_tasks(p, intrt_pool_claim(p, gen, fn, ctx, ntasks, slot), ntasks);
    }
    return NULL;
}

/* make sure `n` workers exist (returns how many do) */
static int intrt_pool_grow(int n) {
    intrt_pool *p = &intrt_the_pool;
    if (n > INTRT_POOL_MAX_THREADS - 1) n = INTRT_POOL_MAX_THREADS - 1;
    pthread_mutex_lock(&intrt_pool_start_mutex);
    if (p->pid != getpid()) {        /* first use, or a fork child: the parent's workers do not exist here */
        pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
        pthread_cond_t c = PTHREAD_COND_INITIALIZER;
        p->mutex = m;
        p->wake = c;
        p->finished = c;
        p->nworkers = 0;
        atomic_store(&p->sleepers, 0);
        atomic_store(&p->joined, 0);
        atomic_store(&p->want, 0);
        atomic_store(&p->busy, 0);
        atomic_store(&p->caller_cpu, -1);
        atomic_store(&p->resting, 0);   /* `holding` is left: StepLists may be running (it only adds polling) */
        if (p->spin_ns == 0) p->spin_ns = INTRT_POOL_SPIN_NS;
        p->pid = getpid();
    }
    while (p->nworkers < n) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 8 * 1024 * 1024);  /* as a default thread: debug builds use deep frames */
        uint32_t gen = atomic_load(&p->generation);
        int rc = pthread_create(&th, &attr, intrt_pool_worker, (void *)(uintptr_t)gen);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        p->nworkers++;
    }
    n = p->nworkers;
    pthread_mutex_unlock(&intrt_pool_start_mutex);
    return n;
}

static inline int64_t intrt_thread_cpu_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static inline void intrt_pool_lose(intrt_pool *p) {
    p->serial_left = p->backoff;
    p->losses++;
    if (p->backoff < INTRT_POOL_MAX_BACKOFF) p->backoff *= 2;
}

/* "CPU share": a sampled job's caller CPU time `cpu_ns` over the wall time `wall_ns` from posting the job to
   finding no task left (it was runnable throughout: waiting for the workers' last tasks is not counted); a loss
   when the sampled jobs of the last INTRT_POOL_SHARE_WINDOW_NS got less than INTRT_POOL_MIN_SHARE of a CPU */
static void intrt_pool_judge_share(intrt_pool *p, int64_t cpu_ns, int64_t wall_ns) {
    p->share_cpu += cpu_ns;
    p->share_wall += wall_ns;
    if (p->share_wall < INTRT_POOL_SHARE_WINDOW_NS) return;
    const double min_share = p->min_share > 0 ? p->min_share : INTRT_POOL_MIN_SHARE;
    const int starved = (double)p->share_cpu < min_share * (double)p->share_wall;
    p->share_cpu = p->share_wall = 0;
    if (p->share_backoff < INTRT_POOL_MIN_BACKOFF) p->share_backoff = INTRT_POOL_MIN_BACKOFF;
    p->share_strikes = starved ? p->share_strikes + 1 : 0;
    if (starved && p->share_strikes >= INTRT_POOL_STRIKES) {
        p->share_strikes = 0;
        p->serial_left = p->share_backoff;
        p->losses++;
        if (p->share_backoff < INTRT_POOL_MAX_BACKOFF) p->share_backoff *= 2;
    } else if (!starved && p->share_backoff > INTRT_POOL_MIN_BACKOFF) {
        p->share_backoff /= 2;
    }
}

/* after a parallel job: was it slower than the caller alone would have been? Times: `start` before the job
   was posted, `work` when the caller began claiming tasks, `idle` when it found none left, `end` when every
   task had finished; `ran` of the `ntasks` tasks ran on the caller, so (idle - work) / ran is its time per task
   and ntasks times that the job without workers. */
static void intrt_pool_judge(intrt_pool *p, int64_t start, int64_t work, int64_t idle, int64_t end, int64_t ran,
                             int64_t ntasks, int woken) {
    if (ran <= 0) return;                           /* no per-task time to compare */
    double alone = (double)(idle - work) * (double)ntasks / (double)ran;
    if (p->backoff < INTRT_POOL_MIN_BACKOFF) p->backoff = INTRT_POOL_MIN_BACKOFF;
    /* lost (see "Contention"): slower than the caller alone, or long and no worker took a task although they
       were awake; a job whose workers had to be woken from sleep and did not join is not judged (waking takes
       tens of microseconds in some virtual machines: judged, every job after a fallback would lose again) */
    const int alone_job = ran >= ntasks;
    if (intrt_pool_job_lost((double)(end - start), alone, alone_job, woken)) {
        if (++p->strikes >= INTRT_POOL_STRIKES) {
            p->strikes = 0;
            intrt_pool_lose(p);
        }
    } else if (!(alone_job && woken)) {
        p->strikes = 0;
        p->backoff = INTRT_POOL_MIN_BACKOFF;
    }
}

static void intrt_pool_run(intrt_task_fn fn, void *ctx, int64_t ntasks, int threads) {
    intrt_pool *p = &intrt_the_pool;
    int64_t i;
    if (threads > ntasks) threads = (int)ntasks;
    if (threads > INTRT_POOL_MAX_THREADS) threads = INTRT_POOL_MAX_THREADS;
    int expected = 0;
    if (threads <= 1 || ntasks > 0xffffffffLL || (p->pid != getpid() && intrt_pool_grow(threads - 1) < 1) ||
        !atomic_compare_exchange_strong(&p->busy, &expected, 1)) {
        for (i = 0; i < ntasks; i++) fn(ctx, i, 0);
        return;
    }
    if (p->serial_left > 0) {           /* parallel jobs lost lately: the caller alone, workers left asleep */
        p->serial_left--;
        p->serial_jobs++;
        atomic_store_explicit(&p->resting, p->serial_left > 0, memory_order_relaxed);
        for (i = 0; i < ntasks; i++) fn(ctx, i, 0);
        atomic_store(&p->busy, 0);
        return;
    }
    const int sampled = --p->probe <= 0;
    int64_t cpu0 = 0;
    if (sampled) {
        p->probe = INTRT_POOL_SHARE_EVERY;
        cpu0 = intrt_thread_cpu_ns();
    }
    int64_t start = intrt_now_ns();
    if (p->nworkers < threads - 1) intrt_pool_grow(threads - 1);
    /* "Posting a job": with a mutex held here, a worker that saw the new generation blocked on it (a futex
       sleep and wake: microseconds per job) */
    const uint32_t gen = atomic_load(&p->generation) + 1;
    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&p->ntasks, ntasks, memory_order_relaxed);
    atomic_store_explicit(&p->want, threads - 1 < p->nworkers ? threads - 1 : p->nworkers, memory_order_relaxed);
    atomic_store_explicit(&p->caller_cpu, intrt_pool_cpu(), memory_order_relaxed);
    atomic_store(&p->joined, (uint64_t)gen << 32);
    atomic_store(&p->done, 0);
    atomic_store(&p->ticket, intrt_pool_first_ticket(gen, ntasks));
    atomic_store(&p->generation, gen);     /* sequentially consistent: ordered before the sleepers check */
    const int woken = atomic_load(&p->sleepers) > 0;
    if (woken) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }

    int64_t work = intrt_now_ns();
    int64_t ran = intrt_pool_claim(p, gen, fn, ctx, ntasks, 0);
    int64_t idle = intrt_now_ns(), end = idle;
    const int64_t cpu1 = sampled ? intrt_thread_cpu_ns() : 0;   /* the caller's share: while it had work */
    if (atomic_fetch_add(&p->done, ran) + ran != ntasks) {
        /* other threads still run tasks: poll briefly, then sleep until the last one signals */
        int64_t deadline = idle + p->spin_ns;
        int polls = 0;
        while (atomic_load(&p->done) != ntasks) {
            INTRT_CPU_RELAX();
            if (++polls % 64 == 0 && intrt_now_ns() > deadline) break;
        }
        if (atomic_load(&p->done) != ntasks) {
            pthread_mutex_lock(&p->mutex);
            atomic_store(&p->caller_sleeping, 1);
            while (atomic_load(&p->done) != ntasks) pthread_cond_wait(&p->finished, &p->mutex);
            atomic_store(&p->caller_sleeping, 0);
            pthread_mutex_unlock(&p->mutex);
        }
        end = intrt_now_ns();
    }
    intrt_pool_judge(p, start, work, idle, end, ran, ntasks, woken);
    if (sampled && p->serial_left == 0) intrt_pool_judge_share(p, cpu1 - cpu0, idle - start);
    atomic_store_explicit(&p->resting, p->serial_left > 0, memory_order_relaxed);
    atomic_store(&p->busy, 0);
}

/* parallel jobs that lost to the caller alone, and jobs run alone because of that, since the start */
static void intrt_pool_stats(int64_t *losses, int64_t *serial_jobs, int64_t *serial_left) {
    *losses = intrt_the_pool.losses;
    *serial_jobs = intrt_the_pool.serial_jobs;
    *serial_left = intrt_the_pool.serial_left;
}

static int intrt_pool_workers(void) { return intrt_the_pool.pid == getpid() ? intrt_the_pool.nworkers : 0; }
/* the calling thread leaves the CPU it runs on, as a worker leaves the caller's (tests): -1 when it cannot */
static int intrt_pool_leave_current_cpu(void) {
    const int cpu = intrt_pool_cpu();
    return intrt_pool_leave_cpu(cpu) ? cpu : -1;
}
/* a model starts (1) or ends (0) running: workers poll up to INTRT_POOL_HOLD_NS between its jobs ("Waiting") */
static void intrt_pool_hold(int on) {
    if (!on) atomic_store_explicit(&intrt_the_pool.released_ns, intrt_now_ns(), memory_order_relaxed);
    atomic_fetch_add(&intrt_the_pool.holding, on ? 1 : -1);
}
static int intrt_pool_holding(void) { return atomic_load(&intrt_the_pool.holding); }
static void intrt_pool_set_spin_ns(int64_t ns) { intrt_the_pool.spin_ns = ns > 0 ? ns : 1; }
/* the CPU share below which sampled jobs count as a loss; <= 0: the default, >= 0 .. 1 otherwise (1e-9: off) */
static void intrt_pool_set_min_share(double share) { intrt_the_pool.min_share = share; }
static int64_t intrt_pool_spin(void) {
    return intrt_the_pool.spin_ns ? intrt_the_pool.spin_ns : INTRT_POOL_SPIN_NS;
}

#else  /* no pthreads: every task on the calling thread */

static void intrt_pool_run(intrt_task_fn fn, void *ctx, int64_t ntasks, int threads) {
    int64_t i;
    (void)threads;
    for (i = 0; i < ntasks; i++) fn(ctx, i, 0);
}
static int intrt_pool_grow(int n) { (void)n; return 0; }
static void intrt_pool_stats(int64_t *losses, int64_t *serial_jobs, int64_t *serial_left) {
    *losses = 0;
    *serial_jobs = 0;
    *serial_left = 0;
}
static int intrt_pool_workers(void) { return 0; }
static int intrt_pool_leave_current_cpu(void) { return -1; }
static void intrt_pool_hold(int on) { (void)on; }
static int intrt_pool_holding(void) { return 0; }
static void intrt_pool_set_spin_ns(int64_t ns) { (void)ns; }
static void intrt_pool_set_min_share(double share) { (void)share; }
static int64_t intrt_pool_spin(void) { return 0; }

#endif
#endif
