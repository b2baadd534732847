/* node — one herd process: loads the models, starts the worker, the HTTP server (routes
 * below) and, when asked, discovery; answers the Command envelope API.
 * The one thing to know: handlers run on their connection's thread and may block there
 * (a job, a fragment); shutdown cancels all work first, so that every handler returns. */
#include <ctype.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node_int.h"

struct herd_node_params herd_node_default_params(void)
{
	return (struct herd_node_params){.host = "127.0.0.1", .slots = 1};
}

const char *herd_node_id(const struct herd_node *n) { return n->id; }
uint16_t herd_node_port(const struct herd_node *n) { return herd_http_server_port(n->srv); }
const char *herd_node_url(const struct herd_node *n) { return n->url; }

static int machine_cores(void)
{
	long c = sysconf(_SC_NPROCESSORS_ONLN);
	return c > 0 ? (int)c : 1;
}

static int64_t machine_memory_mb(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
	return pages > 0 && size > 0 ? (int64_t)pages * size / (1 << 20) : 0;
}

/* ---------------------------------------------------------------- answers */

static void answer(struct herd_http_resp *resp, unsigned status, struct herd_command *a)
{
	herd_http_resp_json(resp, status, herd_command_to_json(a));
	herd_command_free(a);
}

static void answer_error(struct herd_http_resp *resp, struct herd_node *n,
			 const struct herd_command *cmd, enum herd_err e, const char *msg)
{
	answer(resp, herd_node_http_status(e), herd_command_answer_error(cmd, n->id, e, msg));
}

static bool not_ready(struct herd_node *n, struct herd_http_resp *resp)
{
	if (!n->worker || atomic_load(&n->stopping)) {
		herd_http_resp_error(resp, 503, HERD_ERR_CANCELLED,
				     n->worker ? "node: stopping" : "node: starting");
		return true;
	}
	return false;
}

/* ---------------------------------------------------------------- NODE_INFO, nodes */

static json_t *models_json(struct herd_node *n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n->n_models; i++) {
		const struct node_model *m = &n->models[i];
		const struct herd_model_info *mi = herd_model_info(m->model);
		json_array_append_new(
		    a, json_pack("{s:s, s:I, s:O, s:s, s:i, s:i, s:s}", "name", m->name,
				 "size_bytes", (json_int_t)m->size_bytes, "types", m->types, "arch",
				 mi->arch ? mi->arch : "llama", "n_ctx_train", mi->n_ctx_train,
				 "n_vocab", mi->n_vocab, "chat_format",
				 herd_chat_format_name(herd_chat_detect(m->chat_template))));
	}
	return a;
}

static json_t *node_info(struct herd_node *n)
{
	int running = 0, queued = 0;
	herd_worker_load(n->worker, &running, &queued);
	json_t *j = json_pack(
	    "{s:s, s:s, s:s, s:s, s:o, s:i, s:{s:i, s:i, s:f}, s:i, s:I, s:i, s:f, s:I, s:I}",
	    "node_id", n->id, "address", n->advertise, "url", n->url, "version", HERD_VERSION,
	    "models", models_json(n), "slots", n->slots, "load", "running", running, "queued",
	    queued, "ratio", (double)(running + queued) / n->slots, "cpu_cores", machine_cores(),
	    "memory_mb", (json_int_t)machine_memory_mb(), "threads", n->threads, "uptime_ms",
	    herd_now_ms() - n->started_ms, "jobs_running", (json_int_t)herd_jobs_running(n->jobs),
	    "jobs_done", (json_int_t)atomic_load(&n->jobs_done));
	HERD_ASSERT(j);
	json_t *peers = json_array();
	for (size_t i = 0; i < n->n_peers; i++)
		json_array_append_new(peers, json_string(n->peers[i].url));
	json_object_set_new(j, "peers", peers);
	if (n->disco)
		herd_discovery_node_info(n->disco, j);
	return j;
}

