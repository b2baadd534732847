/* sched — which fragment runs on which peer, retries, straggler backups, reputation.
 *
 * A pure state machine: no I/O, no threads, no clock. Everything happens inside calls
 * from the caller (events in, herd_sched_poll() out), so a simulation drives exactly the
 * code a node runs. The model (expected finish time, pull, deadlines, backoff, stragglers,
 * reputation) is in docs/scheduling.md.
 *
 * The one thing to know: work is pulled. A fragment starts only when a peer has a free
 * slot, so a fast peer comes back for more sooner and ends up with a share proportional
 * to its speed; nothing ever queues behind a slow peer.
 *
 * Cost per poll: free peers sit in a max-heap by effective speed and pending fragments in
 * a heap (job order, largest first), so a START is O(log peers + log fragments). The scans
 * per poll are over running attempts (at most the swarm's slots), fragments in backoff and
 * peers cooling down, never over peers × fragments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swarm.h"

enum frag_state { F_PENDING, F_WAITING, F_RUNNING, F_DONE, F_FAILED };

#define SKIP_LOOKAHEAD 8 /* pending fragments looked at for one a peer has not failed */
#define MAX_BACKUPS 3 /* per fragment: a straggler's copies, also replacing failed ones */
#define MAX_COPIES 3  /* running at once: the original and up to two backups */
#define MAX_CAUSES (HERD_SCHED_MAX_ATTEMPTS + MAX_BACKUPS) /* every failed attempt */
#define STUCK_FACTOR 2.0 /* an attempt past 2x its expected time gets a backup (before the timeout) */

struct peer {
	char id[HERD_SCHED_MAX_ID + 1];
	bool live;
	int slots, running;
	double tps;     /* claimed tokens/s of one slot */
	double succ;    /* EWMA of success, stored as of rep_ms */
	double speed;   /* EWMA of measured / claimed speed, as of rep_ms */
	double rep_ms;
	double pace;    /* tps * speed: expected tokens/s of one slot (deadlines) */
	double eff;     /* pace * success: what planning uses (heap key) */
	int consec_fail;
	bool cooling;
	bool aside; /* skipped for the rest of this poll */
	double cool_until_ms;
	uint64_t n_ok, n_fail;
	long heap_pos; /* index in the free-peer heap, -1 when not in it */
};

struct frag {
	double cost; /* tokens */
	uint8_t state;
	uint8_t n_failed;
	uint8_t n_running; /* copies running: 0..MAX_COPIES */
	uint8_t n_causes;
	uint8_t n_backups;
	double ready_ms;              /* F_WAITING: may start again at this time */
	uint32_t run[MAX_COPIES];     /* attempt slots of the running copies, oldest first */
	uint32_t failed_on[MAX_CAUSES]; /* peer indices of failed attempts */
	char *causes[MAX_CAUSES];     /* "peer ID: reason", owned */
};

struct dheap { /* min-heap of doubles */
	double *v;
	size_t n, cap;
};

struct job {
	char id[HERD_SCHED_MAX_ID + 1];
	uint64_t seq;
	size_t n;
	struct frag *f;
	size_t n_done, n_failed, n_running;
	bool ended;
	struct dheap lo, hi; /* durations of completed attempts: lo holds -x (max-heap) */
	char *error;
};

struct attempt {
	uint32_t gen; /* bumped on release, so stale ids are recognised */
	bool used;
	uint32_t job;
	uint32_t frag;
	uint32_t peer;
	uint32_t run_pos;
	double start_ms, deadline_ms;
};

struct pitem { /* pending fragment */
	uint64_t seq;
	double cost;
	uint32_t job, frag;
};

struct witem { /* fragment in backoff */
	uint64_t seq;
	uint32_t job, frag;
};

struct by_eff { /* a peer's eff, and the sum of slots*eff of it and every faster peer */
	double eff, cap;
};

struct herd_sched {
	struct herd_sched_params p;
	double now;

	struct peer *peers;
	size_t n_peers, cap_peers, n_live;
	uint32_t *fheap; /* free peers: live, not cooling, running < slots; max eff first */
	double *free_at; /* scratch per peer: when a slot is expected to free (tail checks) */
	bool free_at_valid; /* computed during this poll */
	size_t n_fheap;
	uint32_t *cooling;
	size_t n_cooling, cap_cooling;
	bool agg_dirty;
	double cap_total, s_max; /* over live, not cooling peers: sum slots*eff, max eff */
	struct by_eff *by_eff;	 /* the same peers, fastest first (tail rule) */
	size_t n_by_eff, cap_by_eff;
	bool by_eff_valid;

	struct job **jobs;
	size_t n_jobs, cap_jobs;
	uint64_t next_seq;

	struct pitem *pend;
	size_t n_pend, cap_pend;
	double pend_work; /* tokens in valid pending entries */
	double run_work;  /* tokens of all running attempts */
	struct witem *wait;
	size_t n_wait, cap_wait;

	struct attempt *att;
	size_t n_att, cap_att;
	uint32_t *att_free;
	size_t n_att_free, cap_att_free;
	uint32_t *run; /* attempt slots running */
	size_t n_run, cap_run;

	struct herd_sched_action *q; /* actions decided outside poll, not yet returned */
	size_t q_head, q_n, q_cap;

	double no_peer_since; /* < 0 when not waiting for peers */
	double straggler_wake; /* no straggler can be due before this ... */
	bool straggler_dirty;  /* ... unless a result changed the picture */
};

#define GROW(ptr, n, cap)                                                                          \
	do {                                                                                       \
		if ((n) >= (cap)) {                                                                \
			(cap) = (cap) ? 2 * (cap) : 16;                                            \
			(ptr) = herd_xrealloc((ptr), (cap) * sizeof(*(ptr)));                      \
		}                                                                                  \
	} while (0)

struct herd_sched_params herd_sched_default_params(void)
{
	return (struct herd_sched_params){
		.max_attempts = 4,
		.timeout_factor = 4.0,
		.timeout_floor_ms = 10000,
		.retry_backoff_ms = 250,
		.retry_backoff_max_ms = 5000,
		.peer_cooldown_ms = 1000,
		.peer_cooldown_max_ms = 60000,
		.straggler_done_frac = 0.75,
		.straggler_factor = 1.5,
		.rep_alpha = 0.2,
		.rep_half_life_ms = 120000,
		.no_peers_grace_ms = 3000,
	};
}

static bool pos_finite(double x)
{
	return isfinite(x) && x > 0;
}

