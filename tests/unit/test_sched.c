/* sched: the scheduler driven by a small deterministic world — peers with true speeds
 * and behaviours (ok, fail fast, stall, fail one fragment), time advancing from event to
 * event exactly as a coordinator would (poll after every event and at next_deadline). */
#include "herd_test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "swarm.h"

enum mode { OK, FAIL, STALL, FAIL_FRAG1, STALL_FIRST };

#define MAXP 8
#define MAXRUN 256

struct world {
	struct herd_sched *s;
	double now;
	int np;
	char name[MAXP][16];
	double tps[MAXP]; /* true speed of one slot */
	int slots[MAXP];
	enum mode mode[MAXP];
	int stalled[MAXP];
	struct {
		uint64_t att;
		size_t frag;
		int peer;
		double end;
		bool ok;
	} run[MAXRUN];
	int nrun;
	int accepted[MAXP], starts[MAXP], backups, cancels, done, failed;
	int max_running[MAXP];
	double ended_at;
	bool accepted_frag[64];
};

static int peer_index(struct world *w, const char *id)
{
	for (int i = 0; i < w->np; i++)
		if (strcmp(w->name[i], id) == 0)
			return i;
	fail_msg("unknown peer %s", id);
	return -1;
}

static void add_peer(struct world *w, const char *name, int slots, double claim, double truth,
		     enum mode m)
{
	int i = w->np++;
	snprintf(w->name[i], sizeof(w->name[i]), "%s", name);
	w->tps[i] = truth;
	w->slots[i] = slots;
	w->mode[i] = m;
	assert_int_equal(herd_sched_peer_upsert(w->s, name, slots, claim), HERD_OK);
}

static int running_on(struct world *w, int peer)
{
	int n = 0;
	for (int i = 0; i < w->nrun; i++)
		n += w->run[i].peer == peer;
	return n;
}

static void do_actions(struct world *w)
{
	struct herd_sched_action a[16];
	size_t n;
	do {
		n = herd_sched_poll(w->s, w->now, a, 16);
		for (size_t i = 0; i < n; i++) {
			if (a[i].kind == HERD_SCHED_JOB_DONE || a[i].kind == HERD_SCHED_JOB_FAILED) {
				if (a[i].kind == HERD_SCHED_JOB_DONE)
					w->done++;
				else
					w->failed++;
				w->ended_at = w->now;
				continue;
			}
			int p = peer_index(w, a[i].peer_id);
			if (a[i].kind == HERD_SCHED_CANCEL) {
				w->cancels++;
				for (int k = 0; k < w->nrun; k++)
					if (w->run[k].att == a[i].attempt)
						w->run[k--] = w->run[--w->nrun];
				continue;
			}
			assert_true(a[i].deadline_ms > w->now);
			assert_true(w->nrun < MAXRUN);
			w->starts[p]++;
			w->backups += a[i].backup;
			double dur = 1000.0 * 100 / w->tps[p]; /* every test fragment costs 100 */
			bool ok = true;
			if (w->mode[p] == FAIL)
				dur = 100, ok = false;
			if (w->mode[p] == FAIL_FRAG1 && a[i].fragment == 1)
				dur = 50, ok = false;
			if (w->mode[p] == STALL || (w->mode[p] == STALL_FIRST && w->stalled[p]++ == 0))
				dur = 1e12;
			w->run[w->nrun].att = a[i].attempt;
			w->run[w->nrun].frag = a[i].fragment;
			w->run[w->nrun].peer = p;
			w->run[w->nrun].end = w->now + dur;
			w->run[w->nrun].ok = ok;
			w->nrun++;
			int r = running_on(w, p);
			/* Pull style: never more attempts on a peer than it has slots. */
			assert_true(r <= w->slots[p]);
			if (r > w->max_running[p])
				w->max_running[p] = r;
		}
	} while (n == 16);
}