/* GET /v1/nodes without discovery: this node and its --peer nodes, as herd nodes prints. */
static json_t *nodes_json(struct herd_node *n)
{
	herd_node_refresh_peers(n);
	json_t *nodes = json_array();
	json_t *self_info = node_info(n);
	json_t *self_models = json_array();
	for (size_t i = 0; i < n->n_models; i++)
		json_array_append_new(self_models, json_pack("{s:s}", "name", n->models[i].name));
	json_array_append_new(
	    nodes, json_pack("{s:s, s:s, s:s, s:O, s:O, s:i, s:O, s:f, s:o, s:b, s:b}", "peer_id",
			     n->id, "address", n->advertise, "url", n->url, "cpu_cores",
			     json_object_get(self_info, "cpu_cores"), "memory_mb",
			     json_object_get(self_info, "memory_mb"), "slots", n->slots,
			     "load_ratio", json_object_get(json_object_get(self_info, "load"), "ratio"),
			     "reputation", 1.0, "models", self_models, "self", 1, "verified", 1));
	json_decref(self_info);
	pthread_mutex_lock(&n->peers_mu);
	for (size_t i = 0; i < n->n_peers; i++) {
		struct node_peer *p = &n->peers[i];
		json_t *models = json_array();
		size_t k;
		json_t *m;
		json_array_foreach(p->models, k, m)
		    json_array_append_new(models, json_pack("{s:O}", "name", m));
		const char *addr = strncmp(p->url, "http://", 7) ? p->url : p->url + 7;
		double rep;
		json_decref(herd_standing_json(n->standing, p->id, &rep));
		json_t *e = json_pack("{s:s, s:s, s:s, s:i, s:f, s:o, s:b, s:b, s:b}", "peer_id",
				      p->id, "address", addr, "url", p->url, "slots", p->slots,
				      "reputation", rep, "models", models, "self", 0, "verified",
				      p->known && !p->down, "down", p->down);
		if (p->info) {
			json_t *load = json_object_get(p->info, "load");
			json_object_set(e, "cpu_cores", json_object_get(p->info, "cpu_cores"));
			json_object_set(e, "memory_mb", json_object_get(p->info, "memory_mb"));
			json_object_set(e, "load_ratio", json_object_get(load, "ratio"));
		}
		if (p->down)
			json_object_set_new(e, "error", json_string(p->error));
		json_array_append_new(nodes, e);
	}
	pthread_mutex_unlock(&n->peers_mu);
	return json_pack("{s:s, s:s, s:o, s:I}", "peer_id", n->id, "swarm", "(--peer list)", "nodes",
			 nodes, "count", (json_int_t)(1 + n->n_peers));
}

/* ---------------------------------------------------------------- jobs */

struct job_thread {
	struct herd_node *n;
	struct herd_command *cmd;
	struct herd_job *job;
	struct job_rec *rec;
};

static void *job_thread_main(void *arg)
{
	struct job_thread *t = arg;
	unsigned status;
	json_t *resp = herd_coord_run(t->n, t->cmd, t->job, t->rec, &status, NULL);
	json_decref(resp); /* the subscribers got it as the "result" event */
	herd_job_rec_put(t->rec);
	herd_job_free(t->job);
	herd_command_free(t->cmd);
	free(t);
	return NULL;
}

static void stream_gone(struct herd_sse *s, void *ud)
{
	(void)s;
	struct job_rec *rec = ud; /* the client who asked for the job left: stop it */
	atomic_store(&rec->cancel, true);
}