struct herd_sched *herd_sched_new(const struct herd_sched_params *params)
{
	struct herd_sched_params p = params ? *params : herd_sched_default_params();
	if (p.max_attempts < 1 || p.max_attempts > HERD_SCHED_MAX_ATTEMPTS) {
		herd_fail(HERD_ERR_BAD_INPUT, "max_attempts: must be 1..%d, got %d",
			  HERD_SCHED_MAX_ATTEMPTS, p.max_attempts);
		return NULL;
	}
	const struct {
		const char *name;
		double v;
		bool zero_ok;
	} pos[] = {
		{"timeout_factor", p.timeout_factor, false},
		{"timeout_floor_ms", p.timeout_floor_ms, true},
		{"retry_backoff_ms", p.retry_backoff_ms, true},
		{"retry_backoff_max_ms", p.retry_backoff_max_ms, true},
		{"peer_cooldown_ms", p.peer_cooldown_ms, true},
		{"peer_cooldown_max_ms", p.peer_cooldown_max_ms, true},
		{"straggler_factor", p.straggler_factor, false},
		{"rep_half_life_ms", p.rep_half_life_ms, false},
		{"no_peers_grace_ms", p.no_peers_grace_ms, true},
	};
	for (size_t i = 0; i < sizeof(pos) / sizeof(pos[0]); i++) {
		if (!isfinite(pos[i].v) || pos[i].v < 0 || (!pos[i].zero_ok && pos[i].v == 0)) {
			herd_fail(HERD_ERR_BAD_INPUT, "%s: must be a finite number %s 0, got %g",
				  pos[i].name, pos[i].zero_ok ? ">=" : ">", pos[i].v);
			return NULL;
		}
	}
	if (!(p.straggler_done_frac >= 0 && p.straggler_done_frac <= 1)) {
		herd_fail(HERD_ERR_BAD_INPUT, "straggler_done_frac: must be 0..1, got %g",
			  p.straggler_done_frac);
		return NULL;
	}
	if (!(p.rep_alpha > 0 && p.rep_alpha <= 1)) {
		herd_fail(HERD_ERR_BAD_INPUT, "rep_alpha: must be in (0, 1], got %g", p.rep_alpha);
		return NULL;
	}
	struct herd_sched *s = herd_xcalloc(1, sizeof(*s));
	s->p = p;
	s->no_peer_since = -1;
	s->straggler_wake = INFINITY;
	s->next_seq = 1;
	s->agg_dirty = true;
	return s;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n; i++)
		for (int c = 0; c < j->f[i].n_causes; c++)
			free(j->f[i].causes[c]);
	free(j->f);
	free(j->lo.v);
	free(j->hi.v);
	free(j->error);
	free(j);
}

void herd_sched_free(struct herd_sched *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_jobs; i++)
		job_free(s->jobs[i]);
	free(s->jobs);
	free(s->peers);
	free(s->fheap);
	free(s->free_at);
	free(s->by_eff);
	free(s->cooling);
	free(s->pend);
	free(s->wait);
	free(s->att);
	free(s->att_free);
	free(s->run);
	free(s->q);
	free(s);
}

/* ---- small heaps ---- */

static void dheap_push(struct dheap *h, double x)
{
	GROW(h->v, h->n, h->cap);
	size_t i = h->n++;
	while (i > 0 && h->v[(i - 1) / 2] > x) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = x;
}

static double dheap_pop(struct dheap *h)
{
	double top = h->v[0], x = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1] < h->v[c])
			c++;
		if (h->v[c] >= x)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = x;
	return top;
}

static void median_add(struct job *j, double x)
{
	if (j->lo.n == 0 || x <= -j->lo.v[0])
		dheap_push(&j->lo, -x);
	else
		dheap_push(&j->hi, x);
	if (j->lo.n > j->hi.n + 1)
		dheap_push(&j->hi, -dheap_pop(&j->lo));
	else if (j->hi.n > j->lo.n)
		dheap_push(&j->lo, -dheap_pop(&j->hi));
}

static double median(const struct job *j)
{
	if (j->lo.n == 0)
		return NAN;
	if (j->lo.n > j->hi.n)
		return -j->lo.v[0];
	return (-j->lo.v[0] + j->hi.v[0]) / 2;
}

/* Free peers: a max-heap by eff with each peer's position kept, so a peer whose speed
 * changes moves in O(log n). */
static bool fh_before(const struct herd_sched *s, uint32_t a, uint32_t b)
{
	double ea = s->peers[a].eff, eb = s->peers[b].eff;
	return ea > eb || (ea == eb && a < b);
}

static void fh_set(struct herd_sched *s, size_t i, uint32_t pi)
{
	s->fheap[i] = pi;
	s->peers[pi].heap_pos = (long)i;
}

static void fh_up(struct herd_sched *s, size_t i)
{
	uint32_t pi = s->fheap[i];
	while (i > 0 && fh_before(s, pi, s->fheap[(i - 1) / 2])) {
		fh_set(s, i, s->fheap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	fh_set(s, i, pi);
}

static void fh_down(struct herd_sched *s, size_t i)
{
	uint32_t pi = s->fheap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->n_fheap)
			break;
		if (c + 1 < s->n_fheap && fh_before(s, s->fheap[c + 1], s->fheap[c]))
			c++;
		if (!fh_before(s, s->fheap[c], pi))
			break;
		fh_set(s, i, s->fheap[c]);
		i = c;
	}
	fh_set(s, i, pi);
}

/* Puts the peer in or out of the free heap, or moves it, to match its state. */
static void peer_refresh(struct herd_sched *s, uint32_t pi)
{
	struct peer *p = &s->peers[pi];
	bool want = p->live && !p->cooling && !p->aside && p->running < p->slots;
	if (want && p->heap_pos < 0) {
		s->n_fheap++;
		fh_set(s, s->n_fheap - 1, pi);
		fh_up(s, s->n_fheap - 1);
	} else if (!want && p->heap_pos >= 0) {
		size_t i = (size_t)p->heap_pos;
		uint32_t last = s->fheap[--s->n_fheap];
		p->heap_pos = -1;
		if (i < s->n_fheap) {
			fh_set(s, i, last);
			fh_up(s, i);
			fh_down(s, (size_t)s->peers[last].heap_pos);
		}
	} else if (want) {
		fh_up(s, (size_t)p->heap_pos);
		fh_down(s, (size_t)p->heap_pos);
	}
}

/* Pending fragments: earlier job first, then the largest (longest-processing-time first
 * keeps the tail short), then by index. */
static bool pend_before(const struct pitem *a, const struct pitem *b)
{
	if (a->seq != b->seq)
		return a->seq < b->seq;
	if (a->cost != b->cost)
		return a->cost > b->cost;
	return a->frag < b->frag;
}

static void pend_push(struct herd_sched *s, struct pitem it)
{
	GROW(s->pend, s->n_pend, s->cap_pend);
	size_t i = s->n_pend++;
	while (i > 0 && pend_before(&it, &s->pend[(i - 1) / 2])) {
		s->pend[i] = s->pend[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->pend[i] = it;
}

static void pend_pop(struct herd_sched *s)
{
	struct pitem x = s->pend[--s->n_pend];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->n_pend)
			break;
		if (c + 1 < s->n_pend && pend_before(&s->pend[c + 1], &s->pend[c]))
			c++;
		if (!pend_before(&s->pend[c], &x))
			break;
		s->pend[i] = s->pend[c];
		i = c;
	}
	if (s->n_pend)
		s->pend[i] = x;
}

