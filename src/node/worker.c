/* worker — runs fragments: K slot threads take works from one FIFO queue and run the
 * model on them. Each model is loaded once (node.c) and shared; each slot creates its own
 * herd_ctx per model the first time it needs one, with max(1, threads / slots) threads.
 * The one thing to know: inference happens here and only here (run_inference). */
#include <stdlib.h>
#include <string.h>

#include "node_int.h"

struct slot {
	struct herd_worker *w;
	pthread_t thread;
	struct herd_ctx **ctxs; /* one per model, created lazily */
	struct herd_work *cur;	/* under w->mu */
};

struct herd_worker {
	const struct node_model *models;
	size_t n_models;
	int threads_per_ctx, n_slots;
	char *node_id;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct herd_work *head, *tail;
	int queued, running;
	bool stopping;
	struct slot *slots;
	void (*on_load)(void *ud, int running, int queued);
	void *load_ud;
	void (*on_speed)(void *ud, const char *model_name, double tokens_per_s);
	void *speed_ud;
	atomic_uint_fast64_t seed_counter;
};

const struct node_model *herd_worker_model(const struct herd_worker *w, const char *name)
{
	for (size_t i = 0; i < w->n_models; i++)
		if (!strcmp(w->models[i].name, name))
			return &w->models[i];
	return NULL;
}

int herd_worker_slots(const struct herd_worker *w) { return w->n_slots; }

void herd_worker_load(struct herd_worker *w, int *running, int *queued)
{
	pthread_mutex_lock(&w->mu);
	*running = w->running;
	*queued = w->queued;
	pthread_mutex_unlock(&w->mu);
}

static void tell_load(struct herd_worker *w)
{
	if (!w->on_load)
		return;
	int r, q;
	herd_worker_load(w, &r, &q);
	w->on_load(w->load_ud, r, q);
}

/* ---- inference ---- */

struct gen_cb {
	struct herd_work *work;
	int item;
};

static int on_gen_token(void *ud, int32_t id, const char *text, size_t len)
{
	(void)id;
	struct gen_cb *g = ud;
	if (atomic_load(&g->work->cancel))
		return 1;
	if (g->work->on_token && len)
		return g->work->on_token(g->work->token_ud, g->item, text, len);
	return 0;
}

