/* sched_sim — a discrete-event simulation that drives the real scheduler (src/swarm/sched.c)
 * exactly as a coordinator would: poll after every event and at next_deadline.
 *
 * Swarm: peers with log-normal per-slot speeds, 1..4 slots, claims off by a log-normal
 * factor; a share of them broken (half fail most attempts quickly, half stall silently on
 * most attempts). Main workload: text jobs of 1-4 M tokens, cut by herd_sched_fragment_count
 * as the node cuts them (so sizing and scheduling are judged together); then, for comparison,
 * one job of 20,000 fragments with log-uniform costs, and two peers. Prints makespan against
 * the ideal (total work / capacity of the healthy peers), efficiency with its min and max,
 * retries, backups, when the pending work ran out, work lost on copies that did not count,
 * and the scheduler's own cost per poll: medians over the seeds. docs/scheduling.md has the
 * table.
 *
 * usage: bench_sched_sim [peers] [jobs] [seeds]
 * SIM_TRACE=1: progress every 20 s, with the share of the healthy capacity at work. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swarm.h"

static uint64_t rng_state;

static double urand(void)
{
	rng_state += 0x9e3779b97f4a7c15ull; /* splitmix64 */
	uint64_t z = rng_state;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return ((z >> 11) + 0.5) * 0x1.0p-53;
}

static double nrand(void)
{
	return sqrt(-2 * log(urand())) * cos(2 * M_PI * urand());
}

enum kind { HEALTHY, ERRORS, STALLS };

struct speer {
	char id[32];
	double tps; /* true, per slot */
	int slots;
	enum kind kind;
};

struct ev {
	double t;
	uint64_t att;
	bool ok;
};

struct evheap {
	struct ev *v;
	size_t n, cap;
};

static void ev_push(struct evheap *h, struct ev e)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 1024;
		h->v = realloc(h->v, h->cap * sizeof(*h->v));
	}
	size_t i = h->n++;
	while (i && h->v[(i - 1) / 2].t > e.t) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = e;
}

static struct ev ev_pop(struct evheap *h)
{
	struct ev top = h->v[0], x = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1].t < h->v[c].t)
			c++;
		if (h->v[c].t >= x.t)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = x;
	return top;
}

struct outcome {
	double makespan_s, ideal_s, eff, us_per_poll, us_per_start;
	double drain_s;	  /* the last start of a fresh fragment (not a backup) */
	double lost_frac; /* healthy peers' work on copies that did not count / total work */
	long starts, retries, backups, timeouts, cancels;
	bool done;
};

#define MAX_JOBS 16

struct sim {
	struct speer *p;
	int np;
	int nj;
	double *cost[MAX_JOBS]; /* per job: tokens of each fragment */
	size_t nf[MAX_JOBS];
};

static int peer_of(const struct sim *m, const char *id)
{
	(void)m;
	return atoi(id + 1); /* ids are "p<index>" */
}

static int job_of(const char *id)
{
	return atoi(id + 1); /* ids are "j<index>" */
}