static struct job *job_at(const struct herd_sched *s, uint32_t slot, uint64_t seq)
{
	if (slot >= s->n_jobs || !s->jobs[slot] || s->jobs[slot]->seq != seq)
		return NULL;
	return s->jobs[slot];
}

/* The first pending entry that still stands (the job may be gone, the fragment failed). */
static const struct pitem *pend_peek(struct herd_sched *s)
{
	while (s->n_pend) {
		const struct pitem *it = &s->pend[0];
		struct job *j = job_at(s, it->job, it->seq);
		if (j && j->f[it->frag].state == F_PENDING)
			return it;
		pend_pop(s);
	}
	return NULL;
}

static void make_pending(struct herd_sched *s, struct job *j, uint32_t slot, uint32_t fi)
{
	j->f[fi].state = F_PENDING;
	s->pend_work += j->f[fi].cost;
	pend_push(s, (struct pitem){.seq = j->seq, .cost = j->f[fi].cost, .job = slot, .frag = fi});
}

/* ---- actions, reputation ---- */

static struct herd_sched_action *queue_action(struct herd_sched *s, enum herd_sched_action_kind kind,
					      const struct job *j)
{
	if (s->q_head == s->q_n)
		s->q_head = s->q_n = 0;
	GROW(s->q, s->q_n, s->q_cap);
	struct herd_sched_action *a = &s->q[s->q_n++];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	memcpy(a->job_id, j->id, sizeof(a->job_id));
	return a;
}

static uint64_t attempt_id(const struct herd_sched *s, uint32_t slot)
{
	return ((uint64_t)s->att[slot].gen << 32) | (slot + 1u);
}

/* Standing drifts back to neutral only over time the peer goes unobserved beyond
 * REP_FRESH_MS: a peer observed steadily keeps the EWMA of what it does, a peer left alone
 * (avoided, or idle) is forgiven with the half-life. */
#define REP_FRESH_MS 30000.0

static void rep_decay(const struct herd_sched_params *prm, double *succ, double *speed,
		      double from_ms, double to_ms)
{
	if (to_ms - from_ms <= REP_FRESH_MS)
		return;
	double f = exp2(-(to_ms - from_ms - REP_FRESH_MS) / prm->rep_half_life_ms);
	*succ = 1 - (1 - *succ) * f;
	*speed = 1 + (*speed - 1) * f;
}

static void peer_rates(struct herd_sched *s, struct peer *p)
{
	p->pace = p->tps * p->speed;
	p->eff = p->pace * fmax(p->succ, 0.05);
	s->agg_dirty = true;
}

/* One observation: ok (1/0) and, when known, the measured speed ratio. */
static void rep_observe(struct herd_sched *s, struct peer *p, double ok, double ratio)
{
	rep_decay(&s->p, &p->succ, &p->speed, p->rep_ms, s->now);
	p->rep_ms = fmax(p->rep_ms, s->now);
	double a = s->p.rep_alpha;
	p->succ = (1 - a) * p->succ + a * ok;
	if (isfinite(ratio)) {
		ratio = fmin(fmax(ratio, 0.05), 20);
		p->speed = (1 - a) * p->speed + a * ratio;
	}
	peer_rates(s, p);
}

static void start_cooling(struct herd_sched *s, uint32_t pi)
{
	struct peer *p = &s->peers[pi];
	int k = p->consec_fail < 30 ? p->consec_fail : 30;
	double d = fmin(s->p.peer_cooldown_max_ms, s->p.peer_cooldown_ms * exp2(k - 1));
	if (d <= 0)
		return;
	p->cool_until_ms = s->now + d;
	if (!p->cooling) {
		p->cooling = true;
		GROW(s->cooling, s->n_cooling, s->cap_cooling);
		s->cooling[s->n_cooling++] = pi;
		s->agg_dirty = true;
	}
}

static void job_check_end(struct herd_sched *s, struct job *j)
{
	if (j->ended || j->n_done + j->n_failed < j->n)
		return;
	j->ended = true;
	queue_action(s, j->n_failed ? HERD_SCHED_JOB_FAILED : HERD_SCHED_JOB_DONE, j);
}