json_t *herd_node_json_text(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	if (j)
		return j;
	char *out = herd_xmalloc(n * 3 + 1);
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		unsigned char b = (unsigned char)s[i];
		size_t need = b < 0x80		   ? 1
			      : (b & 0xE0) == 0xC0 ? 2
			      : (b & 0xF0) == 0xE0 ? 3
			      : (b & 0xF8) == 0xF0 ? 4
						   : 0;
		if (need && i + need <= n && herd_utf8_valid(s + i, need, NULL) && s[i]) {
			memcpy(out + o, s + i, need);
			o += need;
			i += need;
		} else {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	j = json_stringn(out, o);
	free(out);
	HERD_ASSERT(j);
	return j;
}

/* Generates for one prompt. On success *text (string) and counts are set. */
static enum herd_err generate_one(struct herd_ctx *ctx, const struct node_model *m,
				  struct herd_work *work, int item, const char *prompt,
				  size_t prompt_len, uint64_t seed, json_t **text,
				  int64_t *prompt_tokens, int64_t *gen_tokens, double *gen_ms,
				  const char **finish)
{
	const struct herd_fragment *f = work->frag;
	struct herd_generate_params gp = herd_generate_default_params(m->model);
	gp.max_tokens = (int32_t)f->max_tokens;
	gp.sampling.temperature = (float)f->temperature;
	gp.sampling.top_p = (float)f->top_p;
	gp.sampling.seed = seed;
	struct gen_cb cb = {work, item};
	gp.on_token = on_gen_token;
	gp.ud = &cb;
	struct herd_generate_result r = {0};
	enum herd_err e = herd_generate(ctx, prompt, prompt_len, &gp, &r);
	if (!e && atomic_load(&work->cancel))
		e = herd_fail(HERD_ERR_CANCELLED, "fragment %d: cancelled", f->index);
	if (!e) {
		*text = herd_node_json_text(r.text, r.text_len);
		*prompt_tokens += r.n_prompt;
		*gen_tokens += (int64_t)r.n_ids;
		*gen_ms += r.gen_ms;
		*finish = r.stopped_at_eos ? "stop" : "length";
	}
	herd_generate_result_free(&r);
	return e;
}

static json_t *run_inference(struct slot *s, struct herd_work *work, enum herd_err *err,
			     char *msg, size_t msg_size)
{
	struct herd_worker *w = s->w;
	const struct herd_fragment *f = work->frag;
	const struct node_model *m = work->model;
	size_t mi = (size_t)(m - w->models);
	double t0 = herd_now_ms();
	json_t *out = NULL, *finish = json_array(), *result = NULL;
	int64_t prompt_tokens = 0, gen_tokens = 0;
	double gen_ms = 0;
	enum herd_err e = HERD_OK;
	if (!s->ctxs[mi]) {
		struct herd_ctx_params cp = herd_ctx_default_params();
		cp.n_threads = w->threads_per_ctx;
		if ((e = herd_ctx_new(m->model, &cp, &s->ctxs[mi])))
			goto out;
	}
	const char *tmpl = json_string_value(json_object_get(f->params, "prompt_template"));
	if (!tmpl)
		tmpl = HERD_DEFAULT_PROMPT_TEMPLATE;
	json_t *js = json_object_get(f->params, "seed");
	bool seeded = json_is_integer(js);
	uint64_t base = seeded ? (uint64_t)json_integer_value(js) : 0;
	if (!seeded) /* a different stream for every work; reproducible only with a seed */
		base = herd_now_ns() ^ (atomic_fetch_add(&w->seed_counter, 1) * 0x9E3779B97F4A7C15ull);
	if (f->kind == HERD_INPUT_TEXT) {
		size_t plen;
		char *prompt =
		    herd_prompt_render(tmpl, f->text, f->text_len, f->context_before,
				       f->context_before_len, f->context_after, f->context_after_len, &plen);
		const char *fin = "stop";
		e = generate_one(s->ctxs[mi], m, work, 0, prompt, plen,
				 seeded ? base + (uint64_t)f->index : base, &out, &prompt_tokens,
				 &gen_tokens, &gen_ms, &fin);
		free(prompt);
		if (!e)
			json_array_append_new(finish, json_string(fin));
	} else {
		out = json_array();
		for (size_t k = 0; k < f->n_items && !e; k++) {
			size_t plen;
			const char *it = f->items[k];
			char *prompt = herd_prompt_render(tmpl, it, strlen(it), "", 0, "", 0, &plen);
			json_t *t = NULL;
			const char *fin = "stop";
			/* seed + item index in the whole input: independent of the fragmenting */
			uint64_t seed = seeded ? base + (uint64_t)(f->piece.span_start + k)
					       : base + k * 7919;
			e = generate_one(s->ctxs[mi], m, work, (int)k, prompt, plen, seed, &t,
					 &prompt_tokens, &gen_tokens, &gen_ms, &fin);
			free(prompt);
			if (!e) {
				json_array_append_new(out, t);
				json_array_append_new(finish, json_string(fin));
			}
		}
	}
	if (e)
		goto out;
	struct herd_fragment_result *r = herd_fragment_result_new(f, w->node_id);
	r->output = out;
	out = NULL;
	r->tokens_generated = gen_tokens;
	r->processing_time_ms = herd_now_ms() - t0;
	result = herd_fragment_result_to_json(r);
	herd_fragment_result_free(r);
	json_object_set_new(result, "prompt_tokens", json_integer(prompt_tokens));
	json_object_set(result, "finish_reasons", finish);
	json_object_set_new(result, "model_name", json_string(m->name));
	/* a measured speed needs a few tokens: one token's time is mostly noise */
	if (w->on_speed && gen_tokens >= 8 && gen_ms > 0)
		w->on_speed(w->speed_ud, m->name, (double)gen_tokens * 1000.0 / gen_ms);
out:
	if (e)
		snprintf(msg, msg_size, "%s", herd_last_error());
	*err = e;
	json_decref(out);
	json_decref(finish);
	return result;
}

static void *slot_main(void *arg)
{
	struct slot *s = arg;
	struct herd_worker *w = s->w;
	char msg[1024];
	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (!w->head && !w->stopping)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->head) { /* stopping and nothing left */
			pthread_mutex_unlock(&w->mu);
			break;
		}
		struct herd_work *work = w->head;
		w->head = work->next;
		if (!w->head)
			w->tail = NULL;
		w->queued--;
		w->running++;
		s->cur = work;
		pthread_mutex_unlock(&w->mu);
		tell_load(w);

		enum herd_err e = HERD_OK;
		json_t *result = NULL;
		msg[0] = '\0';
		if (atomic_load(&work->cancel)) {
			e = HERD_ERR_CANCELLED;
			snprintf(msg, sizeof msg, "fragment %d: cancelled", work->frag->index);
		} else {
			result = run_inference(s, work, &e, msg, sizeof msg);
		}
		pthread_mutex_lock(&w->mu);
		s->cur = NULL;
		w->running--;
		pthread_mutex_unlock(&w->mu);
		tell_load(w);
		work->on_done(work->ud, e, msg, result); /* work may be freed from here on */
	}
	return NULL;
}

void herd_worker_on_speed(struct herd_worker *w,
			  void (*fn)(void *ud, const char *model_name, double tokens_per_s), void *ud)
{
	w->on_speed = fn;
	w->speed_ud = ud;
}

