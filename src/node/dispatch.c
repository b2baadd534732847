/* dispatch — the coordinator's policy: which node runs which fragment, and what happens when
 * one fails. Pull-style: a node never has more of a job's fragments in flight than its slots;
 * the next pending fragment goes to the target with the most free room (this node's own
 * share goes through the local worker queue, never over HTTP). A fragment that fails on one
 * node is tried once more on another; a node that could not be reached gets nothing more of
 * this job. Every answer is validated against what was sent.
 * The one thing to know: all bookkeeping happens on the job's thread (the loop in
 * herd_dispatch_job); callbacks from the multi client and the worker only queue a
 * completion. The scheduler (swarm/sched) is meant to replace choose_target and on_failure. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node_int.h"

/* ---------------------------------------------------------------- peers */

static void learn_peer(struct herd_node *n, struct node_peer *p)
{
	struct herd_command *c = herd_command_new(HERD_COMMAND_NODE_INFO, NULL, n->id, "");
	json_t *body = herd_command_to_json(c), *reply = NULL;
	herd_command_free(c);
	char url[HERD_CAP_MAX_ADDRESS + 32];
	snprintf(url, sizeof url, "%s/v1/command", p->url);
	long status = 0;
	enum herd_err e = herd_http_post_json(url, body, HERD_NODE_PEER_INFO_TIMEOUT_MS, &status,
					      &reply);
	json_decref(body);
	char err[512] = "";
	json_t *res = NULL;
	if (e) {
		herd_node_copy(err, sizeof err, herd_last_error());
	} else {
		struct herd_command *ans = NULL;
		if (herd_command_from_json(reply, &ans) || ans->status != HERD_COMMAND_SUCCESS ||
		    !json_is_object(ans->result))
			snprintf(err, sizeof err, "NODE_INFO: not a success answer (HTTP %ld)",
				 status);
		else
			res = json_incref(ans->result);
		herd_command_free(ans);
	}
	json_decref(reply);
	const char *id = json_string_value(json_object_get(res, "node_id"));
	json_t *jslots = json_object_get(res, "slots");
	json_t *models = json_object_get(res, "models");
	if (res && (!id || !*id || strlen(id) > HERD_CAP_MAX_NAME * 4 || !json_is_integer(jslots) ||
		    json_integer_value(jslots) < 1 || json_integer_value(jslots) > HERD_MAX_SLOTS ||
		    !json_is_array(models)))
		snprintf(err, sizeof err,
			 "NODE_INFO: result needs node_id, slots 1..%d and a models array",
			 HERD_MAX_SLOTS);
	pthread_mutex_lock(&n->peers_mu);
	p->checked_ms = herd_now_ms();
	if (err[0]) {
		p->down = true;
		herd_node_copy(p->error, sizeof p->error, err);
		herd_log(WARN, "peer %s is down: %s", p->url, err);
	} else {
		p->known = true;
		p->down = false;
		p->error[0] = '\0';
		herd_node_copy(p->id, sizeof p->id, id);
		p->slots = (int)json_integer_value(jslots);
		json_decref(p->models);
		p->models = json_array();
		size_t i;
		json_t *m;
		json_array_foreach(models, i, m)
		{
			const char *name = json_is_string(m) ? json_string_value(m)
							     : json_string_value(json_object_get(m, "name"));
			if (name)
				json_array_append_new(p->models, json_string(name));
		}
		json_decref(p->info);
		p->info = json_incref(res);
	}
	pthread_mutex_unlock(&n->peers_mu);
	json_decref(res);
}

void herd_node_refresh_peers(struct herd_node *n)
{
	for (size_t i = 0; i < n->n_peers; i++) {
		struct node_peer *p = &n->peers[i];
		pthread_mutex_lock(&n->peers_mu);
		bool ask = !p->known || (p->down && herd_now_ms() - p->checked_ms >
							 HERD_NODE_PEER_RETRY_MS);
		if (p->known && !p->down && herd_now_ms() - p->checked_ms > HERD_DISCOVERY_RECHECK_MS)
			ask = true; /* it may have been restarted with other models or slots */
		pthread_mutex_unlock(&n->peers_mu);
		if (ask)
			learn_peer(n, p);
	}
}

/* ---------------------------------------------------------------- one job */

struct flight {
	struct run *run;
	int frag, target;
	struct herd_work work;	     /* local target */
	struct herd_sse_parser *sse; /* remote target with token streaming */
	json_t *sse_result;	     /* the "result" event's envelope */
	uint64_t req_id;
};