static void add_cause(struct frag *f, uint32_t pi, const char *peer_id, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add_cause(struct frag *f, uint32_t pi, const char *peer_id, const char *fmt, ...)
{
	if (f->n_causes >= MAX_CAUSES)
		return;
	char reason[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	size_t len = strlen(peer_id) + strlen(reason) + 16;
	char *c = herd_xmalloc(len);
	snprintf(c, len, "peer %s: %s", peer_id, reason);
	f->failed_on[f->n_causes] = pi;
	f->causes[f->n_causes++] = c;
}

/* ---- attempts ---- */

static uint32_t attempt_new(struct herd_sched *s)
{
	uint32_t slot;
	if (s->n_att_free) {
		slot = s->att_free[--s->n_att_free];
	} else {
		GROW(s->att, s->n_att, s->cap_att);
		slot = (uint32_t)s->n_att++;
		s->att[slot].gen = 1;
	}
	s->att[slot].used = true;
	GROW(s->run, s->n_run, s->cap_run);
	s->att[slot].run_pos = (uint32_t)s->n_run;
	s->run[s->n_run++] = slot;
	return slot;
}

/* Frees the attempt and its hold on the peer and the fragment; nothing else. */
static void attempt_release(struct herd_sched *s, uint32_t slot)
{
	struct attempt *a = &s->att[slot];
	HERD_ASSERT(a->used);
	struct job *j = s->jobs[a->job];
	struct frag *f = &j->f[a->frag];
	HERD_ASSERT(f->n_running > 0);
	int k = 0;
	while (k < f->n_running && f->run[k] != slot)
		k++;
	HERD_ASSERT(k < f->n_running);
	for (; k + 1 < f->n_running; k++)
		f->run[k] = f->run[k + 1];
	f->n_running--;
	s->run_work -= f->cost;
	if (f->n_running == 0)
		j->n_running--;
	struct peer *p = &s->peers[a->peer];
	p->running--;
	peer_refresh(s, a->peer);

	uint32_t last = s->run[--s->n_run];
	if (a->run_pos < s->n_run) {
		s->run[a->run_pos] = last;
		s->att[last].run_pos = a->run_pos;
	}
	a->used = false;
	a->gen = a->gen == UINT32_MAX ? 1 : a->gen + 1;
	GROW(s->att_free, s->n_att_free, s->cap_att_free);
	s->att_free[s->n_att_free++] = slot;
}

static void queue_cancel(struct herd_sched *s, uint32_t slot)
{
	struct attempt *a = &s->att[slot];
	struct job *j = s->jobs[a->job];
	struct herd_sched_action *act = queue_action(s, HERD_SCHED_CANCEL, j);
	act->fragment = a->frag;
	act->attempt = attempt_id(s, slot);
	memcpy(act->peer_id, s->peers[a->peer].id, sizeof(act->peer_id));
}

/* An attempt that did not produce a result: record why, maybe punish the peer, and
 * retry the fragment (after backoff) or give it up. */
static void attempt_fail(struct herd_sched *s, uint32_t slot, bool penalize, bool cancel,
			 double ratio, const char *reason)
{
	struct attempt *a = &s->att[slot];
	uint32_t pi = a->peer, fi = a->frag, ji = a->job;
	struct job *j = s->jobs[ji];
	struct frag *f = &j->f[fi];
	struct peer *p = &s->peers[pi];
	if (cancel)
		queue_cancel(s, slot);
	add_cause(f, pi, p->id, "%s", reason);
	f->n_failed++;
	p->n_fail++;
	if (penalize) {
		p->consec_fail++;
		rep_observe(s, p, 0, ratio);
		start_cooling(s, pi);
	}
	attempt_release(s, slot);
	if (f->n_running > 0 || f->state != F_RUNNING)
		return; /* the other copy carries on */
	if (f->n_failed >= s->p.max_attempts) {
		f->state = F_FAILED;
		j->n_failed++;
		job_check_end(s, j);
		return;
	}
	int k = f->n_failed < 30 ? f->n_failed : 30;
	f->state = F_WAITING;
	f->ready_ms = s->now + fmin(s->p.retry_backoff_max_ms, s->p.retry_backoff_ms * exp2(k - 1));
	GROW(s->wait, s->n_wait, s->cap_wait);
	s->wait[s->n_wait++] = (struct witem){.seq = j->seq, .job = ji, .frag = fi};
}

static void start_attempt(struct herd_sched *s, uint32_t ji, uint32_t fi, uint32_t pi, bool backup,
			  struct herd_sched_action *out)
{
	struct job *j = s->jobs[ji];
	struct frag *f = &j->f[fi];
	struct peer *p = &s->peers[pi];
	uint32_t slot = attempt_new(s);
	struct attempt *a = &s->att[slot];
	double expected_ms = 1000.0 * f->cost / p->pace;
	a->job = ji;
	a->frag = fi;
	a->peer = pi;
	a->start_ms = s->now;
	a->deadline_ms = s->now + fmax(s->p.timeout_factor * expected_ms, s->p.timeout_floor_ms);
	s->straggler_wake = fmin(s->straggler_wake, s->now + STUCK_FACTOR * expected_ms);
	if (f->state == F_PENDING)
		s->pend_work -= f->cost;
	s->run_work += f->cost;
	if (f->n_running == 0)
		j->n_running++;
	f->run[f->n_running++] = slot;
	f->state = F_RUNNING;
	p->running++;
	peer_refresh(s, pi);

	memset(out, 0, sizeof(*out));
	out->kind = HERD_SCHED_START;
	memcpy(out->job_id, j->id, sizeof(out->job_id));
	out->fragment = fi;
	out->attempt = attempt_id(s, slot);
	memcpy(out->peer_id, p->id, sizeof(out->peer_id));
	out->deadline_ms = a->deadline_ms;
	out->backup = backup;
}

static bool attempt_lookup(const struct herd_sched *s, uint64_t id, uint32_t *slot)
{
	uint64_t lo = id & 0xffffffffu;
	if (lo == 0 || lo > s->n_att)
		return false;
	*slot = (uint32_t)(lo - 1);
	return s->att[*slot].used && s->att[*slot].gen == (uint32_t)(id >> 32);
}

/* ---- peers ---- */

static long peer_find(const struct herd_sched *s, const char *id)
{
	for (size_t i = 0; i < s->n_peers; i++)
		if (strcmp(s->peers[i].id, id) == 0)
			return (long)i;
	return -1;
}

static enum herd_err check_id(const char *what, const char *id)
{
	if (!id)
		return herd_fail(HERD_ERR_BAD_INPUT, "%s: must be a string, got NULL", what);
	size_t n = strnlen(id, HERD_SCHED_MAX_ID + 1);
	if (n == 0 || n > HERD_SCHED_MAX_ID)
		return herd_fail(HERD_ERR_BAD_INPUT, "%s: must be 1..%d bytes, got %zu%s", what,
				 HERD_SCHED_MAX_ID, n, n > HERD_SCHED_MAX_ID ? " or more" : "");
	return HERD_OK;
}

enum herd_err herd_sched_peer_upsert(struct herd_sched *s, const char *id, int slots,
				     double tokens_per_s)
{
	enum herd_err e = check_id("peer id", id);
	if (e)
		return e;
	if (slots < 1 || slots > HERD_MAX_SLOTS)
		return herd_fail(HERD_ERR_BAD_INPUT, "peer %s: slots must be 1..%d, got %d", id,
				 HERD_MAX_SLOTS, slots);
	if (!pos_finite(tokens_per_s))
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "peer %s: tokens_per_s must be a finite number > 0, got %g", id,
				 tokens_per_s);
	long pi = peer_find(s, id);
	if (pi < 0) {
		if (s->n_live >= HERD_MAX_PEERS)
			return herd_fail(HERD_ERR_LIMIT, "peers: at most %d live peers",
					 HERD_MAX_PEERS);
		/* Reuse a removed peer's record when the table has grown to twice the limit. */
		if (s->n_peers >= 2 * (size_t)HERD_MAX_PEERS) {
			for (size_t i = 0; i < s->n_peers && pi < 0; i++)
				if (!s->peers[i].live && s->peers[i].running == 0 &&
				    !s->peers[i].cooling)
					pi = (long)i;
			if (pi < 0)
				return herd_fail(HERD_ERR_LIMIT, "peers: table full");
		} else {
			if (s->n_peers >= s->cap_peers) {
				s->cap_peers = s->cap_peers ? 2 * s->cap_peers : 16;
				s->peers = herd_xrealloc(s->peers, s->cap_peers * sizeof(*s->peers));
				s->fheap = herd_xrealloc(s->fheap, s->cap_peers * sizeof(*s->fheap));
				s->free_at = herd_xrealloc(s->free_at, s->cap_peers * sizeof(*s->free_at));
			}
			pi = (long)s->n_peers++;
		}
		struct peer *p = &s->peers[pi];
		memset(p, 0, sizeof(*p));
		snprintf(p->id, sizeof(p->id), "%s", id);
		p->succ = p->speed = 1;
		p->rep_ms = s->now;
		p->heap_pos = -1;
	}
	struct peer *p = &s->peers[pi];
	if (!p->live) {
		p->live = true;
		s->n_live++;
	}
	p->slots = slots;
	p->tps = tokens_per_s;
	peer_rates(s, p);
	peer_refresh(s, (uint32_t)pi);
	return HERD_OK;
}

enum herd_err herd_sched_peer_remove(struct herd_sched *s, const char *id)
{
	long pi = id ? peer_find(s, id) : -1;
	if (pi < 0 || !s->peers[pi].live)
		return herd_fail(HERD_ERR_NOT_FOUND, "peer %s: no such live peer", id ? id : "(null)");
	for (size_t i = s->n_run; i-- > 0;)
		if (i < s->n_run && s->att[s->run[i]].peer == (uint32_t)pi)
			attempt_fail(s, s->run[i], false, true, NAN, "peer removed");
	s->peers[pi].live = false;
	s->n_live--;
	s->agg_dirty = true;
	peer_refresh(s, (uint32_t)pi);
	return HERD_OK;
}

enum herd_err herd_sched_peer_info(const struct herd_sched *s, const char *id, double now_ms,
				   struct herd_sched_peer_info *out)
{
	long pi = id ? peer_find(s, id) : -1;
	if (pi < 0)
		return herd_fail(HERD_ERR_NOT_FOUND, "peer %s: unknown", id ? id : "(null)");
	const struct peer *p = &s->peers[pi];
	double succ = p->succ, speed = p->speed;
	rep_decay(&s->p, &succ, &speed, p->rep_ms, now_ms);
	*out = (struct herd_sched_peer_info){
		.live = p->live,
		.slots = p->slots,
		.running = p->running,
		.tokens_per_s = p->tps,
		.success = succ,
		.speed = speed,
		.effective_tps = p->tps * speed * fmax(succ, 0.05),
		.consecutive_failures = p->consec_fail,
		.cooling = p->cooling && p->cool_until_ms > now_ms,
		.cooling_until_ms = p->cooling ? p->cool_until_ms : 0,
		.completed = p->n_ok,
		.failed = p->n_fail,
	};
	return HERD_OK;
}

enum herd_err herd_sched_peer_restore(struct herd_sched *s, const char *id, double success,
				      double speed, uint64_t completed, uint64_t failed,
				      double observed_ms)
{
	long pi = id ? peer_find(s, id) : -1;
	if (pi < 0)
		return herd_fail(HERD_ERR_NOT_FOUND, "peer %s: unknown", id ? id : "(null)");
	if (!(success >= 0 && success <= 1) || !(speed >= 0.05 && speed <= 20) ||
	    !isfinite(observed_ms))
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "peer %s: success must be 0..1 and speed 0.05..20, got %g and %g",
				 id, success, speed);
	struct peer *p = &s->peers[pi];
	p->succ = success;
	p->speed = speed;
	p->n_ok = completed;
	p->n_fail = failed;
	p->rep_ms = observed_ms; /* the decay toward neutral counts from here */
	peer_rates(s, p);
	peer_refresh(s, (uint32_t)pi);
	return HERD_OK;
}