static void run_inference_job(struct herd_node *n, struct herd_command *cmd,
			      struct herd_http_resp *resp)
{
	struct herd_job *job = NULL;
	enum herd_err e = herd_coord_make_job(n, cmd, &job);
	if (e) {
		answer_error(resp, n, cmd, e, herd_last_error());
		herd_command_free(cmd);
		return;
	}
	if (!json_is_true(json_object_get(cmd->params, "stream"))) {
		unsigned status;
		json_t *r = herd_coord_run(n, cmd, job, NULL, &status, NULL);
		herd_http_resp_json(resp, status, r);
		herd_job_free(job);
		herd_command_free(cmd);
		return;
	}
	struct job_rec *rec;
	if ((e = herd_jobs_add(n->jobs, job->job_id, job->n_fragments, &rec))) {
		struct herd_command *a = herd_command_answer_error(cmd, n->id, e, herd_last_error());
		answer(resp, 409, a);
		herd_job_free(job);
		herd_command_free(cmd);
		return;
	}
	struct herd_sse *s = herd_http_resp_sse(resp, stream_gone, rec);
	herd_job_rec_subscribe(rec, s);
	struct job_thread *t = herd_xmalloc(sizeof *t);
	*t = (struct job_thread){n, cmd, job, rec};
	if (!herd_node_spawn(n, job_thread_main, t)) {
		struct herd_command *a =
		    herd_command_answer_error(cmd, n->id, HERD_ERR_CANCELLED, "node: stopping");
		herd_job_rec_finish(rec, "cancelled", herd_command_to_json(a));
		herd_command_free(a);
		herd_job_rec_put(rec);
		herd_job_free(job);
		herd_command_free(cmd);
		free(t);
	}
}

/* ---------------------------------------------------------------- llama_fragment */

struct frag_stream {
	struct herd_node *n;
	struct herd_command *cmd;
	struct herd_fragment *frag;
	struct herd_sse *sse;
	struct herd_work work;
};

static int frag_stream_token(void *ud, int item, const char *text, size_t len)
{
	struct frag_stream *fs = ud;
	json_t *ev = json_pack("{s:i, s:i, s:o}", "fragment_index", fs->frag->index, "item", item,
			       "text", herd_node_json_text(text, len));
	enum herd_err e = herd_sse_send_json(fs->sse, "token", ev);
	json_decref(ev);
	return e == HERD_ERR_CANCELLED;
}

static void frag_stream_done(void *ud, enum herd_err err, const char *msg, json_t *result)
{
	struct frag_stream *fs = ud;
	struct herd_command *a =
	    err ? herd_command_answer_error(fs->cmd, fs->n->id, err, msg)
		: herd_command_answer_success(fs->cmd, fs->n->id, result);
	json_t *j = herd_command_to_json(a);
	herd_sse_send_json(fs->sse, "result", j);
	json_decref(j);
	herd_command_free(a);
	herd_sse_close(fs->sse);
	herd_fragment_free(fs->frag);
	herd_command_free(fs->cmd);
	free(fs);
}

static void frag_stream_gone(struct herd_sse *s, void *ud)
{
	(void)s;
	struct herd_work *w = ud;
	atomic_store(&w->cancel, true);
}

static void run_fragment(struct herd_node *n, struct herd_command *cmd,
			 struct herd_http_resp *resp)
{
	struct herd_fragment *f = NULL;
	enum herd_err e = herd_fragment_from_command(cmd, &f);
	if (e) {
		answer_error(resp, n, cmd, e, herd_last_error());
		herd_command_free(cmd);
		return;
	}
	if (json_is_true(json_object_get(cmd->params, "stream_tokens"))) {
		if (!herd_worker_model(n->worker, f->model_name)) {
			answer_error(resp, n, cmd, HERD_ERR_NOT_FOUND, "");
			herd_fragment_free(f);
			herd_command_free(cmd);
			return;
		}
		struct frag_stream *fs = herd_xcalloc(1, sizeof *fs);
		fs->n = n;
		fs->cmd = cmd;
		fs->frag = f;
		fs->work.frag = f;
		fs->work.on_token = frag_stream_token;
		fs->work.token_ud = fs;
		fs->work.on_done = frag_stream_done;
		fs->work.ud = fs;
		fs->sse = herd_http_resp_sse(resp, frag_stream_gone, &fs->work);
		if (herd_worker_submit(n->worker, &fs->work))
			frag_stream_done(fs, HERD_ERR_CANCELLED, herd_last_error(), NULL);
		return;
	}
	struct herd_work work = {.frag = f};
	json_t *result = NULL;
	if ((e = herd_worker_run(n->worker, &work, &result)))
		answer_error(resp, n, cmd, e, herd_last_error());
	else
		answer(resp, 200, herd_command_answer_success(cmd, n->id, result));
	herd_fragment_free(f);
	herd_command_free(cmd);
}

