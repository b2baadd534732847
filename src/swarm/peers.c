/* peers — the peer table: the newest valid capability record of every peer, its reputation,
 * and the FIND_NODES query over it. The one thing to know: entries are filled from OpenDHT's
 * threads and read from HTTP and scheduler threads, so every access takes the one mutex and
 * hands out copies, never pointers into the table. Staleness is judged by the record's own
 * timestamp, so a dead node's lingering DHT value never revives it. */
#define _GNU_SOURCE
#include "swarm.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct herd_peers {
	pthread_mutex_t mu;
	int64_t stale_ms;
	struct herd_peer *v; /* unordered */
	size_t n, cap;
};

struct herd_peers *herd_peers_new(int64_t stale_ms)
{
	struct herd_peers *t = herd_xcalloc(1, sizeof *t);
	pthread_mutex_init(&t->mu, NULL);
	t->stale_ms = stale_ms > 0 ? stale_ms : HERD_PEERS_STALE_MS;
	return t;
}

void herd_peers_free(struct herd_peers *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t->v);
	free(t);
}

int64_t herd_peers_stale_ms(const struct herd_peers *t)
{
	return t->stale_ms;
}

static bool is_stale(const struct herd_peers *t, const struct herd_peer *p, int64_t now_ms)
{
	return p->cap.timestamp_ms < now_ms - t->stale_ms;
}

static int64_t now_or(int64_t now_ms)
{
	return now_ms ? now_ms : herd_unix_ms();
}

static struct herd_peer *find_locked(struct herd_peers *t, const char *peer_id)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].cap.peer_id, peer_id))
			return &t->v[i];
	return NULL;
}

static size_t expire_locked(struct herd_peers *t, int64_t now_ms)
{
	size_t dropped = 0;
	for (size_t i = 0; i < t->n;) {
		if (is_stale(t, &t->v[i], now_ms)) {
			herd_log(DEBUG, "peer %s (%s) stale, dropped", t->v[i].cap.peer_id,
				 t->v[i].cap.address);
			t->v[i] = t->v[--t->n];
			dropped++;
		} else {
			i++;
		}
	}
	return dropped;
}

int herd_peers_update(struct herd_peers *t, const struct herd_capability *cap, int64_t now_ms)
{
	now_ms = now_or(now_ms);
	int changed = 0;
	pthread_mutex_lock(&t->mu);
	struct herd_peer *p = find_locked(t, cap->peer_id);
	if (cap->timestamp_ms < now_ms - t->stale_ms)
		goto out;
	if (p) {
		/* newer = later timestamp, or the same timestamp and a higher seq */
		if (cap->timestamp_ms < p->cap.timestamp_ms ||
		    (cap->timestamp_ms == p->cap.timestamp_ms && cap->seq <= p->cap.seq))
			goto out;
		p->cap = *cap;
		changed = 1;
		goto out;
	}
	if (t->n == HERD_MAX_PEERS && expire_locked(t, now_ms) == 0) {
		changed = -1;
		goto out;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->v = herd_xrealloc(t->v, t->cap * sizeof *t->v);
	}
	p = &t->v[t->n++];
	p->cap = *cap;
	p->reputation = 1.0;
	p->first_seen_ms = now_ms;
	changed = 1;
	herd_log(DEBUG, "peer %s at %s joined", cap->peer_id, cap->address);
out:
	pthread_mutex_unlock(&t->mu);
	return changed;
}

size_t herd_peers_expire(struct herd_peers *t, int64_t now_ms)
{
	now_ms = now_or(now_ms);
	pthread_mutex_lock(&t->mu);
	size_t n = expire_locked(t, now_ms);
	pthread_mutex_unlock(&t->mu);
	return n;
}

static int by_peer_id(const void *a, const void *b)
{
	return strcmp(((const struct herd_peer *)a)->cap.peer_id,
		      ((const struct herd_peer *)b)->cap.peer_id);
}