/* ---- jobs ---- */

static long job_find(const struct herd_sched *s, const char *id)
{
	if (!id)
		return -1;
	for (size_t i = 0; i < s->n_jobs; i++)
		if (s->jobs[i] && strcmp(s->jobs[i]->id, id) == 0)
			return (long)i;
	return -1;
}

enum herd_err herd_sched_job_add(struct herd_sched *s, const char *job_id, size_t n,
				 const double *cost)
{
	enum herd_err e = check_id("job id", job_id);
	if (e)
		return e;
	if (job_find(s, job_id) >= 0)
		return herd_fail(HERD_ERR_BAD_INPUT, "job %s: already scheduled", job_id);
	if (n < 1 || n > HERD_SCHED_MAX_JOB_FRAGMENTS)
		return herd_fail(HERD_ERR_BAD_INPUT, "job %s: fragments must be 1..%u, got %zu",
				 job_id, HERD_SCHED_MAX_JOB_FRAGMENTS, n);
	if (!cost)
		return herd_fail(HERD_ERR_BAD_INPUT, "job %s: cost: must not be NULL", job_id);
	for (size_t i = 0; i < n; i++)
		if (!pos_finite(cost[i]))
			return herd_fail(HERD_ERR_BAD_INPUT,
					 "job %s: cost[%zu]: must be a finite number > 0, got %g",
					 job_id, i, cost[i]);
	long slot = -1;
	for (size_t i = 0; i < s->n_jobs && slot < 0; i++)
		if (!s->jobs[i])
			slot = (long)i;
	if (slot < 0) {
		if (s->n_jobs >= HERD_SCHED_MAX_JOBS)
			return herd_fail(HERD_ERR_LIMIT, "jobs: at most %d at once", HERD_SCHED_MAX_JOBS);
		GROW(s->jobs, s->n_jobs, s->cap_jobs);
		slot = (long)s->n_jobs++;
	}
	struct job *j = herd_xcalloc(1, sizeof(*j));
	snprintf(j->id, sizeof(j->id), "%s", job_id);
	j->seq = s->next_seq++;
	j->n = n;
	j->f = herd_xcalloc(n, sizeof(*j->f));
	s->jobs[slot] = j;
	for (size_t i = 0; i < n; i++) {
		j->f[i].cost = cost[i];
		make_pending(s, j, (uint32_t)slot, (uint32_t)i);
	}
	return HERD_OK;
}

static long job_drop(struct herd_sched *s, long slot)
{
	struct job *j = s->jobs[slot];
	long cancelled = 0;
	for (size_t i = 0; i < j->n; i++) {
		struct frag *f = &j->f[i];
		while (f->n_running > 0) {
			queue_cancel(s, f->run[0]);
			attempt_release(s, f->run[0]);
			cancelled++;
		}
		if (f->state == F_PENDING)
			s->pend_work -= f->cost;
	}
	/* Other actions of this job still queued (a JOB_DONE, an earlier CANCEL) stay: the
	 * caller may still need to abort those attempts. */
	job_free(j);
	s->jobs[slot] = NULL;
	while (s->n_jobs && !s->jobs[s->n_jobs - 1])
		s->n_jobs--;
	return cancelled;
}

long herd_sched_job_cancel(struct herd_sched *s, const char *job_id)
{
	long slot = job_find(s, job_id);
	return slot < 0 ? -1 : job_drop(s, slot);
}

void herd_sched_job_remove(struct herd_sched *s, const char *job_id)
{
	long slot = job_find(s, job_id);
	if (slot >= 0)
		job_drop(s, slot);
}

enum herd_err herd_sched_job_progress(const struct herd_sched *s, const char *job_id,
				      size_t *done, size_t *failed, size_t *running)
{
	long slot = job_find(s, job_id);
	if (slot < 0)
		return herd_fail(HERD_ERR_NOT_FOUND, "job %s: unknown", job_id ? job_id : "(null)");
	const struct job *j = s->jobs[slot];
	if (done)
		*done = j->n_done;
	if (failed)
		*failed = j->n_failed;
	if (running)
		*running = j->n_running;
	return HERD_OK;
}

struct strbuf {
	char *p;
	size_t len, cap;
};

static void sb_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct strbuf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		HERD_ASSERT(n >= 0);
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = 2 * b->cap + (size_t)n;
		b->p = herd_xrealloc(b->p, b->cap);
	}
}