enum herd_err herd_worker_new(const struct node_model *models, size_t n_models, int threads,
			      int slots, const char *node_id,
			      void (*on_load)(void *ud, int running, int queued), void *ud,
			      struct herd_worker **out)
{
	*out = NULL;
	if (slots < 1 || slots > HERD_MAX_SLOTS)
		return herd_fail(HERD_ERR_BAD_INPUT, "slots: must be 1..%d, got %d", HERD_MAX_SLOTS,
				 slots);
	struct herd_worker *w = herd_xcalloc(1, sizeof *w);
	w->models = models;
	w->n_models = n_models;
	w->n_slots = slots;
	w->threads_per_ctx = threads / slots > 1 ? threads / slots : 1;
	w->node_id = herd_xstrdup(node_id);
	w->on_load = on_load;
	w->load_ud = ud;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->slots = herd_xcalloc((size_t)slots, sizeof *w->slots);
	for (int i = 0; i < slots; i++) {
		struct slot *s = &w->slots[i];
		s->w = w;
		s->ctxs = herd_xcalloc(n_models ? n_models : 1, sizeof *s->ctxs);
		if (pthread_create(&s->thread, NULL, slot_main, s)) {
			w->n_slots = i;
			herd_worker_free(w);
			return herd_fail(HERD_ERR_NOMEM, "worker: cannot start slot thread %d", i);
		}
	}
	*out = w;
	return HERD_OK;
}

enum herd_err herd_worker_submit(struct herd_worker *w, struct herd_work *work)
{
	const struct herd_fragment *f = work->frag;
	work->model = herd_worker_model(w, f->model_name);
	if (!work->model)
		return herd_fail(HERD_ERR_NOT_FOUND, "params.model_name: this node does not serve '%s'",
				 f->model_name);
	work->next = NULL;
	pthread_mutex_lock(&w->mu);
	if (w->stopping) {
		pthread_mutex_unlock(&w->mu);
		return herd_fail(HERD_ERR_CANCELLED, "worker: the node is stopping");
	}
	if (w->tail)
		w->tail->next = work;
	else
		w->head = work;
	w->tail = work;
	w->queued++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	tell_load(w);
	return HERD_OK;
}

static bool work_matches(const struct herd_work *k, const char *job_id, const char *fragment_id)
{
	return !strcmp(k->frag->job_id, job_id) &&
	       (!fragment_id || !strcmp(k->frag->fragment_id, fragment_id));
}

int herd_worker_cancel_job(struct herd_worker *w, const char *job_id, const char *fragment_id)
{
	int n = 0;
	pthread_mutex_lock(&w->mu);
	for (struct herd_work *k = w->head; k; k = k->next)
		if (work_matches(k, job_id, fragment_id)) {
			atomic_store(&k->cancel, true);
			n++;
		}
	for (int i = 0; i < w->n_slots; i++) {
		struct herd_work *k = w->slots[i].cur;
		if (k && work_matches(k, job_id, fragment_id)) {
			atomic_store(&k->cancel, true);
			n++;
		}
	}
	pthread_mutex_unlock(&w->mu);
	return n;
}

void herd_worker_stop(struct herd_worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	if (w->stopping) {
		pthread_mutex_unlock(&w->mu);
		return;
	}
	w->stopping = true;
	for (struct herd_work *k = w->head; k; k = k->next)
		atomic_store(&k->cancel, true);
	for (int i = 0; i < w->n_slots; i++)
		if (w->slots[i].cur)
			atomic_store(&w->slots[i].cur->cancel, true);
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	/* slots drain the queue (every queued work is cancelled: on_done runs with CANCELLED) */
	for (int i = 0; i < w->n_slots; i++)
		pthread_join(w->slots[i].thread, NULL);
}

void herd_worker_free(struct herd_worker *w)
{
	if (!w)
		return;
	herd_worker_stop(w);
	for (int i = 0; i < w->n_slots; i++) {
		for (size_t k = 0; k < w->n_models; k++)
			herd_ctx_free(w->slots[i].ctxs[k]);
		free(w->slots[i].ctxs);
	}
	free(w->slots);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w->node_id);
	free(w);
}

/* ---- blocking run ---- */

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	enum herd_err err;
	char msg[1024];
	json_t *result;
};

static void wait_done(void *ud, enum herd_err err, const char *msg, json_t *result)
{
	struct waiter *wt = ud;
	pthread_mutex_lock(&wt->mu);
	wt->err = err;
	herd_node_copy(wt->msg, sizeof wt->msg, msg ? msg : "");
	wt->result = result;
	wt->done = true;
	pthread_cond_signal(&wt->cv);
	pthread_mutex_unlock(&wt->mu);
}

enum herd_err herd_worker_run(struct herd_worker *w, struct herd_work *work, json_t **result)
{
	*result = NULL;
	struct waiter wt = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	work->on_done = wait_done;
	work->ud = &wt;
	enum herd_err e = herd_worker_submit(w, work);
	if (e)
		return e;
	pthread_mutex_lock(&wt.mu);
	while (!wt.done)
		pthread_cond_wait(&wt.cv, &wt.mu);
	pthread_mutex_unlock(&wt.mu);
	if (wt.err)
		return herd_fail(wt.err, "%s", wt.msg);
	*result = wt.result;
	return HERD_OK;
}