size_t herd_peers_snapshot(struct herd_peers *t, int64_t now_ms, struct herd_peer **out)
{
	now_ms = now_or(now_ms);
	*out = NULL;
	pthread_mutex_lock(&t->mu);
	struct herd_peer *v = t->n ? herd_xmalloc(t->n * sizeof *v) : NULL;
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++)
		if (!is_stale(t, &t->v[i], now_ms))
			v[n++] = t->v[i];
	pthread_mutex_unlock(&t->mu);
	if (n == 0) {
		free(v);
		return 0;
	}
	qsort(v, n, sizeof *v, by_peer_id);
	*out = v;
	return n;
}

bool herd_peers_lookup(struct herd_peers *t, const char *peer_id, int64_t now_ms,
		       struct herd_peer *out)
{
	now_ms = now_or(now_ms);
	pthread_mutex_lock(&t->mu);
	struct herd_peer *p = find_locked(t, peer_id);
	bool found = p && !is_stale(t, p, now_ms);
	if (found)
		*out = *p;
	pthread_mutex_unlock(&t->mu);
	return found;
}

enum herd_err herd_peers_set_reputation(struct herd_peers *t, const char *peer_id,
					double reputation)
{
	if (isnan(reputation))
		return herd_fail(HERD_ERR_BAD_INPUT, "reputation: must be a number, got NaN");
	reputation = reputation < 0 ? 0 : reputation > 1 ? 1 : reputation;
	pthread_mutex_lock(&t->mu);
	struct herd_peer *p = find_locked(t, peer_id);
	if (p)
		p->reputation = reputation;
	pthread_mutex_unlock(&t->mu);
	return p ? HERD_OK
		 : herd_fail(HERD_ERR_NOT_FOUND, "peer %s: not in the peer table", peer_id);
}

/* ---- FIND_NODES ---- */

struct herd_find_nodes herd_find_nodes_default(void)
{
	return (struct herd_find_nodes){.max_load = -1};
}

#define BADP(...) herd_fail(HERD_ERR_BAD_INPUT, "params." __VA_ARGS__)

static enum herd_err nonneg_int(json_t *v, const char *key, int64_t max, int64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return BADP("%s: must be a non-negative integer", key);
	if (json_integer_value(v) > max)
		return BADP("%s: must be at most %" PRId64 ", got %" PRId64, key, max,
			    (int64_t)json_integer_value(v));
	*out = json_integer_value(v);
	return HERD_OK;
}

enum herd_err herd_find_nodes_parse(const json_t *params, struct herd_find_nodes *out)
{
	*out = herd_find_nodes_default();
	if (!params || json_is_null(params))
		return HERD_OK;
	if (!json_is_object(params))
		return herd_fail(HERD_ERR_BAD_INPUT, "params: must be an object");
	const char *key;
	json_t *v;
	enum herd_err err = HERD_OK;
	int64_t x;
	json_object_foreach((json_t *)params, key, v)
	{
		if (!strcmp(key, "min_cpu_cores")) {
			if ((err = nonneg_int(v, key, HERD_CAP_MAX_CORES, &x)))
				return err;
			out->min_cpu_cores = (int)x;
		} else if (!strcmp(key, "min_memory_mb")) {
			if ((err = nonneg_int(v, key, HERD_CAP_MAX_MEMORY_MB, &x)))
				return err;
			out->min_memory_mb = x;
		} else if (!strcmp(key, "requires_gpu")) {
			if (!json_is_boolean(v))
				return BADP("requires_gpu: must be a boolean");
			out->requires_gpu = json_is_true(v);
		} else if (!strcmp(key, "model_name")) {
			if (!json_is_string(v) || json_string_length(v) == 0 ||
			    json_string_length(v) > HERD_CAP_MAX_NAME ||
			    strlen(json_string_value(v)) != json_string_length(v))
				return BADP("model_name: must be a string of 1..%d chars",
					    HERD_CAP_MAX_NAME);
			memcpy(out->model_name, json_string_value(v), json_string_length(v) + 1);
		} else if (!strcmp(key, "max_load")) {
			if (!json_is_number(v) || json_number_value(v) < 0)
				return BADP("max_load: must be a non-negative number");
			out->max_load = json_number_value(v);
		} else if (!strcmp(key, "limit")) {
			if ((err = nonneg_int(v, key, HERD_MAX_PEERS, &x)))
				return err;
			out->limit = (int)x;
		} else {
			return BADP("%s: unknown field (known: min_cpu_cores, min_memory_mb, "
				    "requires_gpu, model_name, max_load, limit)",
				    key);
		}
	}
	return HERD_OK;
}