const char *herd_sched_job_error(struct herd_sched *s, const char *job_id)
{
	long slot = job_find(s, job_id);
	if (slot < 0 || s->jobs[slot]->n_failed == 0)
		return NULL;
	struct job *j = s->jobs[slot];
	struct strbuf b = {.p = herd_xmalloc(256), .cap = 256};
	b.p[0] = 0;
	for (size_t i = 0; i < j->n; i++) {
		const struct frag *f = &j->f[i];
		if (f->state != F_FAILED)
			continue;
		sb_printf(&b, "%sfragment %zu failed after %d attempt%s (", b.len ? "; " : "", i,
			  f->n_failed, f->n_failed == 1 ? "" : "s");
		for (int c = 0; c < f->n_causes; c++)
			sb_printf(&b, "%s[%d] %s", c ? ", " : "", c + 1, f->causes[c]);
		sb_printf(&b, ")");
	}
	free(j->error);
	j->error = b.p;
	return b.p;
}

/* ---- results ---- */

bool herd_sched_result(struct herd_sched *s, uint64_t attempt, double now_ms, bool ok,
		       const char *reason)
{
	uint32_t slot;
	if (!attempt_lookup(s, attempt, &slot))
		return false;
	if (now_ms > s->now)
		s->now = now_ms;
	struct attempt *a = &s->att[slot];
	struct job *j = s->jobs[a->job];
	struct frag *f = &j->f[a->frag];
	struct peer *p = &s->peers[a->peer];
	double dur_ms = fmax(s->now - a->start_ms, 1e-3);
	if (!ok) {
		attempt_fail(s, slot, true, false, NAN, reason && *reason ? reason : "failed");
		return false;
	}
	p->n_ok++;
	p->consec_fail = 0;
	rep_observe(s, p, 1, (f->cost * 1000.0 / dur_ms) / p->tps);
	median_add(j, dur_ms);
	f->state = F_DONE;
	j->n_done++;
	attempt_release(s, slot);
	while (f->n_running > 0) { /* the slower copies lose */
		queue_cancel(s, f->run[0]);
		attempt_release(s, f->run[0]);
	}
	if ((double)j->n_done >= s->p.straggler_done_frac * (double)j->n)
		s->straggler_dirty = true; /* the median moved */
	job_check_end(s, j);
	return true;
}

/* ---- poll ---- */

static void refresh_aggregates(struct herd_sched *s)
{
	if (!s->agg_dirty)
		return;
	s->cap_total = s->s_max = 0;
	s->by_eff_valid = false;
	for (size_t i = 0; i < s->n_peers; i++) {
		const struct peer *p = &s->peers[i];
		if (!p->live || p->cooling)
			continue;
		s->cap_total += p->slots * p->eff;
		s->s_max = fmax(s->s_max, p->eff);
	}
	s->agg_dirty = false;
}

/* When each peer is expected to have a slot free: now if it has one, else the earliest
 * expected end of its running attempts. An overdue attempt may be stuck: its slot is sure
 * to free only at its deadline (a stalled peer must not look about to be free). One pass over
 * the running attempts, done at most once per poll and only near the end of the work. */
static void compute_free_at(struct herd_sched *s)
{
	if (s->free_at_valid)
		return;
	for (size_t i = 0; i < s->n_peers; i++)
		s->free_at[i] = s->peers[i].running < s->peers[i].slots ? s->now : INFINITY;
	for (size_t i = 0; i < s->n_run; i++) {
		const struct attempt *a = &s->att[s->run[i]];
		const struct peer *p = &s->peers[a->peer];
		double end = a->start_ms + 1000.0 * s->jobs[a->job]->f[a->frag].cost / p->pace;
		if (end <= s->now)
			end = a->deadline_ms;
		s->free_at[a->peer] = fmin(s->free_at[a->peer], end);
	}
	s->free_at_valid = true;
}

/* The earliest a peer faster than `pi` could finish `cost` tokens, if it took them as
 * soon as one of its slots frees; INFINITY when there is no faster peer. */
static double faster_finish(struct herd_sched *s, uint32_t pi, double cost)
{
	compute_free_at(s);
	double best = INFINITY, mine = s->peers[pi].eff;
	for (size_t q = 0; q < s->n_peers; q++) {
		const struct peer *p = &s->peers[q];
		if (q == pi || !p->live || p->cooling || p->eff <= mine)
			continue;
		best = fmin(best, s->free_at[q] + 1000.0 * cost / p->eff);
	}
	return best;
}

static int by_eff_cmp(const void *a, const void *b)
{
	double x = ((const struct by_eff *)a)->eff, y = ((const struct by_eff *)b)->eff;
	return (x < y) - (x > y);
}

/* sum of slots*eff over the live, not cooling peers faster than eff. Sorted once per change
 * of the peers' standing, and only when the tail rule needs it. */
static double faster_capacity(struct herd_sched *s, double eff)
{
	refresh_aggregates(s);
	if (!s->by_eff_valid) {
		if (s->cap_by_eff < s->n_peers) {
			s->cap_by_eff = s->n_peers;
			s->by_eff = herd_xrealloc(s->by_eff, s->cap_by_eff * sizeof(*s->by_eff));
		}
		s->n_by_eff = 0;
		for (size_t i = 0; i < s->n_peers; i++) {
			const struct peer *p = &s->peers[i];
			if (p->live && !p->cooling)
				s->by_eff[s->n_by_eff++] =
				    (struct by_eff){p->eff, p->slots * p->eff};
		}
		qsort(s->by_eff, s->n_by_eff, sizeof(*s->by_eff), by_eff_cmp);
		for (size_t i = 1; i < s->n_by_eff; i++)
			s->by_eff[i].cap += s->by_eff[i - 1].cap;
		s->by_eff_valid = true;
	}
	size_t lo = 0, hi = s->n_by_eff; /* first entry not faster than eff */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->by_eff[mid].eff > eff)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? s->by_eff[lo - 1].cap : 0;
}

/* The tail rule: a free peer takes the fragment only if it would finish it no later than
 * the rest of the swarm could. While much work is pending (it takes the whole swarm longer
 * to drain it than this peer needs for the fragment) every peer takes work; near the end a
 * slow peer leaves a fragment to a faster peer that is expected to free up and finish it
 * sooner, so the job does not wait on a slow peer's last fragment. */
static bool tail_ok(struct herd_sched *s, uint32_t pi, double cost)
{
	refresh_aggregates(s);
	const struct peer *p = &s->peers[pi];
	double mine = cost / p->eff;
	if (s->cap_total <= 0 || p->eff >= s->s_max)
		return true;
	double rest = fmax(s->pend_work - cost, 0);
	if (rest / s->cap_total + cost / s->s_max >= mine)
		return true;
	/* The faster peers alone would still be busy with the rest of the pending work when
	 * this peer is done: leaving the fragment to them would not end the job sooner. */
	double cap_faster = faster_capacity(s, p->eff);
	if (cap_faster > 0 && rest / cap_faster + cost / s->s_max >= mine)
		return true;
	return s->now + 1000.0 * mine <= faster_finish(s, pi, cost) * (1 + 1e-12);
}