/* Runs until the job ends or nothing is left to happen; time jumps event to event. */
static void run_world(struct world *w, double until_ms)
{
	for (;;) {
		do_actions(w);
		if (w->done + w->failed > 0)
			return;
		double t = herd_sched_next_deadline(w->s);
		int first = -1;
		for (int i = 0; i < w->nrun; i++)
			if (first < 0 || w->run[i].end < w->run[first].end)
				first = i;
		if (first >= 0 && w->run[first].end <= t)
			t = w->run[first].end;
		if (!isfinite(t) || t > until_ms)
			return;
		if (t > w->now)
			w->now = t;
		if (first >= 0 && w->run[first].end <= w->now) {
			int p = w->run[first].peer;
			bool ok = w->run[first].ok;
			uint64_t att = w->run[first].att;
			size_t frag = w->run[first].frag;
			w->run[first] = w->run[--w->nrun];
			bool use = herd_sched_result(w->s, att, w->now, ok, ok ? NULL : "boom");
			assert_true(use == ok || !ok);
			if (use) {
				w->accepted[p]++;
				if (frag < 64) {
					assert_false(w->accepted_frag[frag]); /* each result once */
					w->accepted_frag[frag] = true;
				}
			}
		}
	}
}

static void world_init(struct world *w, const struct herd_sched_params *p)
{
	memset(w, 0, sizeof(*w));
	w->s = herd_sched_new(p);
	assert_non_null(w->s);
}

static void add_job(struct world *w, const char *id, size_t n)
{
	double cost[1000];
	for (size_t i = 0; i < n; i++)
		cost[i] = 100;
	assert_int_equal(herd_sched_job_add(w->s, id, n, cost), HERD_OK);
}

/* A peer three times as fast gets about three times the fragments (2.5..3.5). */
static void proportional_share(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, NULL);
	add_peer(&w, "fast", 1, 30, 30, OK);
	add_peer(&w, "slow", 1, 10, 10, OK);
	add_job(&w, "j", 80);
	run_world(&w, 1e9);
	assert_int_equal(w.done, 1);
	assert_int_equal(w.accepted[0] + w.accepted[1], 80);
	double ratio = (double)w.accepted[0] / w.accepted[1];
	assert_true(ratio >= 2.5 && ratio <= 3.5);
	/* Makespan close to ideal: 8000 tokens / 40 tok/s = 200 s, plus at most one fragment. */
	assert_true(w.ended_at <= 200000 + 1000.0 * 100 / 30 + 1);
	herd_sched_free(w.s);
}

/* One slot vs three slots at the same speed: about 1:3 (2.5..3.5). */
static void slots_split(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, NULL);
	add_peer(&w, "one", 1, 10, 10, OK);
	add_peer(&w, "three", 3, 10, 10, OK);
	add_job(&w, "j", 80);
	run_world(&w, 1e9);
	assert_int_equal(w.done, 1);
	double ratio = (double)w.accepted[1] / w.accepted[0];
	assert_true(ratio >= 2.5 && ratio <= 3.5);
	assert_int_equal(w.max_running[1], 3);
	herd_sched_free(w.s);
}

/* Work is handed out as slots free up: the first poll starts exactly one fragment per
 * free slot, however many are pending. */
static void pull_style(void **state)
{
	(void)state;
	struct herd_sched *s = herd_sched_new(NULL);
	assert_int_equal(herd_sched_peer_upsert(s, "a", 2, 10), HERD_OK);
	assert_int_equal(herd_sched_peer_upsert(s, "b", 1, 10), HERD_OK);
	double cost[50];
	for (int i = 0; i < 50; i++)
		cost[i] = 100;
	assert_int_equal(herd_sched_job_add(s, "j", 50, cost), HERD_OK);
	struct herd_sched_action a[64];
	size_t n = herd_sched_poll(s, 0, a, 64);
	assert_int_equal(n, 3);
	int on_a = 0;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(a[i].kind, HERD_SCHED_START);
		on_a += strcmp(a[i].peer_id, "a") == 0;
	}
	assert_int_equal(on_a, 2);
	assert_int_equal(herd_sched_poll(s, 1, a, 64), 0); /* nothing new until a slot frees */
	assert_true(herd_sched_result(s, a[0].attempt, 10000, true, NULL));
	n = herd_sched_poll(s, 10000, a, 64);
	assert_int_equal(n, 1);
	size_t done, running;
	assert_int_equal(herd_sched_job_progress(s, "j", &done, NULL, &running), HERD_OK);
	assert_int_equal(done, 1);
	assert_int_equal(running, 3);
	herd_sched_free(s);
}

