/* threadpool: every thread runs every job exactly once, with its own ith, and a run returns
 * only after all threads are done (the caller reads results the workers wrote). */
#include "herd_test.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "engine_int.h"

struct job {
	int nth_seen[8];
	int calls[8];
	long sums[8];
	int round;
};

static void work(void *arg, int ith, int nth)
{
	struct job *j = arg;
	j->nth_seen[ith] = nth;
	j->calls[ith]++;
	long s = 0;
	for (int i = ith; i < 1000; i += nth)
		s += i * (j->round + 1);
	j->sums[ith] = s;
}

static void each_thread_runs_each_job_once(void **state)
{
	(void)state;
	for (int n = 1; n <= 4; n++) {
		struct herd_pool *p = herd_pool_new(n);
		assert_non_null(p);
		assert_int_equal(herd_pool_size(p), n);
		struct job j;
		memset(&j, 0, sizeof j);
		for (j.round = 0; j.round < 300; j.round++) {
			herd_pool_run(p, work, &j);
			long total = 0;
			for (int i = 0; i < n; i++)
				total += j.sums[i];
			/* all partial sums are visible when run returns */
			assert_int_equal(total, 499500L * (j.round + 1));
		}
		for (int i = 0; i < n; i++) {
			assert_int_equal(j.calls[i], 300);
			assert_int_equal(j.nth_seen[i], n);
		}
		herd_pool_free(p);
	}
	herd_pool_free(NULL);
}

/* run_n: threads 0..nth-1 run (nth clamped to the pool's size), the others do not. */
static void run_n_uses_only_the_first_threads(void **state)
{
	(void)state;
	struct herd_pool *p = herd_pool_new(4);
	struct job j;
	memset(&j, 0, sizeof j);
	for (int nth = 0; nth <= 6; nth++) {
		memset(j.calls, 0, sizeof j.calls);
		memset(j.nth_seen, 0, sizeof j.nth_seen);
		herd_pool_run_n(p, nth, work, &j);
		int want = nth < 1 ? 1 : nth > 4 ? 4 : nth;
		for (int i = 0; i < 4; i++) {
			assert_int_equal(j.calls[i], i < want ? 1 : 0);
			assert_int_equal(j.nth_seen[i], i < want ? want : 0);
		}
	}
	herd_pool_free(p);
}

static void nap(void)
{
	struct timespec ts = {0, 30 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

static void slow_work(void *arg, int ith, int nth)
{
	if (ith == nth - 1)
		nap(); /* the caller spins out and sleeps until this worker is done */
	work(arg, ith, nth);
}

/* Past the spinning: workers asleep between runs (the caller pauses) and the caller asleep
 * waiting for a slow worker are woken, and every result is visible after the run. */
static void sleeping_sides_are_woken(void **state)
{
	(void)state;
	struct herd_pool *p = herd_pool_new(3);
	struct job j;
	memset(&j, 0, sizeof j);
	for (j.round = 0; j.round < 4; j.round++) {
		nap();
		herd_pool_run(p, j.round % 2 ? slow_work : work, &j);
		assert_int_equal(j.sums[0] + j.sums[1] + j.sums[2], 499500L * (j.round + 1));
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(j.calls[i], 4);
	herd_pool_free(p);
}

static void bad_thread_counts_are_refused(void **state)
{
	(void)state;
	assert_null(herd_pool_new(0));
	assert_non_null(strstr(herd_last_error(), "n_threads"));
	assert_null(herd_pool_new(100000));
}

HERD_TEST_MAIN(((const struct CMUnitTest[]){
    cmocka_unit_test(each_thread_runs_each_job_once),
    cmocka_unit_test(run_n_uses_only_the_first_threads),
    cmocka_unit_test(sleeping_sides_are_woken),
    cmocka_unit_test(bad_thread_counts_are_refused),
}))