/* A fragment that already failed is not given to a peer it failed on, nor to one whose
 * success EWMA is below RETRY_MIN_SUCCESS: failing peers free their slots fastest, and
 * would otherwise catch retries again and again. */
#define RETRY_MIN_SUCCESS 0.9

static bool failed_on(const struct frag *f, uint32_t pi);

static bool avoid(const struct herd_sched *s, const struct frag *f, uint32_t pi)
{
	return f->n_causes > 0 && (s->peers[pi].succ < RETRY_MIN_SUCCESS || failed_on(f, pi));
}

static bool failed_on(const struct frag *f, uint32_t pi)
{
	for (int c = 0; c < f->n_causes; c++)
		if (f->failed_on[c] == pi)
			return true;
	return false;
}

/* Whether some peer could take the fragment without being avoided: live, not cooling, not
 * failed on, success not below RETRY_MIN_SUCCESS. Without one, avoidance would only stall
 * the fragment (every peer set aside, nothing due: the job hung when all peers failed), so
 * the fragment then goes to whichever peer is free. Stops at the first such peer. */
static bool has_untried(const struct herd_sched *s, const struct frag *f)
{
	for (size_t i = 0; i < s->n_peers; i++) {
		const struct peer *p = &s->peers[i];
		if (p->live && !p->cooling && !avoid(s, f, (uint32_t)i))
			return true;
	}
	return false;
}

static void poll_timeouts(struct herd_sched *s)
{
	for (size_t i = s->n_run; i-- > 0;) {
		if (i >= s->n_run)
			continue;
		uint32_t slot = s->run[i];
		struct attempt *a = &s->att[slot];
		if (a->deadline_ms > s->now)
			continue;
		double el = s->now - a->start_ms;
		double cost = s->jobs[a->job]->f[a->frag].cost;
		struct peer *p = &s->peers[a->peer];
		char why[160];
		snprintf(why, sizeof(why), "timed out after %.0f ms (expected %.0f ms)", el,
			 1000.0 * cost / p->pace);
		/* It managed at most cost/elapsed: a bound on its speed, fed to the EWMA. */
		attempt_fail(s, slot, true, true, (cost * 1000.0 / el) / p->tps, why);
	}
}

static void poll_cooling(struct herd_sched *s)
{
	size_t live_cooling = 0;
	for (size_t i = 0; i < s->n_cooling;) {
		uint32_t pi = s->cooling[i];
		struct peer *p = &s->peers[pi];
		if (p->live && p->cool_until_ms > s->now) {
			live_cooling++;
			i++;
			continue;
		}
		p->cooling = false;
		s->cooling[i] = s->cooling[--s->n_cooling];
		rep_decay(&s->p, &p->succ, &p->speed, p->rep_ms, s->now);
		p->rep_ms = s->now;
		peer_rates(s, p);
		peer_refresh(s, pi);
	}
	/* Avoided peers are still used when nothing else is left: end the earliest cooldown. */
	if (s->n_live > 0 && live_cooling == s->n_live) {
		size_t best = 0;
		for (size_t i = 1; i < s->n_cooling; i++)
			if (s->peers[s->cooling[i]].cool_until_ms <
			    s->peers[s->cooling[best]].cool_until_ms)
				best = i;
		s->peers[s->cooling[best]].cool_until_ms = s->now;
		poll_cooling(s);
	}
}

static void poll_waiting(struct herd_sched *s)
{
	for (size_t i = 0; i < s->n_wait;) {
		struct witem w = s->wait[i];
		struct job *j = job_at(s, w.job, w.seq);
		if (j && j->f[w.frag].state == F_WAITING && j->f[w.frag].ready_ms > s->now) {
			i++;
			continue;
		}
		s->wait[i] = s->wait[--s->n_wait];
		if (j && j->f[w.frag].state == F_WAITING)
			make_pending(s, j, w.job, w.frag);
	}
}

static void poll_no_peers(struct herd_sched *s)
{
	if (s->n_live > 0 || (!pend_peek(s) && s->n_wait == 0)) {
		s->no_peer_since = -1;
		return;
	}
	if (s->no_peer_since < 0)
		s->no_peer_since = s->now;
	if (s->now - s->no_peer_since < s->p.no_peers_grace_ms)
		return;
	for (size_t ji = 0; ji < s->n_jobs; ji++) {
		struct job *j = s->jobs[ji];
		if (!j)
			continue;
		for (size_t i = 0; i < j->n; i++) {
			struct frag *f = &j->f[i];
			if (f->state != F_PENDING && f->state != F_WAITING)
				continue;
			if (f->state == F_PENDING)
				s->pend_work -= f->cost;
			add_cause(f, UINT32_MAX, "(none)", "no live peer for %.0f ms",
				  s->now - s->no_peer_since);
			f->state = F_FAILED;
			j->n_failed++;
		}
		job_check_end(s, j);
	}
	s->n_wait = 0;
	s->no_peer_since = -1;
}

static size_t drain(struct herd_sched *s, struct herd_sched_action *out, size_t nout, size_t max)
{
	while (nout < max && s->q_head < s->q_n)
		out[nout++] = s->q[s->q_head++];
	return nout;
}

static bool runs_on(const struct herd_sched *s, const struct frag *f, uint32_t pi)
{
	for (int k = 0; k < f->n_running; k++)
		if (s->att[f->run[k]].peer == pi)
			return true;
	return false;
}

/* Best free peer not already running the fragment, or UINT32_MAX. Looks at the top three
 * levels of the max-heap: with at most MAX_COPIES peers excluded, the best other is there. */
static uint32_t free_peer_for(const struct herd_sched *s, const struct frag *f)
{
	uint32_t best = UINT32_MAX;
	for (size_t i = 0; i < s->n_fheap && i < 15; i++) {
		uint32_t pi = s->fheap[i];
		if (!runs_on(s, f, pi) && (best == UINT32_MAX || fh_before(s, pi, best)))
			best = pi;
	}
	return best;
}

/* When the copy in attempt slot `slot` is expected to end. An overdue attempt may be
 * stuck: then it ends at its deadline and the fragment runs again on a fast peer. */
static double attempt_eta(struct herd_sched *s, uint32_t slot)
{
	const struct attempt *a = &s->att[slot];
	double cost = s->jobs[a->job]->f[a->frag].cost;
	double eta = a->start_ms + 1000.0 * cost / s->peers[a->peer].pace;
	if (eta <= s->now)
		eta = a->deadline_ms + 1000.0 * cost / fmax(s->s_max, 1e-9);
	return eta;
}

