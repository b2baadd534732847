/* dispatch — carries out the scheduler's decisions for one job. The policy (which node runs
 * which fragment, deadlines, retries with backoff, straggler backups, reputation) is all in
 * swarm/sched.c (docs/scheduling.md); here each job gets its own herd_sched whose peers are
 * this node's worker, the --peer nodes and the discovered nodes serving the model, started
 * from their standing of earlier jobs (standing.c). START goes to the local worker queue or
 * over HTTP, CANCEL aborts it (and tells the peer, CANCEL_JOB with the fragment_id), every
 * answer is validated against what was sent and reported to the scheduler, which says
 * whether it is the one that counts.
 * The one thing to know: all bookkeeping happens on the job's thread (the loop in
 * herd_dispatch_job); callbacks from the multi client and the worker only queue a
 * completion, and the job returns only once every flight has completed. */
#include <math.h>
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

bool herd_node_peer_serves(const struct node_peer *p, const char *model)
{
	size_t k;
	json_t *m;
	json_array_foreach(p->models, k, m) if (!strcmp(json_string_value(m), model)) return true;
	return false;
}

/* ---------------------------------------------------------------- one job */

/* Claimed tokens/s of one slot when a node has not measured the model yet. Only the first
 * deadlines depend on it: the scheduler learns the real speed from each result. */
#define DISPATCH_DEFAULT_TPS 50.0
#define DISPATCH_ACTIONS 64
#define DISPATCH_REDISCOVER_MS 2000.0 /* discovered peers are re-read this often */

struct flight {
	struct run *run;
	uint64_t attempt;
	int frag, target;
	double started_ms, deadline_ms; /* the scheduler's deadline for the attempt */
	bool cancelled;		     /* the scheduler dropped it: its result is ignored */
	struct herd_work work;	     /* local target */
	struct herd_sse_parser *sse; /* remote target with token streaming */
	json_t *sse_result;	     /* the "result" event's envelope */
	uint64_t req_id;
	struct flight *next; /* the run's list (job thread only) */
};

struct completion {
	struct flight *f;
	enum herd_err err;
	bool remote_error; /* the peer answered with an error envelope (err is its code) */
	char msg[768];
	json_t *result; /* a fragment result object (success) */
	struct completion *next;
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
	int n_t, cap_t;
	struct herd_sched *sched;
	double default_tps; /* claimed for nodes that have not measured the model */
	struct flight *flights;
	int n_flights;
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
	c->f = f;
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
	return atomic_load(&f->run->rec->cancel) || atomic_load(&f->work.cancel) ? 1 : 0;
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

/* Multi thread: a peer answered (or did not). The flight itself is freed by the job thread. */
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
	f->sse = NULL;
	json_decref(f->sse_result);
	f->sse_result = NULL;
	push(r, c);
}

static void describe(const struct dispatch_target *t, char *out, size_t size)
{
	if (!t->url[0])
		snprintf(out, size, "this node (%s)", t->id);
	else
		snprintf(out, size, "peer %s (%s)", t->url, t->id[0] ? t->id : "?");
}

static int target_find(const struct run *r, const char *id)
{
	for (int i = 0; i < r->n_t; i++)
		if (!strcmp(r->t[i].id, id))
			return i;
	return -1;
}

/* Makes a target a peer of the job's scheduler, starting from its standing. */
static void target_add(struct run *r, const char *id, const char *url, int slots, double tps)
{
	int i = target_find(r, id);
	if (i < 0) {
		if (r->n_t == r->cap_t) {
			r->cap_t = r->cap_t ? 2 * r->cap_t : 16;
			r->t = herd_xrealloc(r->t, (size_t)r->cap_t * sizeof *r->t);
		}
		i = r->n_t;
		memset(&r->t[i], 0, sizeof r->t[i]);
		herd_node_copy(r->t[i].id, sizeof r->t[i].id, id);
		herd_node_copy(r->t[i].url, sizeof r->t[i].url, url);
	}
	struct dispatch_target *t = &r->t[i];
	t->slots = slots > 0 ? slots : 1;
	t->measured = tps > 0;
	t->tokens_per_s = tps > 0 ? tps : r->default_tps;
	if (herd_sched_peer_upsert(r->sched, id, t->slots, t->tokens_per_s)) {
		herd_log(WARN, "job %s: node %s left out: %s", r->job->job_id, id, herd_last_error());
		return;
	}
	if (i == r->n_t) {
		r->n_t++;
		herd_standing_restore(r->n->standing, r->sched, id);
	}
	t->live = true;
}

/* The discovered peers serving the model now: new ones are added, vanished ones removed;
 * this node's own record gives its measured speed. */