/* ---------------------------------------------------------------- POST /v1/command */

static const char *param_job_id(const struct herd_command *cmd)
{
	const char *id = json_string_value(json_object_get(cmd->params, "job_id"));
	if (!id || !*id) {
		herd_fail(HERD_ERR_BAD_INPUT, "params.job_id: required, a non-empty string");
		return NULL;
	}
	return id;
}

static void on_command(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	struct herd_node *n = ud;
	if (not_ready(n, resp))
		return;
	size_t len;
	const char *body = herd_http_req_body(req, &len);
	struct herd_command *cmd = NULL;
	enum herd_err e = herd_command_parse(body, len, &cmd);
	if (e) {
		herd_http_resp_error(resp, herd_node_http_status(e), e, "%s", herd_last_error());
		return;
	}
	if (cmd->status != HERD_COMMAND_REQUEST) {
		answer_error(resp, n, cmd, HERD_ERR_BAD_INPUT,
			     "status: a request must not have a status (this is an answer)");
		herd_command_free(cmd);
		return;
	}
	json_t *result = NULL;
	switch (cmd->kind) {
	case HERD_COMMAND_EXECUTE_TASK: {
		json_t *tt = json_object_get(cmd->params, "task_type");
		const char *task = json_string_value(tt);
		if (!tt || (task && !strcmp(task, "llama_inference"))) {
			run_inference_job(n, cmd, resp);
			return;
		}
		if (task && !strcmp(task, "llama_fragment")) {
			run_fragment(n, cmd, resp);
			return;
		}
		e = herd_fail(HERD_ERR_BAD_INPUT,
			      "params.task_type: must be \"llama_inference\" or \"llama_fragment\", "
			      "got %s%.64s%s",
			      task ? "\"" : "", task ? task : "a non-string", task ? "\"" : "");
		break;
	}
	case HERD_COMMAND_PING:
		result = json_pack("{s:b, s:s, s:I}", "pong", 1, "node_id", n->id, "time",
				   (json_int_t)time(NULL));
		break;
	case HERD_COMMAND_NODE_INFO:
		result = node_info(n);
		break;
	case HERD_COMMAND_FIND_NODES:
		if (n->disco)
			e = herd_discovery_find_nodes(n->disco, cmd->params, &result);
		else
			result = nodes_json(n);
		if (result)
			herd_standing_annotate(n->standing, json_object_get(result, "nodes"));
		break;
	case HERD_COMMAND_JOB_STATUS: {
		const char *id = param_job_id(cmd);
		struct job_rec *rec = id ? herd_jobs_get(n->jobs, id) : NULL;
		if (!id)
			e = HERD_ERR_BAD_INPUT;
		else if (!rec)
			e = herd_fail(HERD_ERR_NOT_FOUND, "params.job_id: no job '%.128s' on this node",
				      id);
		else
			result = herd_job_rec_status(rec);
		herd_job_rec_put(rec);
		break;
	}
	case HERD_COMMAND_CANCEL_JOB: {
		const char *id = param_job_id(cmd);
		if (!id) {
			e = HERD_ERR_BAD_INPUT;
			break;
		}
		struct job_rec *rec = herd_jobs_get(n->jobs, id);
		bool running = false;
		if (rec) {
			pthread_mutex_lock(&rec->mu);
			running = !strcmp(rec->state, "running");
			pthread_mutex_unlock(&rec->mu);
		}
		/* fragment_id (optional): only that fragment's work, e.g. a backup copy that lost */
		json_t *jf = json_object_get(cmd->params, "fragment_id");
		if (jf && (!json_is_string(jf) || !*json_string_value(jf))) {
			herd_job_rec_put(rec);
			e = herd_fail(HERD_ERR_BAD_INPUT, "params.fragment_id: must be a non-empty string");
			break;
		}
		if (jf)
			running = false; /* the job itself goes on */
		else if (rec)
			atomic_store(&rec->cancel, true);
		int frags = herd_worker_cancel_job(n->worker, id, json_string_value(jf));
		if (!rec && !frags)
			e = herd_fail(HERD_ERR_NOT_FOUND,
				      "params.job_id: no job '%.128s' runs on this node", id);
		else
			result = json_pack("{s:s, s:b, s:i}", "job_id", id, "cancelled",
					   running || frags > 0, "fragments_cancelled", frags);
		herd_job_rec_put(rec);
		break;
	}
	default:
		e = herd_fail(HERD_ERR_UNSUPPORTED, "command: %s is not supported",
			      herd_command_name(cmd->kind));
	}
	if (e)
		answer_error(resp, n, cmd, e, herd_last_error());
	else
		answer(resp, 200, herd_command_answer_success(cmd, n->id, result));
	herd_command_free(cmd);
}

