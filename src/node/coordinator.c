/* coordinator — the life of a job on the node that received it: register it (job table),
 * dispatch its fragments (dispatch.c), aggregate the results (proto) and answer with the
 * seed's Complete Job Result. Also the few helpers every handler shares.
 * The one thing to know: herd_coord_run blocks its caller until the job has ended; a
 * streamed job therefore runs on a thread of its own (herd_node_spawn). */
#include <stdlib.h>
#include <string.h>

#include "node_int.h"

unsigned herd_node_http_status(enum herd_err err)
{
	switch (err) {
	case HERD_OK:
		return 200;
	case HERD_ERR_BAD_INPUT:
	case HERD_ERR_FORMAT:
		return 400;
	case HERD_ERR_NOT_FOUND:
		return 404;
	case HERD_ERR_LIMIT:
		return 413;
	case HERD_ERR_UNSUPPORTED:
		return 501;
	case HERD_ERR_NET:
		return 502;
	case HERD_ERR_TIMEOUT:
		return 504;
	case HERD_ERR_CANCELLED:
	case HERD_ERR_NOMEM:
		return 503;
	default:
		return 500;
	}
}

/* A failed job's answer still carries what succeeded: the fragments' results (dispatch keeps
 * each accepted one in extras[i].result). */
static json_t *partial_result(const struct herd_job *job, const json_t *extras)
{
	json_t *frs = json_array();
	size_t i;
	json_t *x;
	json_array_foreach(extras, i, x)
	{
		json_t *r = json_object_get(x, "result");
		if (r)
			json_array_append(frs, r);
	}
	return json_pack("{s:s, s:i, s:I, s:o}", "job_id", job->job_id, "fragments_total",
			 job->n_fragments, "fragments_processed", (json_int_t)json_array_size(frs),
			 "fragment_results", frs);
}

json_t *herd_coord_run(struct herd_node *n, const struct herd_command *request,
		       struct herd_job *job, struct job_rec *rec, unsigned *http_status,
		       json_t **extras_out)
{
	if (extras_out)
		*extras_out = NULL;
	enum herd_err e;
	if (!rec) {
		if ((e = herd_jobs_add(n->jobs, job->job_id, job->n_fragments, &rec))) {
			*http_status = 409;
			struct herd_command *a =
			    herd_command_answer_error(request, n->id, e, herd_last_error());
			json_t *j = herd_command_to_json(a);
			herd_command_free(a);
			return j;
		}
	} else {
		pthread_mutex_lock(&rec->mu);
		rec->refs++;
		pthread_mutex_unlock(&rec->mu);
	}
	json_t *start = herd_job_to_json(job);
	json_object_set_new(start, "coordinator", json_string(n->id));
	herd_job_rec_event(rec, "job", start, true);
	json_decref(start);
	herd_log(INFO, "job %s: %d fragment(s) of model %s", job->job_id, job->n_fragments,
		 job->model_name);

	struct herd_aggregator *agg = herd_aggregator_new(job);
	json_t *extras = json_array();
	for (int i = 0; i < job->n_fragments; i++)
		json_array_append_new(extras, json_object());
	bool stream_tokens = json_is_true(json_object_get(job->request->params, "stream_tokens"));
	e = herd_dispatch_job(n, job, rec, stream_tokens, agg, extras);
	json_t *resp = NULL;
	const char *state = "done";
	if (!e) {
		struct herd_job_result *jr = NULL;
		if ((e = herd_aggregator_finish(agg, &jr)) == HERD_OK) {
			jr->wall_time_ms = herd_now_ms() - rec->started_ms;
			resp = herd_job_result_to_response(jr, request, n->id);
			herd_job_result_free(jr);
			atomic_fetch_add(&n->jobs_done, 1);
		}
	}
	if (e) {
		state = e == HERD_ERR_CANCELLED ? "cancelled" : "failed";
		herd_log(WARN, "job %s %s: %s", job->job_id, state, herd_last_error());
		struct herd_command *a = herd_command_answer_error(request, n->id, e, herd_last_error());
		resp = herd_command_to_json(a);
		herd_command_free(a);
		json_object_set_new(resp, "result", partial_result(job, extras));
	} else {
		herd_log(INFO, "job %s done in %.1f ms", job->job_id, herd_now_ms() - rec->started_ms);
	}
	*http_status = herd_node_http_status(e);
	herd_job_rec_finish(rec, state, json_incref(resp));
	herd_job_rec_put(rec);
	herd_aggregator_free(agg);
	if (extras_out)
		*extras_out = extras;
	else
		json_decref(extras);
	return resp;
}

struct spawn {
	struct herd_node *n;
	void *(*fn)(void *);
	void *arg;
};

static void *spawn_main(void *p)
{
	struct spawn s = *(struct spawn *)p;
	free(p);
	s.fn(s.arg);
	herd_node_thread_done(s.n);
	return NULL;
}

bool herd_node_spawn(struct herd_node *n, void *(*fn)(void *), void *arg)
{
	pthread_mutex_lock(&n->thr_mu);
	if (atomic_load(&n->stopping)) {
		pthread_mutex_unlock(&n->thr_mu);
		return false;
	}
	n->n_job_threads++;
	pthread_mutex_unlock(&n->thr_mu);
	struct spawn *s = herd_xmalloc(sizeof *s);
	*s = (struct spawn){n, fn, arg};
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &at, spawn_main, s);
	pthread_attr_destroy(&at);
	if (rc) {
		free(s);
		herd_node_thread_done(n);
		return false;
	}
	return true;
}

void herd_node_thread_done(struct herd_node *n)
{
	pthread_mutex_lock(&n->thr_mu);
	n->n_job_threads--;
	pthread_cond_broadcast(&n->thr_cond);
	pthread_mutex_unlock(&n->thr_mu);
}