static struct outcome run(const struct sim *m)
{
	struct outcome o = {0};
	struct herd_sched *s = herd_sched_new(NULL);
	double work = 0, cap = 0;
	for (int i = 0; i < m->np; i++) {
		/* Claims are off by a log-normal factor (sigma 0.2): measured, not exact. */
		double claim = m->p[i].tps * exp(0.2 * nrand());
		if (herd_sched_peer_upsert(s, m->p[i].id, m->p[i].slots, claim) != HERD_OK) {
			fprintf(stderr, "upsert: %s\n", herd_last_error());
			exit(1);
		}
		if (m->p[i].kind == HEALTHY)
			cap += m->p[i].slots * m->p[i].tps;
	}
	size_t nf_all = 0;
	for (int k = 0; k < m->nj; k++) {
		char jid[16];
		snprintf(jid, sizeof(jid), "j%d", k);
		for (size_t i = 0; i < m->nf[k]; i++)
			work += m->cost[k][i];
		nf_all += m->nf[k];
		if (herd_sched_job_add(s, jid, m->nf[k], m->cost[k]) != HERD_OK) {
			fprintf(stderr, "job: %s\n", herd_last_error());
			exit(1);
		}
	}
	int jobs_done = 0;
	size_t cap_at = 0;
	double *at_start = NULL, lost = 0; /* by attempt slot: start time, -1 when over */
	int *at_peer = NULL;
	struct evheap ev = {0};
	enum { MAXA = 256 };
	struct herd_sched_action a[MAXA];
	double now = 0, sched_ns = 0;
	long polls = 0;
	for (;;) {
		size_t n;
		do {
			uint64_t t0 = herd_now_ns();
			n = herd_sched_poll(s, now, a, MAXA);
			sched_ns += (double)(herd_now_ns() - t0);
			polls++;
			for (size_t i = 0; i < n; i++) {
				switch (a[i].kind) {
				case HERD_SCHED_START: {
					const struct speer *p = &m->p[peer_of(m, a[i].peer_id)];
					double d = 1000.0 *
						   m->cost[job_of(a[i].job_id)][a[i].fragment] /
						   p->tps * exp(0.1 * nrand());
					o.starts++;
					o.backups += a[i].backup;
					if (!a[i].backup)
						o.drain_s = now / 1000;
					size_t k = (size_t)(a[i].attempt & 0xffffffffu);
					if (k >= cap_at) {
						size_t nc = 2 * k + 16;
						at_start =
						    realloc(at_start, nc * sizeof(*at_start));
						at_peer = realloc(at_peer, nc * sizeof(*at_peer));
						cap_at = nc;
					}
					at_start[k] = now;
					at_peer[k] = peer_of(m, a[i].peer_id);
					if (p->kind == ERRORS && urand() < 0.8)
						ev_push(&ev, (struct ev){now + 0.2 * d, a[i].attempt, false});
					else if (p->kind == STALLS && urand() < 0.8)
						; /* never answers */
					else
						ev_push(&ev, (struct ev){now + d, a[i].attempt, true});
					break;
				}
				case HERD_SCHED_CANCEL: {
					o.cancels++;
					size_t k = (size_t)(a[i].attempt & 0xffffffffu);
					if (k < cap_at && m->p[at_peer[k]].kind == HEALTHY)
						lost += (now - at_start[k]) / 1000 *
							m->p[at_peer[k]].tps;
				} break;
				case HERD_SCHED_JOB_DONE:
					o.done = ++jobs_done == m->nj;
					break;
				case HERD_SCHED_JOB_FAILED:
					fprintf(stderr, "job failed: %s\n",
						herd_sched_job_error(s, a[i].job_id));
					o.done = false;
					goto out;
				}
			}
		} while (n == MAXA);
		if (o.done)
			break;
		uint64_t t0 = herd_now_ns();
		double t = herd_sched_next_deadline(s);
		sched_ns += (double)(herd_now_ns() - t0);
		if (ev.n && ev.v[0].t < t)
			t = ev.v[0].t;
		if (!isfinite(t)) {
			fprintf(stderr, "stuck at %.0f ms\n", now);
			break;
		}
		now = fmax(now, t);
		if (getenv("SIM_TRACE")) {
			static double next_print;
			if (now < 1)
				next_print = 0;
			if (now >= next_print) {
				size_t dn = 0, fl, rn = 0;
				char jid[16];
				snprintf(jid, sizeof(jid), "j%d", m->nj - 1);
				herd_sched_job_progress(s, jid, &dn, &fl, &rn);
				fprintf(stderr,
					"t=%.0f s jobs done %d, last: done %zu running %zu starts "
					"%ld backups %ld\n",
					now / 1000, jobs_done, dn, rn, o.starts, o.backups);
				next_print = now + 20000;
				{ /* the share of the healthy capacity at work (backups included) */
					double busy = 0, all = 0;
					int cool = 0;
					for (int q = 0; q < m->np; q++) {
						struct herd_sched_peer_info pi;
						herd_sched_peer_info(s, m->p[q].id, now, &pi);
						cool += pi.cooling;
						if (m->p[q].kind != HEALTHY)
							continue;
						all += m->p[q].slots * m->p[q].tps;
						busy += pi.running * m->p[q].tps;
					}
					fprintf(stderr,
						"  healthy capacity busy %.2f, cooling %d\n",
						busy / all, cool);
				}
			}
		}
		while (ev.n && ev.v[0].t <= now) {
			struct ev e = ev_pop(&ev);
			uint64_t t1 = herd_now_ns();
			herd_sched_result(s, e.att, now, e.ok, e.ok ? NULL : "simulated error");
			sched_ns += (double)(herd_now_ns() - t1);
		}
	}
out:
	o.makespan_s = now / 1000;
	o.ideal_s = work / cap;
	o.eff = o.ideal_s / o.makespan_s;
	o.retries = o.starts - (long)nf_all - o.backups;
	o.lost_frac = lost / work;
	free(at_start);
	free(at_peer);
	o.us_per_poll = sched_ns / 1000 / (double)polls;
	o.us_per_start = sched_ns / 1000 / (double)o.starts;
	free(ev.v);
	herd_sched_free(s);
	return o;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double med(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void report(const char *name, struct outcome *o, int n)
{
	double v[9][64];
	int done = 0;
	for (int i = 0; i < n; i++) {
		double x[9] = {o[i].makespan_s,	     o[i].ideal_s,	   o[i].eff,
			       (double)o[i].retries, (double)o[i].backups, o[i].us_per_poll,
			       o[i].us_per_start,    o[i].drain_s,	   o[i].lost_frac};
		for (int k = 0; k < 9; k++)
			v[k][i] = x[k];
		done += o[i].done;
	}
	double e_med = med(v[2], n), e_min = v[2][0], e_max = v[2][n - 1]; /* sorted by med() */
	printf("%-34s seeds %d (done %d)  makespan %.1f s  ideal %.1f s  efficiency %.3f "
	       "(min %.3f, max %.3f)  retries %.0f  backups %.0f  drained %.1f s  lost %.1f%%  "
	       "%.2f us/poll  %.2f us/start\n",
	       name, n, done, med(v[0], n), med(v[1], n), e_med, e_min, e_max, med(v[3], n),
	       med(v[4], n), med(v[7], n), 100 * med(v[8], n), med(v[5], n), med(v[6], n));
}

/* 1..4 slots, per-slot speed log-normal (median 20 tok/s, sigma 0.6); 2.5 % of the peers
 * fail most attempts, 2.5 % stall on most. */
static void make_swarm(struct sim *m, int np, int *total_slots)
{
	m->np = np;
	m->p = calloc((size_t)np, sizeof(*m->p));
	*total_slots = 0;
	for (int i = 0; i < np; i++) {
		snprintf(m->p[i].id, sizeof(m->p[i].id), "p%d", i);
		m->p[i].tps = 20 * exp(0.6 * nrand());
		m->p[i].slots = 1 + (int)(urand() * 4);
		double r = urand();
		m->p[i].kind = r < 0.025 ? ERRORS : r < 0.05 ? STALLS : HEALTHY;
		*total_slots += m->p[i].slots;
	}
}

/* A text job of `tokens` cut as the node cuts it: herd_sched_fragment_count fragments of
 * equal bytes, so of about equal tokens (the bytes per token of real text vary: sigma 0.1). */
static void add_text_job(struct sim *m, double tokens, int total_slots)
{
	int k = m->nj++;
	size_t n = herd_sched_fragment_count((size_t)tokens, (size_t)total_slots);
	m->nf[k] = n;
	m->cost[k] = malloc(n * sizeof(double));
	for (size_t i = 0; i < n; i++)
		m->cost[k][i] = tokens / (double)n * exp(0.1 * nrand());
}

static void free_sim(struct sim *m, bool peers)
{
	for (int k = 0; k < m->nj; k++)
		free(m->cost[k]);
	if (peers)
		free(m->p);
}

int main(int argc, char **argv)
{
	int np = argc > 1 ? atoi(argv[1]) : 1000;
	int nj = argc > 2 ? atoi(argv[2]) : 4;
	int seeds = argc > 3 ? atoi(argv[3]) : 5;
	if (np < 1 || np > 4000 || nj < 1 || nj > MAX_JOBS || seeds < 1 || seeds > 64) {
		fprintf(stderr,
			"usage: bench_sched_sim [peers 1..4000] [jobs 1..%d] [seeds 1..64]\n",
			MAX_JOBS);
		return 2;
	}
	herd_log_set_level(HERD_LOG_WARN);
	struct outcome o[64];
	char name[64];

	/* The large swarm, 5 % broken: text jobs of 1..4 M tokens, sized by the node's rule. */
	for (int seed = 0; seed < seeds; seed++) {
		rng_state = 1000 + (uint64_t)seed;
		struct sim m = {0};
		int slots;
		make_swarm(&m, np, &slots);
		double tokens[MAX_JOBS];
		for (int k = 0; k < nj; k++) /* drawn first: the same jobs whatever the sizing */
			tokens[k] = 1e6 * (1 + 3 * urand());
		for (int k = 0; k < nj; k++)
			add_text_job(&m, tokens[k], slots);
		o[seed] = run(&m);
		free_sim(&m, true);
	}
	snprintf(name, sizeof(name), "%d peers, %d text jobs 1-4M tok", np, nj);
	report(name, o, seeds);

	/* The same swarm, one job of 20,000 fragments of 200..2,000 tokens (log-uniform). */
	for (int seed = 0; seed < seeds; seed++) {
		rng_state = 1000 + (uint64_t)seed;
		struct sim m = {0};
		int slots;
		make_swarm(&m, np, &slots);
		m.nj = 1;
		m.nf[0] = 20000;
		m.cost[0] = malloc(m.nf[0] * sizeof(double));
		for (size_t i = 0; i < m.nf[0]; i++)
			m.cost[0][i] = 200 * pow(10, urand());
		o[seed] = run(&m);
		free_sim(&m, true);
	}
	snprintf(name, sizeof(name), "%d peers, 1 job of 20,000 frags", np);
	report(name, o, seeds);

	/* Two nodes, one four times faster. */
	for (int seed = 0; seed < seeds; seed++) {
		rng_state = 2000 + (uint64_t)seed;
		struct speer p[2] = {{"p0", 40, 1, HEALTHY}, {"p1", 10, 1, HEALTHY}};
		struct sim m = {.p = p, .np = 2, .nj = 1, .nf = {40}};
		m.cost[0] = malloc(40 * sizeof(double));
		for (int i = 0; i < 40; i++)
			m.cost[0][i] = 200 * pow(10, urand());
		o[seed] = run(&m);
		free_sim(&m, false);
	}
	report("2 peers (40 vs 10 tok/s), 40 frags", o, seeds);
	return 0;
}
