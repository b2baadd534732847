/* threadpool — persistent workers for the forward pass: herd_pool_run hands one function to
 * every thread (the caller is thread 0) and returns when all have finished it.
 *
 * The one thing to know: nothing is created, allocated or locked per call in the common case.
 * A call publishes (fn, arg, nth) and bumps a generation counter; workers spin on it (a forward
 * pass issues runs back to back, microseconds apart) and the caller spins on a countdown of
 * the workers still busy. Only a side that has spun for long goes to sleep on a condition
 * variable, and it says so first (a "sleeping" count), so that the other side takes the mutex
 * only when someone really sleeps. An idle pool therefore costs no CPU, and a busy one costs
 * two cache-line transfers per run. herd_pool_run_n runs on fewer threads without waking the
 * rest for work they would not do (nth = 1 is a plain call). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "engine_int.h"
#include "limits.h"

/* Polls before sleeping: some 100 µs on current CPUs, long enough to bridge the gap between two
 * phases of one token (and a short preemption of the other thread), short enough not to burn a
 * shared core between tokens for long. */
#define SPIN_POLLS 50000

struct worker {
	struct herd_pool *pool;
	int ith;
	pthread_t thread;
};

/* The fields the caller writes per run and the ones workers write live on separate cache
 * lines, so that a worker's countdown does not invalidate the line the others spin on. */
struct herd_pool {
	int n;			/* threads including the caller */
	struct worker *workers; /* n - 1 of them */
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
	bool quit; /* under mu, and published by gen */

	_Alignas(64) atomic_uint gen;		 /* bumped for each run and for shutdown */
	void (*fn)(void *arg, int ith, int nth); /* published by gen */
	void *arg;
	int nth; /* threads taking part in the current run */

	_Alignas(64) atomic_int pending;  /* workers still inside the current run */
	_Alignas(64) atomic_int sleepers; /* workers asleep (or about to be) on cv_work */
	atomic_int caller_sleeps;	  /* the caller is asleep (or about to be) on cv_done */
};

/* One poll of a spin loop. Every 256th poll yields the core: on a machine with more runnable
 * threads than cores the thread we wait for may need this very core. */
static inline void cpu_relax(int spins)
{
	if ((spins & 255) == 255) {
		sched_yield();
		return;
	}
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Waits until gen differs from seen; returns the new value. */
static unsigned wait_for_work(struct herd_pool *pool, unsigned seen)
{
	unsigned g;
	for (int spins = 0; spins < SPIN_POLLS; spins++) {
		if ((g = atomic_load_explicit(&pool->gen, memory_order_acquire)) != seen)
			return g;
		cpu_relax(spins);
	}
	pthread_mutex_lock(&pool->mu);
	/* seq_cst: either the caller sees us counted after its bump of gen, or we see the bump */
	atomic_fetch_add(&pool->sleepers, 1);
	while ((g = atomic_load(&pool->gen)) == seen)
		pthread_cond_wait(&pool->cv_work, &pool->mu);
	atomic_fetch_sub(&pool->sleepers, 1);
	pthread_mutex_unlock(&pool->mu);
	return g;
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	struct herd_pool *pool = w->pool;
	unsigned seen = 0;
	for (;;) {
		seen = wait_for_work(pool, seen);
		if (pool->quit)
			return NULL;
		int nth = pool->nth;
		if (w->ith < nth)
			pool->fn(pool->arg, w->ith, nth);
		if (atomic_fetch_sub(&pool->pending, 1) == 1 && atomic_load(&pool->caller_sleeps)) {
			pthread_mutex_lock(&pool->mu);
			pthread_cond_signal(&pool->cv_done);
			pthread_mutex_unlock(&pool->mu);
		}
	}
}

struct herd_pool *herd_pool_new(int n_threads)
{
	if (n_threads < 1 || n_threads > HERD_MAX_THREADS) {
		herd_fail(HERD_ERR_BAD_INPUT, "n_threads: must be 1..%d, got %d", HERD_MAX_THREADS,
			  n_threads);
		return NULL;
	}
	struct herd_pool *p = aligned_alloc(64, (sizeof *p + 63) / 64 * 64);
	HERD_ASSERT(p);
	*p = (struct herd_pool){.n = n_threads};
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv_work, NULL);
	pthread_cond_init(&p->cv_done, NULL);
	p->workers = herd_xcalloc((size_t)n_threads, sizeof *p->workers);
	for (int i = 1; i < n_threads; i++) {
		struct worker *w = &p->workers[i - 1];
		w->pool = p;
		w->ith = i;
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			/* Run with the threads we got rather than fail: results do not depend on
			 * nth. */
			herd_log(WARN, "could start only %d of %d threads", i, n_threads);
			p->n = i;
			break;
		}
	}
	return p;
}

/* Publishes a run (or the shutdown) to every worker and wakes the sleeping ones. */
static void publish(struct herd_pool *p)
{
	atomic_fetch_add(&p->gen, 1); /* seq_cst: pairs with the sleepers count */
	if (atomic_load(&p->sleepers) > 0) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->cv_work);
		pthread_mutex_unlock(&p->mu);
	}
}

void herd_pool_free(struct herd_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->quit = true;
	pthread_mutex_unlock(&p->mu);
	publish(p);
	for (int i = 1; i < p->n; i++)
		pthread_join(p->workers[i - 1].thread, NULL);
	pthread_cond_destroy(&p->cv_work);
	pthread_cond_destroy(&p->cv_done);
	pthread_mutex_destroy(&p->mu);
	free(p->workers);
	free(p);
}

int herd_pool_size(const struct herd_pool *p)
{
	return p->n;
}

void herd_pool_run_n(struct herd_pool *p, int nth, void (*fn)(void *arg, int ith, int nth),
		     void *arg)
{
	if (nth > p->n)
		nth = p->n;
	if (nth <= 1) {
		fn(arg, 0, 1);
		return;
	}
	p->fn = fn;
	p->arg = arg;
	p->nth = nth;
	atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
	publish(p); /* releases the stores above */

	fn(arg, 0, nth);

	for (int spins = 0; spins < SPIN_POLLS; spins++) {
		if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0)
			return;
		cpu_relax(spins);
	}
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->caller_sleeps, 1); /* seq_cst: pairs with the last worker's countdown */
	while (atomic_load(&p->pending) > 0)
		pthread_cond_wait(&p->cv_done, &p->mu);
	atomic_store(&p->caller_sleeps, 0);
	pthread_mutex_unlock(&p->mu);
}

void herd_pool_run(struct herd_pool *p, void (*fn)(void *arg, int ith, int nth), void *arg)
{
	herd_pool_run_n(p, p->n, fn, arg);
}