struct completion {
	int frag, target;
	enum herd_err err;
	bool remote_error; /* the peer answered with an error envelope (err is its code) */
	char msg[768];
	json_t *result; /* a fragment result object (success) */
	struct completion *next;
};

enum { PENDING, RUNNING, DONE };

struct frag_state {
	int state, target, attempts;
	bool *tried; /* per target */
	struct flight *flight; /* local target only (a remote flight frees itself) */
	uint64_t req_id;       /* remote target: the multi client's id */
};

struct run {
	struct herd_node *n;
	struct herd_job *job;
	struct job_rec *rec;
	bool stream_tokens;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct completion *head, *tail;
	struct dispatch_target *t;
	int n_t;
	struct frag_state *fs;
	int inflight;
};

static void push(struct run *r, struct completion *c)
{
	pthread_mutex_lock(&r->mu);
	if (r->tail)
		r->tail->next = c;
	else
		r->head = c;
	r->tail = c;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static struct completion *completion(struct flight *f)
{
	struct completion *c = herd_xcalloc(1, sizeof *c);
	c->frag = f->frag;
	c->target = f->target;
	return c;
}

/* Local worker finished (slot thread). */
static void local_done(void *ud, enum herd_err err, const char *msg, json_t *result)
{
	struct flight *f = ud;
	struct completion *c = completion(f);
	c->err = err;
	herd_node_copy(c->msg, sizeof c->msg, msg ? msg : "");
	c->result = result;
	push(f->run, c);
}

static int local_token(void *ud, int item, const char *text, size_t len)
{
	struct flight *f = ud;
	json_t *ev = json_pack("{s:i, s:i, s:o}", "fragment_index", f->frag, "item", item, "text",
			       herd_node_json_text(text, len));
	herd_job_rec_event(f->run->rec, "token", ev, false);
	json_decref(ev);
	return atomic_load(&f->run->rec->cancel) ? 1 : 0;
}

/* Checks a worker's answer envelope for fragment f (sent as command request_id = fid). */
static void check_answer(struct completion *c, const json_t *env, const struct herd_fragment *f)
{
	struct herd_command *ans = NULL;
	if (herd_command_from_json(env, &ans)) {
		c->err = HERD_ERR_NET;
		snprintf(c->msg, sizeof c->msg, "bad answer: %s", herd_last_error());
		return;
	}
	if (ans->kind != HERD_COMMAND_EXECUTE_TASK || strcmp(ans->request_id, f->fragment_id)) {
		c->err = HERD_ERR_NET;
		snprintf(c->msg, sizeof c->msg,
			 "bad answer: must be EXECUTE_TASK with request_id \"%s\", got %s \"%.128s\"",
			 f->fragment_id, herd_command_name(ans->kind) ?: "?", ans->request_id);
	} else if (ans->status == HERD_COMMAND_ERROR) {
		c->remote_error = true;
		c->err = HERD_ERR_INTERNAL;
		for (int e = 1; e < HERD_ERR_COUNT_; e++)
			if (!strcmp(herd_errcode((enum herd_err)e), ans->error_code))
				c->err = (enum herd_err)e;
		snprintf(c->msg, sizeof c->msg, "%s: %s", ans->error_code, ans->error_message);
	} else if (ans->status != HERD_COMMAND_SUCCESS) {
		c->err = HERD_ERR_NET;
		snprintf(c->msg, sizeof c->msg, "bad answer: no status");
	} else {
		c->result = json_incref(ans->result);
	}
	herd_command_free(ans);
}

static bool remote_event(const char *event, const char *data, const char *id, void *ud)
{
	(void)id;
	struct flight *f = ud;
	json_t *j = NULL;
	if (herd_json_parse(data, strlen(data), &j))
		return false;
	if (!strcmp(event, "token")) {
		json_t *item = json_object_get(j, "item"), *text = json_object_get(j, "text");
		json_t *ev = json_pack("{s:i, s:I, s:s}", "fragment_index", f->frag, "item",
				       json_integer_value(item), "text",
				       json_is_string(text) ? json_string_value(text) : "");
		if (ev)
			herd_job_rec_event(f->run->rec, "token", ev, false);
		json_decref(ev);
		json_decref(j);
	} else if (!strcmp(event, "result")) {
		json_decref(f->sse_result);
		f->sse_result = j;
	} else {
		json_decref(j);
	}
	return true;
}

static bool remote_data(const char *data, size_t len, void *ud)
{
	struct flight *f = ud;
	return herd_sse_parser_feed(f->sse, data, len);
}

/* Multi thread: a peer answered (or did not). */
static void remote_done(const struct herd_http_result *res, void *ud)
{
	struct flight *f = ud;
	struct run *r = f->run;
	struct completion *c = completion(f);
	const struct herd_fragment *frag = &r->job->fragments[f->frag];
	if (res->err) {
		c->err = res->err;
		herd_node_copy(c->msg, sizeof c->msg, res->error);
	} else if (f->sse) {
		if (f->sse_result)
			check_answer(c, f->sse_result, frag);
		else {
			c->err = HERD_ERR_NET;
			snprintf(c->msg, sizeof c->msg,
				 "bad answer: the event stream (HTTP %ld) ended without a result",
				 res->status);
		}
	} else {
		json_t *env = NULL;
		if (herd_json_parse(res->body, res->body_len, &env)) {
			c->err = HERD_ERR_NET;
			snprintf(c->msg, sizeof c->msg, "bad answer (HTTP %ld): %s", res->status,
				 herd_last_error());
		} else {
			check_answer(c, env, frag);
		}
		json_decref(env);
	}
	herd_sse_parser_free(f->sse);
	json_decref(f->sse_result);
	free(f);
	push(r, c);
}

static void describe(const struct dispatch_target *t, char *out, size_t size)
{
	if (!t->peer && !t->url[0])
		snprintf(out, size, "this node (%s)", t->id);
	else
		snprintf(out, size, "peer %s (%s)", t->url, t->id[0] ? t->id : "?");
}

/* The policy: the eligible target with the most free room, ties to the earlier. -1: none. */
static int choose_target(struct run *r, int frag)
{
	int best = -1;
	double best_free = 0;
	for (int i = 0; i < r->n_t; i++) {
		struct dispatch_target *t = &r->t[i];
		if (t->dead || r->fs[frag].tried[i] || t->inflight >= t->slots)
			continue;
		double room = (double)(t->slots - t->inflight) / t->slots;
		if (best < 0 || room > best_free) {
			best = i;
			best_free = room;
		}
	}
	return best;
}

/* Whether any target could still run frag (now or when a slot frees up). */
static bool runnable(struct run *r, int frag)
{
	for (int i = 0; i < r->n_t; i++)
		if (!r->t[i].dead && !r->fs[frag].tried[i])
			return true;
	return false;
}

static enum herd_err send_fragment(struct run *r, int frag, int ti)
{
	struct dispatch_target *t = &r->t[ti];
	struct flight *f = herd_xcalloc(1, sizeof *f);
	f->run = r;
	f->frag = frag;
	f->target = ti;
	const struct herd_fragment *fr = &r->job->fragments[frag];
	enum herd_err e;
	if (!t->url[0]) {
		f->work.frag = fr;
		f->work.on_done = local_done;
		f->work.ud = f;
		if (r->stream_tokens) {
			f->work.on_token = local_token;
			f->work.token_ud = f;
		}
		e = herd_worker_submit(r->n->worker, &f->work);
	} else {
		struct herd_command *c = herd_fragment_to_command(fr, r->n->id, t->id);
		json_t *body = herd_command_to_json(c);
		herd_command_free(c);
		if (r->stream_tokens)
			json_object_set_new(json_object_get(body, "params"), "stream_tokens",
					    json_true());
		char *text = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		char url[HERD_CAP_MAX_ADDRESS + 32];
		snprintf(url, sizeof url, "%s/v1/command", t->url);
		if (r->stream_tokens)
			f->sse = herd_sse_parser_new(remote_event, f);
		struct herd_http_request req = {
		    .url = url,
		    .body = text,
		    .body_len = strlen(text),
		    .timeout_ms = HERD_NODE_FRAGMENT_TIMEOUT_MS,
		    .on_data = f->sse ? remote_data : NULL,
		    .on_done = remote_done,
		    .userdata = f,
		};
		e = herd_http_multi_submit(r->n->multi, &req, &f->req_id);
		free(text);
		if (e)
			herd_sse_parser_free(f->sse);
	}
	if (e) {
		free(f);
		return e;
	}
	r->fs[frag].state = RUNNING;
	r->fs[frag].target = ti;
	r->fs[frag].attempts++;
	r->fs[frag].tried[ti] = true;
	r->fs[frag].flight = t->url[0] ? NULL : f;
	r->fs[frag].req_id = f->req_id;
	t->inflight++;
	r->inflight++;
	pthread_mutex_lock(&r->rec->mu);
	r->rec->running++;
	pthread_mutex_unlock(&r->rec->mu);
	return HERD_OK;
}

static void ignore_done(const struct herd_http_result *res, void *ud)
{
	(void)res;
	(void)ud;
}

/* Stops what is in flight: local works get their cancel flag, remote requests are cancelled
 * and their peers told (CANCEL_JOB) so that they stop computing. */
static void cancel_inflight(struct run *r)
{
	bool told[HERD_NODE_MAX_PEERS + 1] = {0};
	for (int i = 0; i < r->job->n_fragments; i++) {
		struct frag_state *s = &r->fs[i];
		if (s->state != RUNNING)
			continue;
		struct dispatch_target *t = &r->t[s->target];
		if (!t->url[0]) {
			atomic_store(&s->flight->work.cancel, true);
			continue;
		}
		herd_http_multi_cancel(r->n->multi, s->req_id);
		if (s->target < HERD_NODE_MAX_PEERS && !told[s->target]) {
			told[s->target] = true;
			struct herd_command *c =
			    herd_command_new(HERD_COMMAND_CANCEL_JOB, NULL, r->n->id, t->id);
			herd_command_with_param(c, "job_id", json_string(r->job->job_id));
			json_t *body = herd_command_to_json(c);
			herd_command_free(c);
			char *text = json_dumps(body, JSON_COMPACT);
			json_decref(body);
			char url[HERD_CAP_MAX_ADDRESS + 32];
			snprintf(url, sizeof url, "%s/v1/command", t->url);
			/* fire and forget: its on_done has nothing to do */
			struct herd_http_request req = {.url = url,
							.body = text,
							.body_len = strlen(text),
							.timeout_ms = HERD_NODE_PEER_INFO_TIMEOUT_MS,
							.on_done = ignore_done};
			herd_http_multi_submit(r->n->multi, &req, NULL);
			free(text);
		}
	}
}

/* Checks a successful result against the fragment that was sent. */
static enum herd_err check_result(struct run *r, struct completion *c,
				  struct herd_fragment_result **out)
{
	const struct herd_fragment *f = &r->job->fragments[c->frag];
	struct herd_fragment_result *fr = NULL;
	*out = NULL;
	if (herd_fragment_result_from_json(c->result, &fr))
		return HERD_ERR_NET;
	enum herd_err e = HERD_OK;
	if (strcmp(fr->job_id, f->job_id))
		e = herd_fail(HERD_ERR_NET, "result.job_id: must be \"%s\", got \"%.64s\"",
			      f->job_id, fr->job_id);
	else if (strcmp(fr->fragment_id, f->fragment_id) || fr->index != f->index)
		e = herd_fail(HERD_ERR_NET,
			      "result: fragment_id/fragment_index must be \"%s\"/%d, got "
			      "\"%.64s\"/%d",
			      f->fragment_id, f->index, fr->fragment_id, fr->index);
	else if (f->kind == HERD_INPUT_TEXT && !json_is_string(fr->output))
		e = herd_fail(HERD_ERR_NET, "result.output: must be a string for a text fragment");
	else if (f->kind == HERD_INPUT_ARRAY && json_array_size(fr->output) != f->n_items)
		e = herd_fail(HERD_ERR_NET,
			      "result.output: must be an array of %zu strings (one per item), got "
			      "%zu",
			      f->n_items, json_array_size(fr->output));
	if (e) {
		herd_fragment_result_free(fr);
		return e;
	}
	*out = fr;
	return HERD_OK;
}

enum herd_err herd_dispatch_job(struct herd_node *n, struct herd_job *job, struct job_rec *rec,
				bool stream_tokens, struct herd_aggregator *agg, json_t *extras)
{
	struct run r = {.n = n, .job = job, .rec = rec, .stream_tokens = stream_tokens};
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	enum herd_err result = HERD_OK;
	char fail_msg[1024] = "";

	/* ---- targets: this node, the --peer nodes, discovered nodes ---- */
	herd_node_refresh_peers(n);
	size_t cap = 1 + n->n_peers + HERD_MAX_PEERS;
	r.t = herd_xcalloc(cap, sizeof *r.t);
	if (herd_worker_model(n->worker, job->model_name)) {
		struct dispatch_target *t = &r.t[r.n_t++];
		herd_node_copy(t->id, sizeof t->id, n->id);
		t->slots = herd_worker_slots(n->worker);
	}
	char down[1024] = "";
	size_t down_len = 0;
	pthread_mutex_lock(&n->peers_mu);
	for (size_t i = 0; i < n->n_peers; i++) {
		struct node_peer *p = &n->peers[i];
		if (p->down || !p->known) {
			down_len += (size_t)snprintf(down + down_len, down_len < sizeof down ? sizeof down - down_len : 0,
						     "%speer %s is down (%s)", down_len ? "; " : "", p->url,
						     p->error);
			if (down_len >= sizeof down)
				down_len = sizeof down - 1;
			continue;
		}
		bool serves = false;
		size_t k;
		json_t *m;
		json_array_foreach(p->models, k, m) serves |= !strcmp(json_string_value(m), job->model_name);
		if (!serves || !strcmp(p->id, n->id))
			continue;
		struct dispatch_target *t = &r.t[r.n_t++];
		t->peer = p;
		herd_node_copy(t->id, sizeof t->id, p->id);
		herd_node_copy(t->url, sizeof t->url, p->url);
		t->slots = p->slots;
	}
	pthread_mutex_unlock(&n->peers_mu);
	if (n->disco) {
		struct herd_discovered_peer *dp = NULL;
		size_t nd = herd_discovery_peers_for_model(n->disco, job->model_name, &dp);
		for (size_t i = 0; i < nd && (size_t)r.n_t < cap; i++) {
			bool dup = dp[i].is_self;
			for (int k = 0; k < r.n_t && !dup; k++)
				dup = !strcmp(r.t[k].url, dp[i].url) || !strcmp(r.t[k].id, dp[i].peer_id);
			if (dup)
				continue;
			struct dispatch_target *t = &r.t[r.n_t++];
			herd_node_copy(t->id, sizeof t->id, dp[i].peer_id);
			herd_node_copy(t->url, sizeof t->url, dp[i].url);
			t->slots = dp[i].slots > 0 ? dp[i].slots : 1;
		}
		free(dp);
	}
	if (r.n_t == 0) {
		if (down_len)
			result = herd_fail(HERD_ERR_NET, "no node could run job %s (model '%s'): %s",
					   job->job_id, job->model_name, down);
		else
			result = herd_fail(HERD_ERR_NOT_FOUND,
					   "params.model_name: no node serves model '%s'",
					   job->model_name);
		goto out;
	}

	r.fs = herd_xcalloc((size_t)job->n_fragments, sizeof *r.fs);
	for (int i = 0; i < job->n_fragments; i++)
		r.fs[i].tried = herd_xcalloc((size_t)r.n_t, sizeof(bool));
	int done = 0;
	bool stop = false;
	while (!stop || r.inflight > 0) {
		/* assign */
		for (int i = 0; i < job->n_fragments && !stop; i++) {
			if (r.fs[i].state != PENDING)
				continue;
			if (!runnable(&r, i)) {
				char why[2048] = "";
				size_t wl = 0;
				for (int k = 0; k < r.n_t && wl < sizeof why; k++) {
					char who[600];
					describe(&r.t[k], who, sizeof who);
					wl += (size_t)snprintf(why + wl, sizeof why - wl, "%s%s: %s",
							       wl ? "; " : "", who,
							       r.t[k].error[0] ? r.t[k].error
									       : "already tried");
				}
				result = herd_fail(HERD_ERR_NET, "fragment %d: no node could run it: %s%s%s", i,
						   why, down_len ? "; " : "", down);
				herd_node_copy(fail_msg, sizeof fail_msg, herd_last_error());
				stop = true;
				break;
			}
			int ti = choose_target(&r, i);
			if (ti < 0)
				continue; /* every eligible target is full: wait */
			if (send_fragment(&r, i, ti)) {
				r.t[ti].dead = true;
				herd_node_copy(r.t[ti].error, sizeof r.t[ti].error, herd_last_error());
			}
		}
		if (stop && !r.inflight)
			break;
		if (done == job->n_fragments)
			break;
		if (!stop && r.inflight == 0)
			continue; /* a send failed: assign again (or find that nothing can run) */
		/* wait for a completion or cancellation */
		pthread_mutex_lock(&r.mu);
		while (!r.head && !(atomic_load(&rec->cancel) && !stop)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&r.cv, &r.mu, &ts);
		}
		struct completion *list = r.head;
		r.head = r.tail = NULL;
		pthread_mutex_unlock(&r.mu);
		if (atomic_load(&rec->cancel) && !stop) {
			stop = true;
			result = herd_fail(HERD_ERR_CANCELLED, "job %s: cancelled", job->job_id);
			herd_node_copy(fail_msg, sizeof fail_msg, herd_last_error());
			cancel_inflight(&r);
		}
		for (struct completion *c = list, *nx; c; c = nx) {
			nx = c->next;
			struct frag_state *s = &r.fs[c->frag];
			struct dispatch_target *t = &r.t[c->target];
			free(s->flight); /* local: the slot thread is done with it */
			s->flight = NULL;
			t->inflight--;
			r.inflight--;
			pthread_mutex_lock(&rec->mu);
			rec->running--;
			pthread_mutex_unlock(&rec->mu);
			struct herd_fragment_result *fr = NULL;
			enum herd_err e = c->err;
			char msg[1024];
			herd_node_copy(msg, sizeof msg, c->msg);
			if (!e) {
				e = check_result(&r, c, &fr);
				if (!e && herd_aggregator_add(agg, fr))
					e = HERD_ERR_NET;
				if (e)
					snprintf(msg, sizeof msg, "bad answer: %s", herd_last_error());
			}
			if (stop) {
				s->state = e ? PENDING : DONE;
			} else if (!e) {
				s->state = DONE;
				done++;
				const char *nid = fr->node_id[0] ? fr->node_id : t->id;
				json_t *x = json_array_get(extras, (size_t)c->frag);
				json_object_set_new(x, "node_id", json_string(nid));
				json_object_set_new(x, "node_url", json_string(t->url[0] ? t->url : n->url));
				json_object_set(x, "prompt_tokens", json_object_get(c->result, "prompt_tokens") ?: json_integer(0));
				json_object_set(x, "finish_reasons", json_object_get(c->result, "finish_reasons") ?: json_array());
				pthread_mutex_lock(&rec->mu);
				rec->done++;
				json_array_set_new(rec->nodes, (size_t)c->frag, json_string(nid));
				int rdone = rec->done;
				pthread_mutex_unlock(&rec->mu);
				json_t *ev = herd_fragment_result_to_json(fr);
				json_object_set_new(ev, "node_id", json_string(nid));
				json_object_set_new(ev, "fragments_done", json_integer(rdone));
				json_object_set_new(ev, "fragments_total", json_integer(job->n_fragments));
				json_object_set_new(ev, "elapsed_ms", json_real(herd_now_ms() - rec->started_ms));
				herd_job_rec_event(rec, "fragment", ev, true);
				json_decref(ev);
			} else {
				char who[600];
				describe(t, who, sizeof who);
				char line[1700];
				snprintf(line, sizeof line, "fragment %d on %s: %s", c->frag, who, msg);
				herd_log(WARN, "job %s: %s", job->job_id, line);
				pthread_mutex_lock(&rec->mu);
				json_array_append_new(rec->errors, json_string(line));
				pthread_mutex_unlock(&rec->mu);
				bool final = (c->remote_error || !t->url[0]) &&
					     (e == HERD_ERR_BAD_INPUT || e == HERD_ERR_LIMIT);
				if (e == HERD_ERR_CANCELLED && !t->url[0])
					final = true; /* this node is stopping */
				if (!c->remote_error && t->url[0]) {
					t->dead = true; /* unreachable or misbehaving: nothing more */
					herd_node_copy(t->error, sizeof t->error, msg);
				} else {
					herd_node_copy(t->error, sizeof t->error, msg);
				}
				if (final || s->attempts >= HERD_NODE_FRAGMENT_ATTEMPTS) {
					result = herd_fail(e, "%s", line);
					herd_node_copy(fail_msg, sizeof fail_msg, line);
					stop = true;
					cancel_inflight(&r);
				} else {
					s->state = PENDING; /* retried on another node */
					pthread_mutex_lock(&rec->mu);
					rec->retries++;
					pthread_mutex_unlock(&rec->mu);
				}
			}
			herd_fragment_result_free(fr);
			json_decref(c->result);
			free(c);
		}
	}
	if (result)
		herd_fail(result, "%s", fail_msg);
out:
	if (r.fs)
		for (int i = 0; i < job->n_fragments; i++)
			free(r.fs[i].tried);
	free(r.fs);
	free(r.t);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	return result;
}
