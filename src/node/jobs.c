/* jobs — the jobs this node coordinates, running and recently finished: their state for
 * GET /v1/jobs/{id} and JOB_STATUS, and their event streams (SSE subscribers).
 * The one thing to know: a record is reference counted; the table holds one reference
 * while it keeps the record, every user (the job's thread, a handler) holds its own. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node_int.h"

struct job_sub {
	struct herd_sse *stream;
	struct job_sub *next;
};

struct herd_jobs {
	pthread_mutex_t mu;
	struct job_rec **recs;
	size_t n, cap;
};

struct herd_jobs *herd_jobs_new(void)
{
	struct herd_jobs *j = herd_xcalloc(1, sizeof *j);
	pthread_mutex_init(&j->mu, NULL);
	return j;
}

void herd_job_rec_put(struct job_rec *rec)
{
	if (!rec)
		return;
	pthread_mutex_lock(&rec->mu);
	bool last = --rec->refs == 0;
	pthread_mutex_unlock(&rec->mu);
	if (!last)
		return;
	for (struct job_sub *s = rec->subs, *nx; s; s = nx) {
		nx = s->next;
		herd_sse_close(s->stream);
		free(s);
	}
	json_decref(rec->errors);
	json_decref(rec->log);
	json_decref(rec->final);
	json_decref(rec->nodes);
	pthread_mutex_destroy(&rec->mu);
	free(rec->job_id);
	free(rec);
}

void herd_jobs_free(struct herd_jobs *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n; i++)
		herd_job_rec_put(j->recs[i]);
	free(j->recs);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

static bool finished(struct job_rec *r) { return strcmp(r->state, "running") != 0; }

/* Drops finished records that are too old or too many (oldest first). Under j->mu. */
static void prune(struct herd_jobs *j)
{
	double now = herd_now_ms();
	size_t n_finished = 0;
	for (size_t i = 0; i < j->n; i++) {
		pthread_mutex_lock(&j->recs[i]->mu);
		n_finished += finished(j->recs[i]);
		pthread_mutex_unlock(&j->recs[i]->mu);
	}
	size_t w = 0;
	for (size_t i = 0; i < j->n; i++) {
		struct job_rec *r = j->recs[i];
		pthread_mutex_lock(&r->mu);
		bool drop = finished(r) && (n_finished >= HERD_NODE_KEEP_JOBS ||
					    now - r->finished_ms > HERD_NODE_KEEP_JOBS_MS);
		pthread_mutex_unlock(&r->mu);
		if (drop) {
			n_finished--;
			herd_job_rec_put(r);
		} else {
			j->recs[w++] = r;
		}
	}
	j->n = w;
}

enum herd_err herd_jobs_add(struct herd_jobs *j, const char *job_id, int total,
			    struct job_rec **out)
{
	*out = NULL;
	pthread_mutex_lock(&j->mu);
	prune(j);
	for (size_t i = 0; i < j->n; i++) {
		struct job_rec *r = j->recs[i];
		if (strcmp(r->job_id, job_id))
			continue;
		pthread_mutex_lock(&r->mu);
		bool running = !finished(r);
		pthread_mutex_unlock(&r->mu);
		if (running) {
			pthread_mutex_unlock(&j->mu);
			return herd_fail(HERD_ERR_BAD_INPUT,
					 "job_id: a job '%s' is already running on this node "
					 "(give a new request_id)",
					 job_id);
		}
		herd_job_rec_put(r); /* a finished one of the same id is replaced */
		j->recs[i] = j->recs[--j->n];
		break;
	}
	struct job_rec *r = herd_xcalloc(1, sizeof *r);
	r->job_id = herd_xstrdup(job_id);
	pthread_mutex_init(&r->mu, NULL);
	r->refs = 2; /* the table's and the caller's */
	r->state = "running";
	r->total = total;
	r->errors = json_array();
	r->log = json_array();
	r->nodes = json_array();
	for (int i = 0; i < total; i++)
		json_array_append_new(r->nodes, json_null());
	r->started_ms = herd_now_ms();
	r->created_unix = (int64_t)time(NULL);
	if (j->n == j->cap) {
		j->cap = j->cap ? j->cap * 2 : 16;
		j->recs = herd_xrealloc(j->recs, j->cap * sizeof *j->recs);
	}
	j->recs[j->n++] = r;
	pthread_mutex_unlock(&j->mu);
	*out = r;
	return HERD_OK;
}