/* A failing peer's fragments are finished elsewhere; its reputation falls, it is given
 * few attempts (cooldown), and its reputation recovers toward neutral with time. */
static void failing_peer(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, NULL);
	add_peer(&w, "good", 1, 10, 10, OK);
	add_peer(&w, "bad", 1, 10, 10, FAIL);
	add_job(&w, "j", 20);
	run_world(&w, 1e9);
	assert_int_equal(w.done, 1);
	assert_int_equal(w.accepted[0], 20);
	assert_int_equal(w.accepted[1], 0);
	/* 20 fragments × 10 s on "good": the bad peer must not have eaten the queue. Its
	 * cooldown doubles per failure, so within ~200 s it gets at most ~9 tries. */
	assert_true(w.starts[1] <= 9);
	struct herd_sched_peer_info bad, good;
	assert_int_equal(herd_sched_peer_info(w.s, "bad", w.now, &bad), HERD_OK);
	assert_int_equal(herd_sched_peer_info(w.s, "good", w.now, &good), HERD_OK);
	assert_true(bad.success < 0.5);
	assert_true(good.success > 0.99);
	assert_true(bad.effective_tps < good.effective_tps / 2);
	assert_int_equal((int)bad.failed, w.starts[1]);
	assert_int_equal(bad.consecutive_failures, w.starts[1]);
	/* Ten half-lives later the bad peer's standing is nearly neutral again. */
	double half_life = herd_sched_default_params().rep_half_life_ms;
	assert_int_equal(herd_sched_peer_info(w.s, "bad", w.now + 30000 + 10 * half_life, &bad),
			 HERD_OK);
	assert_true(bad.success > 0.99);
	herd_sched_free(w.s);
}

/* A stalled attempt is timed out at max(4 × expected, 10 s), cancelled, and retried on
 * another peer. */
static void timeouts_retry(void **state)
{
	(void)state;
	struct herd_sched *s = herd_sched_new(NULL);
	assert_int_equal(herd_sched_peer_upsert(s, "stuck", 1, 10), HERD_OK);
	double cost[1] = {100}; /* 10 s at 10 tok/s: deadline 40 s */
	assert_int_equal(herd_sched_job_add(s, "j", 1, cost), HERD_OK);
	struct herd_sched_action a[8];
	assert_int_equal(herd_sched_poll(s, 1000, a, 8), 1);
	assert_int_equal(a[0].kind, HERD_SCHED_START);
	assert_true(fabs(a[0].deadline_ms - (1000 + 40000)) < 1e-6);
	uint64_t first = a[0].attempt;
	/* At 2 × expected it is a straggler, but there is no other peer for a backup. */
	assert_true(fabs(herd_sched_next_deadline(s) - 21000) < 1e-6);
	assert_int_equal(herd_sched_poll(s, 21000, a, 8), 0);
	assert_true(fabs(herd_sched_next_deadline(s) - 41000) < 1e-6);
	assert_int_equal(herd_sched_poll(s, 40999, a, 8), 0);
	size_t n = herd_sched_poll(s, 41000, a, 8);
	assert_int_equal(n, 1);
	assert_int_equal(a[0].kind, HERD_SCHED_CANCEL);
	assert_true(a[0].attempt == first);
	assert_string_equal(a[0].peer_id, "stuck");
	assert_int_equal(herd_sched_peer_upsert(s, "good", 1, 10), HERD_OK);
	/* Backoff, then the retry goes to the peer it has not failed on. */
	double t = herd_sched_next_deadline(s);
	assert_true(t > 41000 && t <= 41000 + 250);
	n = herd_sched_poll(s, t, a, 8);
	assert_int_equal(n, 1);
	assert_int_equal(a[0].kind, HERD_SCHED_START);
	assert_string_equal(a[0].peer_id, "good");
	assert_false(herd_sched_result(s, first, t + 1, true, NULL)); /* too late: discarded */
	assert_true(herd_sched_result(s, a[0].attempt, t + 10000, true, NULL));
	n = herd_sched_poll(s, t + 10000, a, 8);
	assert_int_equal(n, 1);
	assert_int_equal(a[0].kind, HERD_SCHED_JOB_DONE);
	struct herd_sched_peer_info info;
	assert_int_equal(herd_sched_peer_info(s, "stuck", t, &info), HERD_OK);
	assert_int_equal((int)info.failed, 1);
	assert_true(info.speed < 1); /* managed at most 100 tokens in 40 s of a claimed 10/s */
	herd_sched_free(s);
}

