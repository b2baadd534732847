/* standing — what this node has learned about each peer across jobs: the scheduler's
 * success and speed EWMAs, completed / failed counts and when the peer was last observed.
 * Each job's scheduler is new (dispatch.c); it starts from this standing and hands it back at
 * the job's end, so a node that failed a job is still avoided by the next one (and forgiven
 * with time, by the scheduler's own decay). Also the scheduler knobs read from the
 * environment (HERD_SCHED_*).
 * The one thing to know: the table is small (peers this node dispatched to) and guarded by
 * one mutex; every entry point takes it. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"

struct standing_entry {
	char id[HERD_SCHED_MAX_ID + 1];
	struct herd_sched_peer_info info;
	double observed_ms; /* herd_now_ms of the last save */
};

struct herd_standing {
	pthread_mutex_t mu;
	struct standing_entry *v;
	size_t n, cap;
};

struct herd_standing *herd_standing_new(void)
{
	struct herd_standing *t = herd_xcalloc(1, sizeof *t);
	pthread_mutex_init(&t->mu, NULL);
	return t;
}

void herd_standing_free(struct herd_standing *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t->v);
	free(t);
}

static struct standing_entry *find_locked(struct herd_standing *t, const char *id)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].id, id))
			return &t->v[i];
	return NULL;
}

void herd_standing_restore(struct herd_standing *t, struct herd_sched *s, const char *id)
{
	pthread_mutex_lock(&t->mu);
	struct standing_entry *e = find_locked(t, id);
	if (e)
		herd_sched_peer_restore(s, id, e->info.success, e->info.speed, e->info.completed,
					e->info.failed, e->observed_ms);
	pthread_mutex_unlock(&t->mu);
}

double herd_standing_save(struct herd_standing *t, const struct herd_sched *s, const char *id,
			  double now_ms)
{
	struct herd_sched_peer_info info;
	if (herd_sched_peer_info(s, id, now_ms, &info))
		return 1;
	pthread_mutex_lock(&t->mu);
	struct standing_entry *e = find_locked(t, id);
	if (!e && t->n < HERD_MAX_PEERS && strlen(id) <= HERD_SCHED_MAX_ID) {
		if (t->n == t->cap) {
			t->cap = t->cap ? 2 * t->cap : 16;
			t->v = herd_xrealloc(t->v, t->cap * sizeof *t->v);
		}
		e = &t->v[t->n++];
		memset(e, 0, sizeof *e);
		herd_node_copy(e->id, sizeof e->id, id);
	}
	if (e) {
		e->info = info;
		e->observed_ms = now_ms;
	}
	pthread_mutex_unlock(&t->mu);
	return info.success * fmin(info.speed, 1);
}

json_t *herd_standing_json(struct herd_standing *t, const char *id, double *reputation)
{
	json_t *j;
	pthread_mutex_lock(&t->mu);
	struct standing_entry *e = id ? find_locked(t, id) : NULL;
	if (e) {
		*reputation = e->info.success * fmin(e->info.speed, 1);
		j = json_pack("{s:f, s:f, s:I, s:I, s:f}", "success", e->info.success, "speed",
			      e->info.speed, "completed", (json_int_t)e->info.completed, "failed",
			      (json_int_t)e->info.failed, "effective_tps", e->info.effective_tps);
	} else {
		*reputation = 1;
		j = json_pack("{s:f, s:f, s:i, s:i, s:n}", "success", 1.0, "speed", 1.0,
			      "completed", 0, "failed", 0, "effective_tps");
	}
	pthread_mutex_unlock(&t->mu);
	return j;
}

void herd_standing_annotate(struct herd_standing *t, json_t *nodes)
{
	size_t i;
	json_t *node;
	json_array_foreach(nodes, i, node)
	{
		double rep;
		json_t *st = herd_standing_json(
		    t, json_string_value(json_object_get(node, "peer_id")), &rep);
		json_object_set_new(node, "standing", st);
	}
}

/* ---------------------------------------------------------------- knobs */

static enum herd_err env_number(const char *name, double *v)
{
	const char *s = getenv(name);
	if (!s)
		return HERD_OK;
	char *end;
	errno = 0;
	double x = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(x))
		return herd_fail(HERD_ERR_BAD_INPUT, "%s: must be a number, got \"%.64s\"", name,
				 s);
	*v = x;
	return HERD_OK;
}

enum herd_err herd_node_sched_params(struct herd_sched_params *out)
{
	struct herd_sched_params p = herd_sched_default_params();
	double attempts = p.max_attempts;
	const struct {
		const char *name;
		double *v;
	} knobs[] = {
	    {"HERD_SCHED_MAX_ATTEMPTS", &attempts},
	    {"HERD_SCHED_TIMEOUT_FACTOR", &p.timeout_factor},
	    {"HERD_SCHED_TIMEOUT_FLOOR_MS", &p.timeout_floor_ms},
	    {"HERD_SCHED_RETRY_BACKOFF_MS", &p.retry_backoff_ms},
	    {"HERD_SCHED_PEER_COOLDOWN_MS", &p.peer_cooldown_ms},
	    {"HERD_SCHED_STRAGGLER_DONE_FRAC", &p.straggler_done_frac},
	    {"HERD_SCHED_STRAGGLER_FACTOR", &p.straggler_factor},
	    {"HERD_SCHED_NO_PEERS_GRACE_MS", &p.no_peers_grace_ms},
	};
	for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
		enum herd_err e = env_number(knobs[i].name, knobs[i].v);
		if (e)
			return e;
	}
	if (attempts != floor(attempts) || attempts < 1 || attempts > HERD_SCHED_MAX_ATTEMPTS)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "HERD_SCHED_MAX_ATTEMPTS: must be 1..%d, got %g",
				 HERD_SCHED_MAX_ATTEMPTS, attempts);
	p.max_attempts = (int)attempts;
	struct herd_sched *s = herd_sched_new(&p); /* the scheduler checks every field */
	if (!s) {
		char why[512];
		herd_node_copy(why, sizeof why, herd_last_error());
		return herd_fail(HERD_ERR_BAD_INPUT, "HERD_SCHED_* environment: %s", why);
	}
	herd_sched_free(s);
	*out = p;
	return HERD_OK;
}