struct job_rec *herd_jobs_get(struct herd_jobs *j, const char *job_id)
{
	struct job_rec *found = NULL;
	pthread_mutex_lock(&j->mu);
	for (size_t i = 0; i < j->n && !found; i++)
		if (!strcmp(j->recs[i]->job_id, job_id)) {
			found = j->recs[i];
			pthread_mutex_lock(&found->mu);
			found->refs++;
			pthread_mutex_unlock(&found->mu);
		}
	pthread_mutex_unlock(&j->mu);
	return found;
}

int herd_jobs_cancel_all(struct herd_jobs *j)
{
	int n = 0;
	pthread_mutex_lock(&j->mu);
	for (size_t i = 0; i < j->n; i++) {
		struct job_rec *r = j->recs[i];
		pthread_mutex_lock(&r->mu);
		if (!finished(r)) {
			atomic_store(&r->cancel, true);
			n++;
		}
		pthread_mutex_unlock(&r->mu);
	}
	pthread_mutex_unlock(&j->mu);
	return n;
}

size_t herd_jobs_running(struct herd_jobs *j)
{
	size_t n = 0;
	pthread_mutex_lock(&j->mu);
	for (size_t i = 0; i < j->n; i++) {
		pthread_mutex_lock(&j->recs[i]->mu);
		n += !finished(j->recs[i]);
		pthread_mutex_unlock(&j->recs[i]->mu);
	}
	pthread_mutex_unlock(&j->mu);
	return n;
}

/* Sends to every subscriber, dropping those that went away. Under rec->mu. */
static void broadcast(struct job_rec *rec, const char *event, const json_t *data)
{
	struct job_sub **pp = &rec->subs;
	while (*pp) {
		struct job_sub *s = *pp;
		if (herd_sse_send_json(s->stream, event, data) == HERD_ERR_CANCELLED) {
			*pp = s->next;
			herd_sse_close(s->stream);
			free(s);
		} else {
			pp = &s->next;
		}
	}
}

void herd_job_rec_event(struct job_rec *rec, const char *event, const json_t *data, bool keep)
{
	pthread_mutex_lock(&rec->mu);
	broadcast(rec, event, data);
	if (keep)
		json_array_append_new(rec->log, json_pack("{s:s, s:O}", "event", event, "data", data));
	pthread_mutex_unlock(&rec->mu);
}

void herd_job_rec_finish(struct job_rec *rec, const char *state, json_t *final)
{
	pthread_mutex_lock(&rec->mu);
	rec->state = state;
	rec->finished_ms = herd_now_ms();
	json_decref(rec->final);
	rec->final = final;
	broadcast(rec, "result", final);
	for (struct job_sub *s = rec->subs, *nx; s; s = nx) {
		nx = s->next;
		herd_sse_close(s->stream);
		free(s);
	}
	rec->subs = NULL;
	pthread_mutex_unlock(&rec->mu);
}

void herd_job_rec_subscribe(struct job_rec *rec, struct herd_sse *stream)
{
	pthread_mutex_lock(&rec->mu);
	size_t i;
	json_t *e;
	json_array_foreach(rec->log, i, e)
	    herd_sse_send_json(stream, json_string_value(json_object_get(e, "event")),
			       json_object_get(e, "data"));
	if (finished(rec)) {
		if (rec->final)
			herd_sse_send_json(stream, "result", rec->final);
		herd_sse_close(stream);
	} else {
		struct job_sub *s = herd_xcalloc(1, sizeof *s);
		s->stream = stream;
		s->next = rec->subs;
		rec->subs = s;
	}
	pthread_mutex_unlock(&rec->mu);
}

json_t *herd_job_rec_status(struct job_rec *rec)
{
	pthread_mutex_lock(&rec->mu);
	double end = finished(rec) ? rec->finished_ms : herd_now_ms();
	json_t *j = json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:O, s:O, s:f, s:I}", "job_id",
			      rec->job_id, "state", rec->state, "fragments_done", rec->done,
			      "fragments_total", rec->total, "running", rec->running, "retries",
			      rec->retries, "errors", rec->errors, "fragment_nodes", rec->nodes,
			      "elapsed_ms", end - rec->started_ms, "created",
			      (json_int_t)rec->created_unix);
	HERD_ASSERT(j);
	if (finished(rec) && rec->final)
		json_object_set(j, "result", rec->final);
	pthread_mutex_unlock(&rec->mu);
	return j;
}