/* A fragment that fails on every peer uses its attempts (alternating peers) and fails the
 * job; the other fragments' results still count, and the error names every attempt. */
static void attempts_limit(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, NULL);
	add_peer(&w, "p1", 1, 10, 10, FAIL_FRAG1);
	add_peer(&w, "p2", 1, 10, 10, FAIL_FRAG1);
	add_job(&w, "j", 3);
	run_world(&w, 1e9);
	assert_int_equal(w.failed, 1);
	assert_int_equal(w.done, 0);
	assert_true(w.accepted_frag[0] && w.accepted_frag[2] && !w.accepted_frag[1]);
	size_t done, failed;
	assert_int_equal(herd_sched_job_progress(w.s, "j", &done, &failed, NULL), HERD_OK);
	assert_int_equal(done, 2);
	assert_int_equal(failed, 1);
	const char *e = herd_sched_job_error(w.s, "j");
	assert_non_null(e);
	/* Fragment 0 went to p1 first (equal peers: table order), so fragment 1 began on p2. */
	assert_string_equal(e, "fragment 1 failed after 4 attempts ([1] peer p2: boom, "
			       "[2] peer p1: boom, [3] peer p2: boom, [4] peer p1: boom)");
	herd_sched_job_remove(w.s, "j");
	assert_null(herd_sched_job_error(w.s, "j"));
	herd_sched_free(w.s);
}

/* Near the end, a fragment running past 1.5 × the median gets one backup copy on an idle
 * peer; the first result wins and the other copy is cancelled. */
static void straggler_backup(void **state)
{
	(void)state;
	struct herd_sched_params p = herd_sched_default_params();
	p.timeout_factor = 100; /* keep the timeout out of the way */
	struct world w;
	world_init(&w, &p);
	add_peer(&w, "a", 1, 10, 10, OK);
	add_peer(&w, "b", 1, 10, 10, OK);
	/* c claims 2.5 tok/s (40 s a fragment: not "stuck" before 80 s) but runs at 1.25. */
	add_peer(&w, "c", 1, 2.5, 1.25, OK);
	add_job(&w, "j", 12);
	run_world(&w, 1e9);
	assert_int_equal(w.done, 1);
	assert_int_equal(w.backups, 1);
	assert_int_equal(w.cancels, 1);
	assert_int_equal(w.nrun, 0);        /* c's slow copy was cancelled */
	assert_int_equal(w.accepted[2], 0); /* c only ever held the slow copy */
	assert_int_equal(w.accepted[0] + w.accepted[1], 12);
	assert_int_equal(w.starts[2], 1);
	/* a and b take 11 fragments in rounds of 10 s; at 50 s 10 of 12 (>= 75 %) are done,
	 * c's copy has run 50 s > 1.5 × the 10 s median: the backup runs on idle a and ends at
	 * 60 s, before c's would (80 s). */
	assert_true(fabs(w.ended_at - 60000) < 1e-6);
	herd_sched_free(w.s);
}

/* No backup while pending work keeps every slot busy past the straggler's expected end: a
 * copy would only push back real work. a's first attempt stalls; at 20 s (2x expected) 96
 * fragments are still pending, 240 s of work for the swarm, far past the attempt's deadline
 * (40 s) plus a rerun. The deadline gets the fragment back instead, and it runs again. */
static void no_backup_while_work_pending(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, NULL);
	add_peer(&w, "a", 1, 10, 10, STALL_FIRST);
	add_peer(&w, "b", 1, 10, 10, OK);
	add_peer(&w, "c", 2, 10, 10, OK);
	add_job(&w, "j", 100);
	run_world(&w, 1e9);
	assert_int_equal(w.done, 1);
	assert_int_equal(w.backups, 0);
	assert_int_equal(w.cancels, 1); /* the stalled attempt, at its deadline */
	assert_int_equal(w.accepted[0] + w.accepted[1] + w.accepted[2], 100);
	herd_sched_free(w.s);
}

/* With every peer gone, running attempts are cancelled and the job fails after the grace
 * period, naming the causes. */