/* ---------------------------------------------------------------- GET routes */

static void on_health(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	(void)req;
	struct herd_node *n = ud;
	int running = 0, queued = 0;
	if (n->worker)
		herd_worker_load(n->worker, &running, &queued);
	const char *status = !n->worker ? "starting" : atomic_load(&n->stopping) ? "stopping" : "ok";
	herd_http_resp_json(resp, strcmp(status, "ok") ? 503 : 200,
			    json_pack("{s:s, s:s, s:s, s:f, s:i, s:i, s:i}", "status", status,
				      "node_id", n->id, "version", HERD_VERSION, "uptime_ms",
				      herd_now_ms() - n->started_ms, "slots", n->slots, "running",
				      running, "queued", queued));
}

static void on_nodes(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	(void)req;
	struct herd_node *n = ud;
	if (not_ready(n, resp))
		return;
	json_t *j = n->disco ? herd_discovery_nodes_json(n->disco) : nodes_json(n);
	herd_standing_annotate(n->standing, json_object_get(j, "nodes"));
	herd_http_resp_json(resp, 200, j);
}

static void on_jobs(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	struct herd_node *n = ud;
	if (not_ready(n, resp))
		return;
	const char *rest = herd_http_req_path_rest(req);
	char id[256];
	size_t len = strcspn(rest, "/");
	bool events = !strcmp(rest + len, "/events");
	if (len == 0 || len >= sizeof id || (rest[len] && !events)) {
		herd_http_resp_error(resp, 404, HERD_ERR_NOT_FOUND,
				     "path: use /v1/jobs/{job_id} or /v1/jobs/{job_id}/events");
		return;
	}
	memcpy(id, rest, len);
	id[len] = '\0';
	struct job_rec *rec = herd_jobs_get(n->jobs, id);
	if (!rec) {
		herd_http_resp_error(resp, 404, HERD_ERR_NOT_FOUND, "job_id: no job '%s' on this node",
				     id);
		return;
	}
	if (events)
		herd_job_rec_subscribe(rec, herd_http_resp_sse(resp, NULL, NULL));
	else
		herd_http_resp_json(resp, 200, herd_job_rec_status(rec));
	herd_job_rec_put(rec);
}

static void on_metrics(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	(void)req;
	struct herd_node *n = ud;
	int running = 0, queued = 0;
	if (n->worker)
		herd_worker_load(n->worker, &running, &queued);
	char text[1024];
	snprintf(text, sizeof text,
		 "# TYPE herd_slots gauge\nherd_slots %d\n"
		 "# TYPE herd_fragments_running gauge\nherd_fragments_running %d\n"
		 "# TYPE herd_fragments_queued gauge\nherd_fragments_queued %d\n"
		 "# TYPE herd_jobs_running gauge\nherd_jobs_running %zu\n"
		 "# TYPE herd_jobs_done_total counter\nherd_jobs_done_total %ld\n",
		 n->slots, running, queued, herd_jobs_running(n->jobs), atomic_load(&n->jobs_done));
	herd_http_resp_text(resp, 200, "text/plain; version=0.0.4", text);
}

