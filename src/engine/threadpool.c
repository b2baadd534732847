/* threadpool — persistent workers for the forward pass: herd_pool_run hands one function to
 * every thread (the caller is thread 0) and returns when all have finished it.
 *
 * The one thing to know: nothing is created or allocated per call. A call bumps a generation
 * counter; workers spin briefly on it (a forward pass issues runs back to back, microseconds
 * apart) and then sleep on a condition variable, so an idle pool costs no CPU. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "engine_int.h"
#include "limits.h"

/* Polls of the generation counter before sleeping: about 10-50 µs on current CPUs, long enough
 * to bridge the gap between two phases of one token, short enough not to burn a shared core. */
#define SPIN_POLLS 20000

struct worker {
	struct herd_pool *pool;
	int ith;
	pthread_t thread;
};

struct herd_pool {
	int n;			/* threads including the caller */
	struct worker *workers; /* n - 1 of them */
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
	atomic_uint gen;    /* bumped (under mu) for each run and for shutdown */
	atomic_int pending; /* workers still inside the current run */
	bool quit;	    /* under mu */
	void (*fn)(void *arg, int ith, int nth);
	void *arg;
};

/* One poll of a spin loop. Every 64th poll yields the core: on a machine with more runnable
 * threads than cores the thread we wait for may need this very core. */
static inline void cpu_relax(int spins)
{
	if ((spins & 63) == 63) {
		sched_yield();
		return;
	}
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	struct herd_pool *pool = w->pool;
	unsigned seen = 0;
	for (;;) {
		int spins = 0;
		while (atomic_load_explicit(&pool->gen, memory_order_acquire) == seen &&
		       spins < SPIN_POLLS) {
			cpu_relax(spins);
			spins++;
		}
		pthread_mutex_lock(&pool->mu);
		while (atomic_load(&pool->gen) == seen && !pool->quit)
			pthread_cond_wait(&pool->cv_work, &pool->mu);
		bool quit = pool->quit;
		seen = atomic_load(&pool->gen);
		void (*fn)(void *, int, int) = pool->fn;
		void *arg = pool->arg;
		pthread_mutex_unlock(&pool->mu);
		if (quit)
			return NULL;
		fn(arg, w->ith, pool->n);
		if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) == 1) {
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
	struct herd_pool *p = herd_xcalloc(1, sizeof *p);
	p->n = n_threads;
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

void herd_pool_free(struct herd_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->quit = true;
	atomic_fetch_add(&p->gen, 1);
	pthread_cond_broadcast(&p->cv_work);
	pthread_mutex_unlock(&p->mu);
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

void herd_pool_run(struct herd_pool *p, void (*fn)(void *arg, int ith, int nth), void *arg)
{
	if (p->n == 1) {
		fn(arg, 0, 1);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	atomic_store(&p->pending, p->n - 1);
	atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
	pthread_cond_broadcast(&p->cv_work);
	pthread_mutex_unlock(&p->mu);

	fn(arg, 0, p->n);

	int spins = 0;
	while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0 && spins < SPIN_POLLS) {
		cpu_relax(spins);
		spins++;
	}
	if (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
		pthread_mutex_lock(&p->mu);
		while (atomic_load(&p->pending) > 0)
			pthread_cond_wait(&p->cv_done, &p->mu);
		pthread_mutex_unlock(&p->mu);
	}
}