static void all_peers_removed(void **state)
{
	(void)state;
	struct herd_sched *s = herd_sched_new(NULL);
	assert_int_equal(herd_sched_peer_upsert(s, "a", 2, 10), HERD_OK);
	assert_int_equal(herd_sched_peer_upsert(s, "b", 1, 10), HERD_OK);
	double cost[5] = {100, 100, 100, 100, 100};
	assert_int_equal(herd_sched_job_add(s, "j", 5, cost), HERD_OK);
	struct herd_sched_action a[16];
	assert_int_equal(herd_sched_poll(s, 0, a, 16), 3);
	assert_int_equal(herd_sched_peer_remove(s, "a"), HERD_OK);
	assert_int_equal(herd_sched_peer_remove(s, "b"), HERD_OK);
	assert_int_equal(herd_sched_peer_remove(s, "b"), HERD_ERR_NOT_FOUND);
	size_t n = herd_sched_poll(s, 100, a, 16);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(a[i].kind, HERD_SCHED_CANCEL);
	double t = herd_sched_next_deadline(s);
	assert_true(t <= 100 + 3000);
	n = herd_sched_poll(s, t, a, 16);
	while (n == 0 && t < 3100) { /* backoffs may end first */
		t = herd_sched_next_deadline(s);
		n = herd_sched_poll(s, t, a, 16);
	}
	assert_int_equal(n, 1);
	assert_int_equal(a[0].kind, HERD_SCHED_JOB_FAILED);
	assert_true(t <= 3100);
	const char *e = herd_sched_job_error(s, "j");
	assert_non_null(strstr(e, "fragment 0 failed after 1 attempt ([1] peer a: peer removed, "
				  "[2] peer (none): no live peer for 3000 ms)"));
	assert_non_null(strstr(e, "fragment 4 failed after 0 attempts ([1] peer (none)"));
	assert_true(isinf(herd_sched_next_deadline(s)));
	herd_sched_free(s);
}

/* Cancelling a job returns its running attempts (as CANCEL actions) and nothing else. */
static void cancel_job(void **state)
{
	(void)state;
	struct herd_sched *s = herd_sched_new(NULL);
	assert_int_equal(herd_sched_peer_upsert(s, "a", 3, 10), HERD_OK);
	double cost[10] = {100, 100, 100, 100, 100, 100, 100, 100, 100, 100};
	assert_int_equal(herd_sched_job_add(s, "j", 10, cost), HERD_OK);
	struct herd_sched_action a[16], c[16];
	assert_int_equal(herd_sched_poll(s, 0, a, 16), 3);
	assert_int_equal(herd_sched_job_cancel(s, "j"), 3);
	assert_int_equal(herd_sched_job_cancel(s, "j"), -1);
	assert_int_equal(herd_sched_poll(s, 1, c, 16), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(c[i].kind, HERD_SCHED_CANCEL);
		bool match = false;
		for (int k = 0; k < 3; k++)
			match |= c[i].attempt == a[k].attempt;
		assert_true(match);
		assert_false(herd_sched_result(s, a[i].attempt, 2, true, NULL));
	}
	assert_int_equal(herd_sched_poll(s, 20000, c, 16), 0);
	struct herd_sched_peer_info info;
	assert_int_equal(herd_sched_peer_info(s, "a", 2, &info), HERD_OK);
	assert_int_equal(info.running, 0);
	herd_sched_free(s);
}

/* A peer slower than it claims has its speed EWMA move toward measured / claimed. */
static void speed_reputation(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, NULL);
	add_peer(&w, "liar", 1, 20, 10, OK);
	add_job(&w, "j", 20);
	run_world(&w, 1e9);
	assert_int_equal(w.done, 1);
	struct herd_sched_peer_info info;
	assert_int_equal(herd_sched_peer_info(w.s, "liar", w.now, &info), HERD_OK);
	/* 20 samples of 0.5 with alpha 0.2 from 1: 0.5 + 0.5 × 0.8^20 ≈ 0.506 (observed every 10 s: no decay). */
	assert_true(info.speed > 0.5 && info.speed < 0.52);
	assert_true(fabs(info.effective_tps - 20 * info.speed) < 1e-9);
	herd_sched_free(w.s);
}