static void on_not_found(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	(void)ud;
	herd_http_resp_error(resp, 404, HERD_ERR_NOT_FOUND, "no route for %s %s",
			     herd_http_req_method(req), herd_http_req_path(req));
}

/* ---------------------------------------------------------------- start and stop */

static void on_load(void *ud, int running, int queued)
{
	struct herd_node *n = ud;
	if (n->disco)
		herd_discovery_set_load(n->disco, running, queued);
}

static void on_speed(void *ud, const char *model_name, double tokens_per_s)
{
	struct herd_node *n = ud;
	if (n->disco && tokens_per_s <= HERD_CAP_MAX_TOKENS_PER_S)
		herd_discovery_set_speed(n->disco, model_name, tokens_per_s);
}

static int cmp_type_bytes(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return x[1] < y[1] ? 1 : x[1] > y[1] ? -1 : 0;
}

static enum herd_err load_model(struct node_model *m, size_t i)
{
	if (herd_model_load(m->path, &m->model))
		return herd_fail(HERD_ERR_BAD_INPUT, "models[%zu] (%s): %s", i, m->name,
				 herd_last_error());
	const struct herd_gguf *g = herd_model_gguf(m->model);
	m->size_bytes = herd_gguf_file_size(g);
	uint64_t bytes[HERD_TYPE_COUNT][2] = {{0}};
	for (int t = 0; t < HERD_TYPE_COUNT; t++)
		bytes[t][0] = (uint64_t)t;
	for (int64_t k = 0; k < herd_gguf_tensor_count(g); k++) {
		const struct herd_tensor *t = herd_gguf_tensor(g, k);
		if ((unsigned)t->type < HERD_TYPE_COUNT)
			bytes[t->type][1] += t->nbytes;
	}
	qsort(bytes, HERD_TYPE_COUNT, sizeof bytes[0], cmp_type_bytes);
	m->types = json_array();
	for (int t = 0; t < HERD_TYPE_COUNT && bytes[t][1] && json_array_size(m->types) < 6; t++) {
		char name[32];
		herd_node_copy(name, sizeof name, herd_type_name((enum herd_type)bytes[t][0]) ?: "?");
		for (char *c = name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		json_array_append_new(m->types, json_string(name));
	}
	struct herd_gguf_str s;
	if (herd_gguf_get_str(g, "tokenizer.chat_template", &s) == HERD_OK && s.len < (1u << 20)) {
		m->chat_template = herd_xmalloc(s.len + 1);
		memcpy(m->chat_template, s.ptr, s.len);
		m->chat_template[s.len] = '\0';
	}
	return HERD_OK;
}

static bool valid_name(const char *s)
{
	size_t len = strlen(s);
	if (len < 1 || len > HERD_CAP_MAX_NAME)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._:-", *s))
			return false;
	return true;
}

enum herd_err herd_node_start(const struct herd_node_params *p, struct herd_node **out)
{
	*out = NULL;
	if (p->slots < 1 || p->slots > HERD_MAX_SLOTS)
		return herd_fail(HERD_ERR_BAD_INPUT, "slots: must be 1..%d, got %d", HERD_MAX_SLOTS,
				 p->slots);
	if (p->threads < 0 || p->threads > HERD_MAX_THREADS)
		return herd_fail(HERD_ERR_BAD_INPUT, "threads: must be 0..%d, got %d",
				 HERD_MAX_THREADS, p->threads);
	if (p->n_models > HERD_NODE_MAX_MODELS)
		return herd_fail(HERD_ERR_LIMIT, "models: at most %d, got %zu", HERD_NODE_MAX_MODELS,
				 p->n_models);
	if (p->n_peers > HERD_NODE_MAX_PEERS)
		return herd_fail(HERD_ERR_LIMIT, "peers: at most %d, got %zu", HERD_NODE_MAX_PEERS,
				 p->n_peers);
	for (size_t i = 0; i < p->n_models; i++) {
		if (!valid_name(p->models[i].name))
			return herd_fail(HERD_ERR_BAD_INPUT,
					 "models[%zu]: name '%.80s' must be 1..%d of [A-Za-z0-9._:-]", i,
					 p->models[i].name, HERD_CAP_MAX_NAME);
		for (size_t k = 0; k < i; k++)
			if (!strcmp(p->models[i].name, p->models[k].name))
				return herd_fail(HERD_ERR_BAD_INPUT,
						 "models[%zu]: the name '%s' is used twice", i,
						 p->models[i].name);
	}
	for (size_t i = 0; i < p->n_peers; i++) {
		const char *u = p->peers[i];
		if (strncmp(u, "http://", 7) || strlen(u) < 8 || strlen(u) > HERD_CAP_MAX_ADDRESS)
			return herd_fail(HERD_ERR_BAD_INPUT,
					 "peers[%zu]: must be an http://HOST:PORT URL of at most %d "
					 "bytes, got '%.80s'",
					 i, HERD_CAP_MAX_ADDRESS, u);
	}
	struct herd_sched_params schp;
	enum herd_err se = herd_node_sched_params(&schp);
	if (se)
		return se;
	if (sodium_init() < 0)
		return herd_fail(HERD_ERR_INTERNAL, "libsodium: cannot initialise");