static void rediscover(struct run *r)
{
	if (!r->n->disco)
		return;
	struct herd_discovered_peer *dp = NULL;
	size_t nd = herd_discovery_peers_for_model(r->n->disco, r->job->model_name, &dp);
	bool *seen = herd_xcalloc((size_t)r->n_t + nd + 1, sizeof *seen);
	for (size_t i = 0; i < nd; i++) {
		int k = target_find(r, dp[i].is_self ? r->n->id : dp[i].peer_id);
		/* this node: take the speed it advertises, once it has measured it */
		if (dp[i].is_self) {
			if (k >= 0 && !r->t[k].measured && dp[i].tokens_per_s > 0)
				target_add(r, r->n->id, "", r->t[k].slots, dp[i].tokens_per_s);
			continue;
		}
		if (k >= 0 && r->t[k].peer)
			continue; /* a --peer node, kept as it was learned */
		bool url_dup = false;
		for (int q = 0; q < r->n_t && !url_dup; q++)
			url_dup = r->t[q].peer && !strcmp(r->t[q].url, dp[i].url);
		if (url_dup)
			continue;
		if (k < 0 || !r->t[k].live)
			target_add(r, dp[i].peer_id, dp[i].url, dp[i].slots, dp[i].tokens_per_s);
		k = target_find(r, dp[i].peer_id);
		if (k >= 0)
			seen[k] = true;
	}
	for (int k = 0; k < r->n_t; k++) {
		struct dispatch_target *t = &r->t[k];
		if (t->live && t->url[0] && !t->peer && !seen[k]) {
			herd_log(INFO, "job %s: node %s left the swarm", r->job->job_id, t->id);
			herd_sched_peer_remove(r->sched, t->id);
			t->live = false;
		}
	}
	free(seen);
	free(dp);
}

/* Targets: this node, the --peer nodes that serve the model, discovered nodes. Fills down
 * with the --peer nodes that could not be reached. */
static void gather_targets(struct run *r, char *down, size_t down_size)
{
	struct herd_node *n = r->n;
	struct herd_job *job = r->job;
	size_t down_len = 0;
	down[0] = '\0';
	herd_node_refresh_peers(n);
	if (herd_worker_model(n->worker, job->model_name))
		target_add(r, n->id, "", herd_worker_slots(n->worker), 0);
	pthread_mutex_lock(&n->peers_mu);
	for (size_t i = 0; i < n->n_peers; i++) {
		struct node_peer *p = &n->peers[i];
		if (p->down || !p->known) {
			if (down_len < down_size)
				down_len += (size_t)snprintf(down + down_len, down_size - down_len,
							     "%speer %s is down (%s)",
							     down_len ? "; " : "", p->url, p->error);
			continue;
		}
		if (!herd_node_peer_serves(p, job->model_name) || !strcmp(p->id, n->id) ||
		    target_find(r, p->id) >= 0)
			continue;
		target_add(r, p->id, p->url, p->slots, 0);
		int ti = target_find(r, p->id);
		if (ti >= 0)
			r->t[ti].peer = p;
	}
	pthread_mutex_unlock(&n->peers_mu);
	rediscover(r);
	/* A node that has not measured the model yet is taken to be as fast as the mean of
	 * those that have: a default far below their real speed would keep it idle. */
	double sum = 0;
	int k = 0;
	for (int i = 0; i < r->n_t; i++)
		if (r->t[i].live && r->t[i].measured)
			sum += r->t[i].tokens_per_s, k++;
	if (k == 0)
		return;
	r->default_tps = sum / k;
	for (int i = 0; i < r->n_t; i++)
		if (r->t[i].live && !r->t[i].measured) {
			r->t[i].tokens_per_s = r->default_tps;
			herd_sched_peer_upsert(r->sched, r->t[i].id, r->t[i].slots, r->default_tps);
		}
}

/* Expected tokens of a fragment: its prompt (about 4 bytes a token) and what it generates. */
static double fragment_cost(const struct herd_job *job, const struct herd_fragment *f)
{
	double bytes = (double)(f->text_len + f->context_before_len + f->context_after_len);
	size_t items = 1;
	if (f->kind == HERD_INPUT_ARRAY) {
		items = f->n_items ? f->n_items : 1;
		for (size_t i = 0; i < f->n_items; i++)
			bytes += (double)strlen(f->items[i]);
	}
	double gen = (double)(f->max_tokens > 0 ? f->max_tokens : job->max_tokens);
	double cost = bytes / 4 + gen * (double)items;
	return cost >= 1 ? cost : 1;
}