/* Many fragments left near the end: a slow peer still takes one while the faster peers
 * alone would be busy longer than it needs. One peer at 100 tok/s and seven at 10, 170
 * fragments of 100 tokens: ideal 17,000 / 170 = 100 s. Comparing each fragment only with the
 * fast peer's next free slot left the last ~15 fragments to the fast peer alone. */
static void tail_many_slow_peers(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, NULL);
	add_peer(&w, "fast", 1, 100, 100, OK);
	for (int i = 0; i < 7; i++) {
		char name[8];
		snprintf(name, sizeof(name), "s%d", i);
		add_peer(&w, name, 1, 10, 10, OK);
	}
	add_job(&w, "j", 170);
	run_world(&w, 1e9);
	assert_int_equal(w.done, 1);
	assert_true(w.ended_at <= 105500); /* 104.5 s; the old rule took 107.0 s */
	herd_sched_free(w.s);
}

static void dynamic_sizing(void **state)
{
	(void)state;
	assert_int_equal(herd_sched_fragment_count(100000, 10), 60);   /* 6 per slot */
	assert_int_equal(herd_sched_fragment_count(1000, 10), 3);      /* 256 tokens each at least */
	assert_int_equal(herd_sched_fragment_count(511, 10), 1);       /* too small to split */
	assert_int_equal(herd_sched_fragment_count(512, 10), 2);
	assert_int_equal(herd_sched_fragment_count(0, 0), 1);
	assert_int_equal(herd_sched_fragment_count(5000, 0), 6);       /* no slots known: as one */
	/* bench_sched_sim's largest job */
	assert_int_equal(herd_sched_fragment_count(4000000, 2500), 15000);
	assert_int_equal(herd_sched_fragment_count(100000000, 8000), HERD_MAX_FRAGMENTS);
	assert_int_equal(herd_sched_fragment_count(SIZE_MAX, SIZE_MAX), HERD_MAX_FRAGMENTS);
}

/* A peer's standing carried over from earlier jobs: restored as given, bad values refused,
 * and forgiven with time since it was last observed. */
static void peer_restore(void **state)
{
	(void)state;
	struct herd_sched *s = herd_sched_new(NULL);
	assert_int_equal(herd_sched_peer_upsert(s, "p", 2, 10), HERD_OK);
	assert_int_equal(herd_sched_peer_restore(s, "q", 1, 1, 0, 0, 0), HERD_ERR_NOT_FOUND);
	assert_int_equal(herd_sched_peer_restore(s, "p", 1.5, 1, 0, 0, 0), HERD_ERR_BAD_INPUT);
	assert_int_equal(herd_sched_peer_restore(s, "p", 0.4, 0.5, 7, 3, 1000), HERD_OK);
	struct herd_sched_peer_info in;
	assert_int_equal(herd_sched_peer_info(s, "p", 2000, &in), HERD_OK);
	assert_true(fabs(in.success - 0.4) < 1e-9 && fabs(in.speed - 0.5) < 1e-9);
	assert_int_equal((int)in.completed, 7);
	assert_int_equal((int)in.failed, 3);
	assert_true(fabs(in.effective_tps - 10 * 0.5 * 0.4) < 1e-9);
	assert_int_equal(herd_sched_peer_info(s, "p", 1000 + 30000 + 10 * 120000, &in), HERD_OK);
	assert_true(in.success > 0.99);
	herd_sched_free(s);
}

/* Every peer fails every attempt at once (dead workers refusing connections): the job must
 * fail promptly, in well under the sum of the timeouts and the longest cooldowns, instead
 * of waiting on cooldowns that only grow. Fragments fail on all peers, attempts run out. */
static void all_peers_failing(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, NULL);
	add_peer(&w, "d1", 2, 10, 10, FAIL);
	add_peer(&w, "d2", 1, 10, 10, FAIL);
	add_peer(&w, "d3", 3, 10, 10, FAIL);
	add_job(&w, "j", 12);
	run_world(&w, 1e9);
	assert_int_equal(w.failed, 1);
	/* 4 attempts per fragment, backoff 0.25+0.5+1 s, each failure 0.1 s: a few seconds.
	 * The sum of the timeouts alone would be 12 × 4 × 40 s. */
	assert_true(w.ended_at < 15000);
	const char *e = herd_sched_job_error(w.s, "j");
	assert_non_null(e);
	for (int i = 0; i < 12; i++) {
		char want[32];
		snprintf(want, sizeof(want), "fragment %d failed", i);
		assert_non_null(strstr(e, want));
	}
	herd_sched_free(w.s);
}