	struct herd_node *n = herd_xcalloc(1, sizeof *n);
	n->sched_params = schp;
	n->standing = herd_standing_new();
	n->started_ms = herd_now_ms();
	n->slots = p->slots;
	n->threads = p->threads ? p->threads : machine_cores();
	pthread_mutex_init(&n->peers_mu, NULL);
	pthread_mutex_init(&n->thr_mu, NULL);
	pthread_cond_init(&n->thr_cond, NULL);
	n->jobs = herd_jobs_new();
	uint8_t rnd[HERD_PEER_ID_HEX / 2];
	randombytes_buf(rnd, sizeof rnd);
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(n->id + 2 * i, 3, "%02x", rnd[i]);
	enum herd_err e = HERD_OK;

	n->models = herd_xcalloc(p->n_models ? p->n_models : 1, sizeof *n->models);
	n->n_models = p->n_models;
	for (size_t i = 0; i < p->n_models; i++) {
		n->models[i].name = herd_xstrdup(p->models[i].name);
		n->models[i].path = herd_xstrdup(p->models[i].path);
	}
	for (size_t i = 0; i < p->n_models; i++)
		if ((e = load_model(&n->models[i], i)))
			goto fail;
	n->peers = herd_xcalloc(p->n_peers ? p->n_peers : 1, sizeof *n->peers);
	n->n_peers = p->n_peers;
	for (size_t i = 0; i < p->n_peers; i++) {
		size_t len = strlen(p->peers[i]);
		while (len > 7 && p->peers[i][len - 1] == '/')
			len--;
		n->peers[i].url = herd_xmalloc(len + 1);
		memcpy(n->peers[i].url, p->peers[i], len);
		n->peers[i].url[len] = '\0';
		n->peers[i].models = json_array();
	}
	if ((e = herd_http_multi_new(&n->multi)))
		goto fail;