static void ignore_done(const struct herd_http_result *res, void *ud)
{
	(void)res;
	(void)ud;
}

static void post_command(struct run *r, const struct dispatch_target *t, struct herd_command *c)
{
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

static enum herd_err send_fragment(struct run *r, const struct herd_sched_action *a, int ti)
{
	struct dispatch_target *t = &r->t[ti];
	struct flight *f = herd_xcalloc(1, sizeof *f);
	f->run = r;
	f->frag = (int)a->fragment;
	f->target = ti;
	f->attempt = a->attempt;
	f->started_ms = herd_now_ms();
	f->deadline_ms = a->deadline_ms;
	const struct herd_fragment *fr = &r->job->fragments[f->frag];
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
		/* The scheduler times the attempt out (CANCEL); this is only a backstop. */
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
	f->next = r->flights;
	r->flights = f;
	r->n_flights++;
	pthread_mutex_lock(&r->rec->mu);
	r->rec->running++;
	pthread_mutex_unlock(&r->rec->mu);
	return HERD_OK;
}

/* Stops one flight: a local work gets its cancel flag, a remote request is cancelled and its
 * peer told to stop that fragment (CANCEL_JOB with fragment_id). Its completion still comes
 * and is dropped. */
static void cancel_flight(struct run *r, struct flight *f)
{
	if (f->cancelled)
		return;
	f->cancelled = true;
	struct dispatch_target *t = &r->t[f->target];
	if (!t->url[0]) {
		atomic_store(&f->work.cancel, true);
		return;
	}
	herd_http_multi_cancel(r->n->multi, f->req_id);
	struct herd_command *c = herd_command_new(HERD_COMMAND_CANCEL_JOB, NULL, r->n->id, t->id);
	herd_command_with_param(c, "job_id", json_string(r->job->job_id));
	herd_command_with_param(c, "fragment_id",
				json_string(r->job->fragments[f->frag].fragment_id));
	post_command(r, t, c);
}

static void cancel_all(struct run *r)
{
	for (struct flight *f = r->flights; f; f = f->next)
		cancel_flight(r, f);
}

/* Checks a successful result against the fragment that was sent. */
static enum herd_err check_result(struct run *r, struct completion *c,
				  struct herd_fragment_result **out)
{
	const struct herd_fragment *f = &r->job->fragments[c->f->frag];
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

/* What one job's loop keeps between its steps. */
struct outcome {
	bool ended;
	enum herd_err err;
	char msg[HERD_NODE_JOB_ERROR_BYTES];
};

static void end_job(struct run *r, struct outcome *o, enum herd_err e, const char *msg)
{
	if (o->ended)
		return;
	o->ended = true;
	o->err = e;
	herd_node_copy(o->msg, sizeof o->msg, msg);
	herd_sched_job_cancel(r->sched, r->job->job_id);
	cancel_all(r);
}

static void accept_result(struct run *r, struct completion *c, struct herd_fragment_result *fr,
			  json_t *extras)
{
	struct job_rec *rec = r->rec;
	const struct dispatch_target *t = &r->t[c->f->target];
	const char *nid = fr->node_id[0] ? fr->node_id : t->id;
	json_t *x = json_array_get(extras, (size_t)c->f->frag);
	json_object_set_new(x, "node_id", json_string(nid));
	json_object_set_new(x, "node_url", json_string(t->url[0] ? t->url : r->n->url));
	json_t *pt = json_object_get(c->result, "prompt_tokens");
	json_t *fin = json_object_get(c->result, "finish_reasons");
	/* set_new on a fresh reference: the defaults are not leaked when the peer omits them */
	json_object_set_new(x, "prompt_tokens", pt ? json_incref(pt) : json_integer(0));
	json_object_set_new(x, "finish_reasons", fin ? json_incref(fin) : json_array());
	json_t *res = herd_fragment_result_to_json(fr);
	json_object_set_new(x, "result", res); /* a failed job's answer still carries it */
	pthread_mutex_lock(&rec->mu);
	rec->done++;
	json_array_set_new(rec->nodes, (size_t)c->f->frag, json_string(nid));
	int rdone = rec->done;
	pthread_mutex_unlock(&rec->mu);
	json_t *ev = json_deep_copy(res);
	json_object_set_new(ev, "node_id", json_string(nid));
	json_object_set_new(ev, "fragments_done", json_integer(rdone));
	json_object_set_new(ev, "fragments_total", json_integer(r->job->n_fragments));
	json_object_set_new(ev, "elapsed_ms", json_real(herd_now_ms() - rec->started_ms));
	herd_job_rec_event(rec, "fragment", ev, true);
	json_decref(ev);
}

static void handle(struct run *r, struct completion *c, struct herd_aggregator *agg,
		   json_t *extras, struct outcome *o)
{
	struct flight *f = c->f;
	struct dispatch_target *t = &r->t[f->target];
	struct job_rec *rec = r->rec;
	pthread_mutex_lock(&rec->mu);
	rec->running--;
	pthread_mutex_unlock(&rec->mu);
	struct herd_fragment_result *fr = NULL;
	enum herd_err e = c->err;
	char msg[1024];
	herd_node_copy(msg, sizeof msg, c->msg);
	if (!e && check_result(r, c, &fr)) {
		e = HERD_ERR_NET;
		snprintf(msg, sizeof msg, "bad answer: %s", herd_last_error());
	}
	double now = herd_now_ms();
	if (f->cancelled || o->ended) {
		/* dropped: a losing copy, a timed-out attempt, or the job is over */
	} else if (!e) {
		if (herd_sched_result(r->sched, f->attempt, now, true, NULL)) {
			if (herd_aggregator_add(agg, fr)) {
				char why[1024];
				snprintf(why, sizeof why, "fragment %d from %s: %s", f->frag, t->id,
					 herd_last_error());
				end_job(r, o, HERD_ERR_INTERNAL, why);
			} else {
				accept_result(r, c, fr, extras);
			}
		}
	} else {
		char who[600];
		describe(t, who, sizeof who);
		char line[1700];
		snprintf(line, sizeof line, "fragment %d on %s: %s", f->frag, who, msg);
		herd_log(WARN, "job %s: %s", r->job->job_id, line);
		pthread_mutex_lock(&rec->mu);
		json_array_append_new(rec->errors, json_string(line));
		rec->retries++;
		pthread_mutex_unlock(&rec->mu);
		/* The request itself was refused (its input is too big for the model, say):
		 * running it elsewhere cannot help. */
		bool final = (c->remote_error || !t->url[0]) &&
			     (e == HERD_ERR_BAD_INPUT || e == HERD_ERR_LIMIT);
		if (e == HERD_ERR_CANCELLED && !t->url[0] && atomic_load(&r->n->stopping))
			final = true;
		char reason[1200];
		bool named = !t->url[0] || strstr(msg, t->url); /* the peer's URL once */
		snprintf(reason, sizeof reason, "%s%s%s", named ? "" : t->url, named ? "" : ": ", msg);
		herd_sched_result(r->sched, f->attempt, now, false, reason);
		if (final)
			end_job(r, o, e, line);
	}
	herd_fragment_result_free(fr);
}

/* A CANCEL at or past the attempt's deadline is a timeout (else a faster copy won): it goes
 * into the job's errors like any failed attempt. */
static void note_timeout(struct run *r, const struct flight *f)
{
	double now = herd_now_ms();
	if (f->cancelled || now < f->deadline_ms)
		return;
	char who[600], line[800];
	describe(&r->t[f->target], who, sizeof who);
	snprintf(line, sizeof line, "fragment %d on %s: timed out after %.0f ms", f->frag, who,
		 now - f->started_ms);
	herd_log(WARN, "job %s: %s", r->job->job_id, line);
	pthread_mutex_lock(&r->rec->mu);
	json_array_append_new(r->rec->errors, json_string(line));
	r->rec->retries++;
	pthread_mutex_unlock(&r->rec->mu);
}

/* Carries out the actions due now. */
static void act(struct run *r, struct outcome *o)
{
	struct herd_sched_action a[DISPATCH_ACTIONS];
	size_t n;
	do {
		n = herd_sched_poll(r->sched, herd_now_ms(), a, DISPATCH_ACTIONS);
		for (size_t i = 0; i < n; i++) {
			if (a[i].kind == HERD_SCHED_JOB_DONE) {
				o->ended = true;
			} else if (a[i].kind == HERD_SCHED_JOB_FAILED) {
				const char *why = herd_sched_job_error(r->sched, a[i].job_id);
				char msg[HERD_NODE_JOB_ERROR_BYTES];
				snprintf(msg, sizeof msg, "job %s failed: %s", r->job->job_id,
					 why ? why : "?");
				end_job(r, o, HERD_ERR_NET, msg);
			} else if (a[i].kind == HERD_SCHED_CANCEL) {
				for (struct flight *f = r->flights; f; f = f->next)
					if (f->attempt == a[i].attempt) {
						note_timeout(r, f);
						cancel_flight(r, f);
					}
			} else if (!o->ended) {
				int ti = target_find(r, a[i].peer_id);
				HERD_ASSERT(ti >= 0);
				if (send_fragment(r, &a[i], ti)) {
					char why[1200];
					snprintf(why, sizeof why, "%s%s%s", r->t[ti].url,
						 r->t[ti].url[0] ? ": " : "", herd_last_error());
					herd_sched_result(r->sched, a[i].attempt, herd_now_ms(), false,
							  why);
				}
			}
		}
	} while (n == DISPATCH_ACTIONS);
}

/* Waits for completions until wake_ms (herd_now_ms); returns what came. */
static struct completion *wait_completions(struct run *r, double wake_ms)
{
	pthread_mutex_lock(&r->mu);
	while (!r->head && !atomic_load(&r->rec->cancel)) {
		double left = wake_ms - herd_now_ms();
		if (left <= 0)
			break;
		if (left > 200)
			left = 200; /* cancellation is a flag: look at it this often */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		long long ns = ts.tv_nsec + (long long)(left * 1e6);
		ts.tv_sec += (time_t)(ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
		pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	}
	struct completion *list = r->head;
	r->head = r->tail = NULL;
	pthread_mutex_unlock(&r->mu);
	return list;
}

static void flight_remove(struct run *r, struct flight *f)
{
	for (struct flight **p = &r->flights; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
	r->n_flights--;
	free(f);
}

/* The standing of every peer this job used goes back to the node (reputation included). */
static void save_standing(struct run *r)
{
	double now = herd_now_ms();
	for (int i = 0; i < r->n_t; i++) {
		double rep = herd_standing_save(r->n->standing, r->sched, r->t[i].id, now);
		if (r->n->disco && r->t[i].url[0])
			herd_discovery_set_reputation(r->n->disco, r->t[i].id, rep);
	}
}

enum herd_err herd_dispatch_job(struct herd_node *n, struct herd_job *job, struct job_rec *rec,
				bool stream_tokens, struct herd_aggregator *agg, json_t *extras)
{
	struct run r = {.n = n,
			.job = job,
			.rec = rec,
			.stream_tokens = stream_tokens,
			.default_tps = DISPATCH_DEFAULT_TPS};
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	struct outcome *o = herd_xcalloc(1, sizeof *o);
	r.sched = herd_sched_new(&n->sched_params);
	HERD_ASSERT(r.sched); /* the parameters were checked at start */
	herd_sched_poll(r.sched, herd_now_ms(), NULL, 0);

	char down[1024];
	gather_targets(&r, down, sizeof down);
	int live = 0;
	for (int i = 0; i < r.n_t; i++)
		live += r.t[i].live;
	enum herd_err result;
	if (live == 0) {
		if (down[0])
			result = herd_fail(HERD_ERR_NET, "no node could run job %s (model '%s'): %s",
					   job->job_id, job->model_name, down);
		else
			result = herd_fail(HERD_ERR_NOT_FOUND,
					   "params.model_name: no node serves model '%s'",
					   job->model_name);
		goto out;
	}
	double *cost = herd_xcalloc((size_t)job->n_fragments, sizeof *cost);
	for (int i = 0; i < job->n_fragments; i++)
		cost[i] = fragment_cost(job, &job->fragments[i]);
	enum herd_err e = herd_sched_job_add(r.sched, job->job_id, (size_t)job->n_fragments, cost);
	free(cost);
	if (e) {
		result = e;
		goto out;
	}
	double rediscover_at = herd_now_ms() + DISPATCH_REDISCOVER_MS;
	while (!o->ended || r.flights) {
		if (!o->ended && atomic_load(&rec->cancel)) {
			char msg[256];
			snprintf(msg, sizeof msg, "job %s: cancelled", job->job_id);
			end_job(&r, o, HERD_ERR_CANCELLED, msg);
		}
		if (!o->ended) {
			if (herd_now_ms() >= rediscover_at) {
				rediscover(&r);
				rediscover_at = herd_now_ms() + DISPATCH_REDISCOVER_MS;
			}
			act(&r, o);
		}
		if (o->ended && !r.flights)
			break;
		double wake = o->ended ? herd_now_ms() + 1000
				       : fmin(herd_sched_next_deadline(r.sched), rediscover_at);
		for (struct completion *c = wait_completions(&r, wake), *nx; c; c = nx) {
			nx = c->next;
			handle(&r, c, agg, extras, o);
			flight_remove(&r, c->f);
			json_decref(c->result);
			free(c);
		}
	}
	save_standing(&r);
	result = o->err;
	if (result)
		herd_fail(result, "%s", o->msg);
out:
	herd_sched_free(r.sched);
	free(r.t);
	free(o);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	return result;
}