static void dynamic_sizing_arrays(void **state)
{
	(void)state;
	assert_int_equal(herd_sched_array_fragment_count(100, 4), 24); /* 6 per slot */
	assert_int_equal(herd_sched_array_fragment_count(5, 4), 5);    /* one item is worth sending */
	assert_int_equal(herd_sched_array_fragment_count(1, 100), 1);
	assert_int_equal(herd_sched_array_fragment_count(10, 0), 6);   /* no slots known: as one */
	assert_int_equal(herd_sched_array_fragment_count(0, 4), 1);
	assert_int_equal(herd_sched_array_fragment_count(SIZE_MAX, SIZE_MAX), HERD_MAX_FRAGMENTS);
}

static void bad_input(void **state)
{
	(void)state;
	struct herd_sched_params p = herd_sched_default_params();
	p.max_attempts = 0;
	assert_null(herd_sched_new(&p));
	assert_string_equal(herd_last_error(), "max_attempts: must be 1..16, got 0");
	p = herd_sched_default_params();
	p.timeout_factor = NAN;
	assert_null(herd_sched_new(&p));
	assert_string_equal(herd_last_error(), "timeout_factor: must be a finite number > 0, got nan");

	struct herd_sched *s = herd_sched_new(NULL);
	assert_int_equal(herd_sched_peer_upsert(s, "a", 0, 10), HERD_ERR_BAD_INPUT);
	assert_string_equal(herd_last_error(), "peer a: slots must be 1..256, got 0");
	assert_int_equal(herd_sched_peer_upsert(s, "a", 1, -1), HERD_ERR_BAD_INPUT);
	assert_int_equal(herd_sched_peer_upsert(s, "", 1, 1), HERD_ERR_BAD_INPUT);
	assert_string_equal(herd_last_error(), "peer id: must be 1..128 bytes, got 0");
	char longid[200];
	memset(longid, 'x', sizeof(longid) - 1);
	longid[199] = 0;
	assert_int_equal(herd_sched_peer_upsert(s, longid, 1, 1), HERD_ERR_BAD_INPUT);
	double cost[3] = {1, INFINITY, 1};
	assert_int_equal(herd_sched_job_add(s, "j", 3, cost), HERD_ERR_BAD_INPUT);
	assert_string_equal(herd_last_error(), "job j: cost[1]: must be a finite number > 0, got inf");
	assert_int_equal(herd_sched_job_add(s, "j", 0, cost), HERD_ERR_BAD_INPUT);
	cost[1] = 1;
	assert_int_equal(herd_sched_job_add(s, "j", 3, cost), HERD_OK);
	assert_int_equal(herd_sched_job_add(s, "j", 3, cost), HERD_ERR_BAD_INPUT);
	assert_string_equal(herd_last_error(), "job j: already scheduled");
	assert_false(herd_sched_result(s, 0, 0, true, NULL));
	assert_false(herd_sched_result(s, 12345, 0, true, NULL));
	struct herd_sched_peer_info info;
	assert_int_equal(herd_sched_peer_info(s, "nobody", 0, &info), HERD_ERR_NOT_FOUND);
	herd_sched_free(s);
	herd_sched_free(NULL);
}

HERD_TEST_MAIN(((const struct CMUnitTest[]){
	cmocka_unit_test(proportional_share),
	cmocka_unit_test(slots_split),
	cmocka_unit_test(pull_style),
	cmocka_unit_test(failing_peer),
	cmocka_unit_test(timeouts_retry),
	cmocka_unit_test(attempts_limit),
	cmocka_unit_test(straggler_backup),
	cmocka_unit_test(no_backup_while_work_pending),
	cmocka_unit_test(all_peers_removed),
	cmocka_unit_test(cancel_job),
	cmocka_unit_test(speed_reputation),
	cmocka_unit_test(tail_many_slow_peers),
	cmocka_unit_test(dynamic_sizing),
	cmocka_unit_test(dynamic_sizing_arrays),
	cmocka_unit_test(bad_input),
	cmocka_unit_test(all_peers_failing),
	cmocka_unit_test(peer_restore),
}))