static size_t poll_assign(struct herd_sched *s, struct herd_sched_action *out, size_t nout,
			  size_t max)
{
	uint32_t aside[64]; /* peers skipped this round: every near fragment failed on them */
	size_t n_aside = 0;
	while (nout < max && s->n_fheap > 0) {
		const struct pitem *top = pend_peek(s);
		if (!top)
			break;
		uint32_t pi = s->fheap[0];
		if (!tail_ok(s, pi, top->cost))
			break;
		struct pitem it = *top;
		struct frag *f = &s->jobs[it.job]->f[it.frag];
		if (avoid(s, f, pi) && has_untried(s, f)) {
			/* Prefer a peer it has not failed on: give this peer another fragment. */
			struct pitem held[SKIP_LOOKAHEAD];
			size_t n_held = 0;
			bool found = false;
			while (n_held < SKIP_LOOKAHEAD && (top = pend_peek(s))) {
				struct pitem cand = *top;
				pend_pop(s);
				held[n_held++] = cand;
				struct frag *g = &s->jobs[cand.job]->f[cand.frag];
				if (!avoid(s, g, pi) || !has_untried(s, g)) {
					it = held[--n_held];
					found = true;
					break;
				}
			}
			for (size_t k = 0; k < n_held; k++)
				pend_push(s, held[k]);
			if (!found) {
				if (n_aside == sizeof(aside) / sizeof(aside[0]))
					break;
				aside[n_aside++] = pi;
				s->peers[pi].aside = true; /* out of the heap for this round */
				peer_refresh(s, pi);
				continue;
			}
			start_attempt(s, it.job, it.frag, pi, false, &out[nout++]);
			continue;
		}
		pend_pop(s);
		start_attempt(s, it.job, it.frag, pi, false, &out[nout++]);
	}
	for (size_t k = 0; k < n_aside; k++) {
		s->peers[aside[k]].aside = false;
		peer_refresh(s, aside[k]);
	}
	return nout;
}

/* Backups. A fragment's oldest copy is a straggler once it runs past STUCK_FACTOR × its
 * expected time (it may be stuck), or, once straggler_done_frac of its job is done, past
 * straggler_factor × the median duration of the job's completed attempts. It then gets a
 * copy on the best idle peer, if that copy is expected to finish clearly before the best
 * copy running; near the end that can happen again when a faster peer goes idle (at most
 * MAX_COPIES running, MAX_BACKUPS in all). The first valid result wins. */
static size_t poll_stragglers(struct herd_sched *s, struct herd_sched_action *out, size_t nout,
			      size_t max)
{
	if (s->n_fheap == 0 || (s->now < s->straggler_wake && !s->straggler_dirty))
		return nout;
	s->straggler_wake = INFINITY;
	s->straggler_dirty = false;
	refresh_aggregates(s);
	size_t n = s->n_run; /* backups started below are appended; no need to look at them */
	for (size_t i = 0; i < n && nout < max && s->n_fheap > 0; i++) {
		uint32_t slot = s->run[i];
		struct attempt *a = &s->att[slot];
		struct job *j = s->jobs[a->job];
		struct frag *f = &j->f[a->frag];
		if (f->run[0] != slot || f->n_backups >= MAX_BACKUPS || f->n_running >= MAX_COPIES)
			continue;
		double expected_ms = 1000.0 * f->cost / s->peers[a->peer].pace;
		double due = a->start_ms + STUCK_FACTOR * expected_ms;
		bool tail = (double)j->n_done >= s->p.straggler_done_frac * (double)j->n && j->lo.n > 0;
		if (tail)
			due = fmin(due, a->start_ms + s->p.straggler_factor * median(j));
		if (due > s->now) {
			s->straggler_wake = fmin(s->straggler_wake, due);
			continue;
		}
		uint32_t pi = free_peer_for(s, f);
		if (pi == UINT32_MAX)
			continue;
		double eta = INFINITY;
		for (int k = 0; k < f->n_running; k++)
			eta = fmin(eta, attempt_eta(s, f->run[k]));
		/* While pending work keeps every slot busy past the straggler's expected end, a
		 * copy would only displace that work: the swarm does not wait on it yet. */
		if (s->cap_total > 0 && s->now + 1000.0 * s->pend_work / s->cap_total >= eta) {
			s->straggler_dirty = true;
			continue;
		}
		double mine = s->now + 1000.0 * f->cost / s->peers[pi].eff;
		/* Clearly first: saves at least a quarter of the time left. */
		if (mine >= eta - 0.25 * (eta - s->now)) {
			s->straggler_dirty = true; /* a better peer may free up at the next event */
			continue;
		}
		f->n_backups++;
		start_attempt(s, a->job, a->frag, pi, true, &out[nout++]);
	}
	return nout;
}

size_t herd_sched_poll(struct herd_sched *s, double now_ms, struct herd_sched_action *out,
		       size_t max)
{
	if (now_ms > s->now)
		s->now = now_ms;
	s->free_at_valid = false;
	poll_timeouts(s);
	poll_cooling(s);
	poll_waiting(s);
	poll_no_peers(s);
	size_t nout = drain(s, out, 0, max);
	if (s->q_head < s->q_n)
		return nout;
	/* Backups first: a suspect attempt's copy goes ahead of fresh work, or the job's
	 * end would wait for its timeout. */
	nout = poll_stragglers(s, out, nout, max);
	nout = poll_assign(s, out, nout, max);
	return nout;
}

double herd_sched_next_deadline(const struct herd_sched *s)
{
	if (s->q_head < s->q_n)
		return s->now;
	/* A straggler already due waits for a free slot: that comes with an event. */
	double t = s->straggler_wake > s->now && s->n_run ? s->straggler_wake : INFINITY;
	for (size_t i = 0; i < s->n_run; i++)
		t = fmin(t, s->att[s->run[i]].deadline_ms);
	for (size_t i = 0; i < s->n_wait; i++) {
		const struct witem *w = &s->wait[i];
		const struct job *j = job_at(s, w->job, w->seq);
		if (j && j->f[w->frag].state == F_WAITING)
			t = fmin(t, j->f[w->frag].ready_ms);
	}
	for (size_t i = 0; i < s->n_cooling; i++)
		t = fmin(t, s->peers[s->cooling[i]].cool_until_ms);
	if (s->no_peer_since >= 0)
		t = fmin(t, s->no_peer_since + s->p.no_peers_grace_ms);
	return t;
}

/* HERD_SCHED_FRAGMENTS_PER_SLOT per slot (no slots known counts as one), at most `limit`,
 * within 1..HERD_MAX_FRAGMENTS. */
static size_t count_for_slots(size_t total_slots, size_t limit)
{
	size_t slots = total_slots ? total_slots : 1;
	size_t n = slots > HERD_MAX_FRAGMENTS ? HERD_MAX_FRAGMENTS
					      : slots * HERD_SCHED_FRAGMENTS_PER_SLOT;
	if (limit < n)
		n = limit;
	if (n > HERD_MAX_FRAGMENTS)
		n = HERD_MAX_FRAGMENTS;
	return n ? n : 1;
}

size_t herd_sched_fragment_count(size_t input_tokens, size_t total_slots)
{
	return count_for_slots(total_slots, input_tokens / HERD_SCHED_MIN_FRAGMENT_TOKENS);
}

size_t herd_sched_array_fragment_count(size_t n_items, size_t total_slots)
{
	return count_for_slots(total_slots, n_items);
}