	const struct herd_http_route routes[] = {
	    {"POST", "/v1/command", false, on_command, n},
	    {"GET", "/health", false, on_health, n},
	    {"GET", "/v1/nodes", false, on_nodes, n},
	    {"GET", "/v1/jobs/", true, on_jobs, n},
	    {"GET", "/metrics", false, on_metrics, n},
	    {"GET", "/v1/models", false, herd_openai_models, n},
	    {"POST", "/v1/completions", false, herd_openai_completions, n},
	    {"POST", "/v1/chat/completions", false, herd_openai_chat, n},
	    {"GET", "/", true, on_not_found, n},
	    {"POST", "/", true, on_not_found, n},
	};
	struct herd_http_server_params sp = herd_http_server_default_params();
	sp.host = p->host ? p->host : "127.0.0.1";
	sp.port = p->port;
	sp.routes = routes;
	sp.n_routes = sizeof routes / sizeof routes[0];
	if ((e = herd_http_server_new(&sp, &n->srv))) {
		herd_fail(e, "listen %s:%u: %s", sp.host, p->port, herd_last_error());
		goto fail;
	}
	if (p->advertise) {
		if (strlen(p->advertise) > HERD_CAP_MAX_ADDRESS || !strchr(p->advertise, ':')) {
			e = herd_fail(HERD_ERR_BAD_INPUT, "advertise: must be HOST:PORT, got '%.80s'",
				      p->advertise);
			goto fail;
		}
		herd_node_copy(n->advertise, sizeof n->advertise, p->advertise);
	} else {
		const char *h = sp.host;
		if (!strcmp(h, "0.0.0.0") || !strcmp(h, "::"))
			h = "127.0.0.1"; /* only right on this machine: pass --advertise */
		snprintf(n->advertise, sizeof n->advertise, "%s:%u", h, herd_http_server_port(n->srv));
	}
	snprintf(n->url, sizeof n->url, "http://%s", n->advertise);

	if (p->dht) {
		struct herd_discovery_model dm[HERD_NODE_MAX_MODELS];
		for (size_t i = 0; i < n->n_models; i++)
			dm[i] = (struct herd_discovery_model){n->models[i].name, n->models[i].path};
		struct herd_discovery_params dp = herd_discovery_default_params();
		dp.advertise = n->advertise;
		dp.dht_port = p->dht_port;
		dp.bootstrap = p->bootstrap;
		dp.n_bootstrap = p->n_bootstrap;
		dp.swarm = p->swarm;
		dp.data_dir = p->data_dir;
		dp.models = dm;
		dp.n_models = n->n_models;
		dp.slots = p->slots;
		dp.cores = p->cores;
		dp.memory_mb = p->memory_mb;
		if ((e = herd_discovery_start(&dp, &n->disco)))
			goto fail;
		herd_node_copy(n->id, sizeof n->id, herd_discovery_peer_id(n->disco));
	}
	struct herd_worker *w;
	if ((e = herd_worker_new(n->models, n->n_models, n->threads, n->slots, n->id, on_load, n,
				 &w)))
		goto fail;
	herd_worker_on_speed(w, on_speed, n);
	n->worker = w; /* from here on requests are served */
	*out = n;
	return HERD_OK;
fail:;
	char msg[1024];
	herd_node_copy(msg, sizeof msg, herd_last_error());
	herd_node_free(n);
	return herd_fail(e, "%s", msg);
}

void herd_node_free(struct herd_node *n)
{
	if (!n)
		return;
	atomic_store(&n->stopping, true);
	int jobs = herd_jobs_cancel_all(n->jobs);
	if (jobs)
		herd_log(INFO, "cancelling %d job(s)", jobs);
	herd_worker_stop(n->worker);
	pthread_mutex_lock(&n->thr_mu);
	while (n->n_job_threads > 0)
		pthread_cond_wait(&n->thr_cond, &n->thr_mu);
	pthread_mutex_unlock(&n->thr_mu);
	herd_http_server_free(n->srv);
	herd_discovery_free(n->disco);
	herd_http_multi_free(n->multi);
	herd_worker_free(n->worker);
	herd_jobs_free(n->jobs);
	herd_standing_free(n->standing);
	for (size_t i = 0; i < n->n_models; i++) {
		herd_model_free(n->models[i].model);
		free(n->models[i].name);
		free(n->models[i].path);
		json_decref(n->models[i].types);
		free(n->models[i].chat_template);
	}
	free(n->models);
	for (size_t i = 0; i < n->n_peers; i++) {
		free(n->peers[i].url);
		json_decref(n->peers[i].models);
		json_decref(n->peers[i].info);
	}
	free(n->peers);
	pthread_mutex_destroy(&n->peers_mu);
	pthread_mutex_destroy(&n->thr_mu);
	pthread_cond_destroy(&n->thr_cond);
	free(n);
}