static double load_of(const struct herd_capability *c)
{
	return (double)(c->running + c->queued) / c->slots;
}

static int free_slots(const struct herd_capability *c)
{
	int f = c->slots - c->running - c->queued;
	return f > 0 ? f : 0;
}

static const struct herd_model_cap *model_of(const struct herd_capability *c, const char *name)
{
	for (int i = 0; i < c->n_models; i++)
		if (!strcmp(c->models[i].name, name))
			return &c->models[i];
	return NULL;
}

static bool matches(const struct herd_peer *p, const struct herd_find_nodes *q)
{
	const struct herd_capability *c = &p->cap;
	if (c->cpu_cores < q->min_cpu_cores || c->memory_mb < q->min_memory_mb)
		return false;
	if (q->requires_gpu && !c->has_gpu)
		return false;
	if (q->model_name[0] && !model_of(c, q->model_name))
		return false;
	if (q->max_load >= 0 && load_of(c) > q->max_load)
		return false;
	return true;
}

/* Ranking state for qsort: the score depends on the query's model. */
struct ranked {
	struct herd_peer peer;
	double score;
	int free;
};

static int by_rank(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;
	if ((x->free > 0) != (y->free > 0))
		return x->free > 0 ? -1 : 1;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	if (x->free != y->free)
		return x->free > y->free ? -1 : 1;
	if (x->peer.reputation != y->peer.reputation)
		return x->peer.reputation > y->peer.reputation ? -1 : 1;
	return strcmp(x->peer.cap.peer_id, y->peer.cap.peer_id);
}

static double speed_of(const struct herd_capability *c, const char *model)
{
	double s = 0;
	if (model[0]) {
		const struct herd_model_cap *m = model_of(c, model);
		s = m ? m->tokens_per_s : 0;
	} else {
		for (int i = 0; i < c->n_models; i++)
			s = fmax(s, c->models[i].tokens_per_s);
	}
	return s > 0 ? s : 1; /* unmeasured: counts as 1 so reputation and slots still rank */
}

size_t herd_peers_find(struct herd_peers *t, const struct herd_find_nodes *q, int64_t now_ms,
		       struct herd_peer **out)
{
	struct herd_peer *all;
	size_t n_all = herd_peers_snapshot(t, now_ms, &all);
	*out = NULL;
	struct ranked *r = n_all ? herd_xmalloc(n_all * sizeof *r) : NULL;
	size_t n = 0;
	for (size_t i = 0; i < n_all; i++) {
		if (!matches(&all[i], q))
			continue;
		r[n].peer = all[i];
		r[n].free = free_slots(&all[i].cap);
		r[n].score = all[i].reputation * speed_of(&all[i].cap, q->model_name) *
			     (r[n].free > 0 ? r[n].free : 1);
		n++;
	}
	free(all);
	qsort(r, n, sizeof *r, by_rank);
	if (q->limit > 0 && n > (size_t)q->limit)
		n = (size_t)q->limit;
	if (n) {
		*out = herd_xmalloc(n * sizeof **out);
		for (size_t i = 0; i < n; i++)
			(*out)[i] = r[i].peer;
	}
	free(r);
	return n;
}

json_t *herd_peer_to_json(const struct herd_peer *p)
{
	json_t *o = herd_capability_to_json(&p->cap);
	json_object_set_new(o, "reputation", json_real(p->reputation));
	json_object_set_new(o, "load_ratio", json_real(load_of(&p->cap)));
	json_object_set_new(o, "free_slots", json_integer(free_slots(&p->cap)));
	return o;
}
