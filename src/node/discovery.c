/* discovery — the node's glue to src/swarm: our record (identity, models, machine, load) on the
 * DHT, the peer table, FIND_NODES, and the NODE_INFO check that a discovered peer must pass
 * before the coordinator sends it work.
 *
 * Threads and locks: d->mu guards our record (d->cap) and the check states (d->checks). It is
 * never held across network calls (NODE_INFO) and nothing in src/swarm calls back into us, so
 * taking the DHT's and the peer table's locks inside d->mu cannot form a cycle. The verifier
 * thread wakes every second and checks peers whose record it has not checked yet (or not for
 * HERD_DISCOVERY_RECHECK_MS); the coordinator's herd_discovery_peers_for_model checks a
 * never-checked peer itself rather than wait for the thread. */
#define _GNU_SOURCE
#include "discovery.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "engine.h"
#include "net.h"
#include "proto.h"

#define VERIFIER_TICK_MS 1000
#define MODELS_KEY_BYTES (HERD_CAP_MAX_MODELS * (HERD_CAP_MAX_NAME + 1) + 1)

enum check_state { CHECK_NONE, CHECK_OK, CHECK_BAD };

/* What we last learned from a peer's NODE_INFO, for one (address, models) of its record. */
struct check {
	char peer_id[HERD_PEER_ID_HEX + 1];
	char address[HERD_CAP_MAX_ADDRESS + 1];
	char models[MODELS_KEY_BYTES]; /* sorted names, '\n'-separated */
	enum check_state state;
	double checked_ms; /* monotonic */
};

struct herd_discovery {
	struct herd_identity id;
	struct herd_peers *peers;
	struct herd_dht *dht;
	char data_dir[4096];
	bool verify;

	pthread_mutex_t mu; /* cap, checks, stop */
	pthread_cond_t cv;
	struct herd_capability cap;
	struct check *checks;
	size_t n_checks, cap_checks;
	bool stop;
	pthread_t verifier;
	bool have_verifier;
};

struct herd_discovery_params herd_discovery_default_params(void)
{
	return (struct herd_discovery_params){.swarm = "default", .slots = 1, .verify = true};
}

/* ---- the data dir ---- */

bool herd_discovery_default_data_dir(const char *advertise, char *out, size_t size)
{
	char addr[HERD_CAP_MAX_ADDRESS + 1];
	snprintf(addr, sizeof addr, "%s", advertise ? advertise : "node");
	for (char *c = addr; *c; c++)
		if (*c == ':' || *c == '[' || *c == ']' || *c == '/')
			*c = '_';
	const char *xdg = getenv("XDG_STATE_HOME");
	int n = xdg && *xdg ? snprintf(out, size, "%s/herd/node-%s", xdg, addr)
			    : snprintf(out, size, "/tmp/herd-%u/node-%s", (unsigned)getuid(), addr);
	return n >= 0 && (size_t)n < size;
}

/* mkdir -p of the parents of dir (the last component is made by the identity code). */
static enum herd_err make_parents(const char *dir)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", dir);
	for (char *s = buf + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return herd_fail(HERD_ERR_IO, "%s: cannot create directory: %s", buf,
					 strerror(errno));
		*s = '/';
	}
	return HERD_OK;
}

/* ---- models ---- */

static enum herd_err hash_file(const char *path, char hex[65])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return herd_fail(HERD_ERR_IO, "%s: %s", path, strerror(errno));
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	unsigned char *buf = herd_xmalloc(HERD_DISCOVERY_HASH_CHUNK);
	enum herd_err err = HERD_OK;
	for (;;) {
		ssize_t n = read(fd, buf, HERD_DISCOVERY_HASH_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = herd_fail(HERD_ERR_IO, "%s: read: %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
	}
	free(buf);
	close(fd);
	if (!err) {
		unsigned char h[crypto_hash_sha256_BYTES];
		crypto_hash_sha256_final(&st, h);
		sodium_bin2hex(hex, 65, h, sizeof h);
	}
	return err;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* size, sha256 and the tensor types holding the most bytes (at most HERD_CAP_MAX_TENSOR_TYPES,
 * listed alphabetically, lower case as in the record: "f32", "q8_0"). */
static enum herd_err read_model(size_t i, const struct herd_discovery_model *m,
				struct herd_model_cap *out)
{
	memset(out, 0, sizeof *out);
	if (!m->name || !*m->name || strlen(m->name) > HERD_CAP_MAX_NAME)
		return herd_fail(HERD_ERR_BAD_INPUT, "models[%zu].name: must be 1..%d chars", i,
				 HERD_CAP_MAX_NAME);
	snprintf(out->name, sizeof out->name, "%s", m->name);
	if (!m->path)
		return herd_fail(HERD_ERR_BAD_INPUT, "models[%zu] (%s): no file", i, m->name);
	struct herd_gguf *g;
	if (herd_gguf_open(m->path, &g)) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", herd_last_error());
		return herd_fail(HERD_ERR_FORMAT, "models[%zu] (%s): %s", i, m->name, msg);
	}
	out->size_bytes = herd_gguf_file_size(g);
	uint64_t bytes[HERD_TYPE_COUNT] = {0};
	bool seen[HERD_TYPE_COUNT] = {0};
	for (int64_t t = 0; t < herd_gguf_tensor_count(g); t++) {
		const struct herd_tensor *ten = herd_gguf_tensor(g, t);
		if ((unsigned)ten->type < HERD_TYPE_COUNT) {
			bytes[ten->type] += ten->nbytes;
			seen[ten->type] = true;
		}
	}
	herd_gguf_close(g);
	while (out->n_tensor_types < HERD_CAP_MAX_TENSOR_TYPES) {
		int best = -1;
		for (int t = 0; t < HERD_TYPE_COUNT; t++)
			if (seen[t] && herd_type_name((enum herd_type)t) &&
			    (best < 0 || bytes[t] > bytes[best]))
				best = t;
		if (best < 0)
			break;
		seen[best] = false;
		char *dst = out->tensor_types[out->n_tensor_types++];
		snprintf(dst, HERD_CAP_MAX_TYPE_NAME + 1, "%s",
			 herd_type_name((enum herd_type)best));
		for (char *c = dst; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
	}
	qsort(out->tensor_types, (size_t)out->n_tensor_types, sizeof out->tensor_types[0], cmp_str);
	enum herd_err err = hash_file(m->path, out->sha256);
	if (err) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", herd_last_error());
		return herd_fail(err, "models[%zu] (%s): %s", i, m->name, msg);
	}
	return HERD_OK;
}

/* ---- NODE_INFO checks ---- */

static void models_key(const struct herd_capability *cap, char out[MODELS_KEY_BYTES])
{
	char names[HERD_CAP_MAX_MODELS][HERD_CAP_MAX_NAME + 1];
	int n = cap->n_models;
	for (int i = 0; i < n; i++)
		memcpy(names[i], cap->models[i].name, sizeof names[i]);
	qsort(names, (size_t)n, sizeof names[0], cmp_str);
	size_t len = 0;
	out[0] = 0;
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, MODELS_KEY_BYTES - len, "%s\n", names[i]);
}

static struct check *find_check_locked(struct herd_discovery *d, const char *peer_id)
{
	for (size_t i = 0; i < d->n_checks; i++)
		if (!strcmp(d->checks[i].peer_id, peer_id))
			return &d->checks[i];
	return NULL;
}

/* The check state of peer p's current record (CHECK_NONE when its address or models changed
 * since the last check); *due: a check should run now. */
static enum check_state check_state_locked(struct herd_discovery *d, const struct herd_peer *p,
					   bool *due)
{
	char key[MODELS_KEY_BYTES];
	models_key(&p->cap, key);
	struct check *c = find_check_locked(d, p->cap.peer_id);
	*due = true;
	if (!c || strcmp(c->address, p->cap.address) || strcmp(c->models, key))
		return CHECK_NONE;
	double age = herd_now_ms() - c->checked_ms;
	*due = age >= (c->state == CHECK_OK ? HERD_DISCOVERY_RECHECK_MS : HERD_DISCOVERY_RETRY_MS);
	return c->state;
}

static void record_check_locked(struct herd_discovery *d, const struct herd_peer *p, bool ok)
{
	struct check *c = find_check_locked(d, p->cap.peer_id);
	if (!c) {
		if (d->n_checks == d->cap_checks) {
			d->cap_checks = d->cap_checks ? 2 * d->cap_checks : 16;
			d->checks = herd_xrealloc(d->checks, d->cap_checks * sizeof *d->checks);
		}
		c = &d->checks[d->n_checks++];
		memset(c, 0, sizeof *c);
		memcpy(c->peer_id, p->cap.peer_id, sizeof c->peer_id);
	}
	memcpy(c->address, p->cap.address, sizeof c->address);
	models_key(&p->cap, c->models);
	c->state = ok ? CHECK_OK : CHECK_BAD;
	c->checked_ms = herd_now_ms();
}

/* Asks the peer for NODE_INFO and compares the answer with its record. Logs why on mismatch. */
static bool node_info_matches(struct herd_discovery *d, const struct herd_peer *p)
{
	char url[HERD_CAP_MAX_ADDRESS + 32];
	snprintf(url, sizeof url, "http://%s/v1/command", p->cap.address);
	struct herd_command *req =
	    herd_command_new(HERD_COMMAND_NODE_INFO, NULL, d->id.peer_id, p->cap.peer_id);
	json_t *body = herd_command_to_json(req);
	herd_command_free(req);
	long status = 0;
	json_t *reply = NULL;
	enum herd_err err =
	    herd_http_post_json(url, body, HERD_DISCOVERY_VERIFY_TIMEOUT_MS, &status, &reply);
	json_decref(body);
	const char *why = NULL;
	char buf[300];
	json_t *result = reply ? json_object_get(reply, "result") : NULL;
	json_t *models = result ? json_object_get(result, "models") : NULL;
	const char *pid = result ? json_string_value(json_object_get(result, "peer_id")) : NULL;
	if (!pid && result)
		pid = json_string_value(json_object_get(result, "node_id"));
	if (err) {
		snprintf(buf, sizeof buf, "no answer: %s", herd_last_error());
		why = buf;
	} else if (status != 200 || !json_is_object(result)) {
		snprintf(buf, sizeof buf, "HTTP %ld, no NODE_INFO result", status);
		why = buf;
	} else if (!pid || strcmp(pid, p->cap.peer_id)) {
		snprintf(buf, sizeof buf, "result.peer_id: is \"%.40s\", the record says %s",
			 pid ? pid : "(none)", p->cap.peer_id);
		why = buf;
	} else if (!json_is_array(models) || json_array_size(models) != (size_t)p->cap.n_models) {
		why = "result.models: not the record's models";
	} else {
		for (int i = 0; i < p->cap.n_models && !why; i++) {
			bool found = false;
			size_t k;
			json_t *m;
			json_array_foreach(models, k, m)
			{
				const char *name =
				    json_is_string(m)
					? json_string_value(m)
					: json_string_value(json_object_get(m, "name"));
				if (name && !strcmp(name, p->cap.models[i].name))
					found = true;
			}
			if (!found) {
				snprintf(buf, sizeof buf,
					 "result.models: lacks \"%s\" of the record",
					 p->cap.models[i].name);
				why = buf;
			}
		}
	}
	json_decref(reply);
	if (why)
		herd_log(INFO, "peer %s at %s not used: NODE_INFO %s", p->cap.peer_id,
			 p->cap.address, why);
	else
		herd_log(DEBUG, "peer %s at %s: NODE_INFO matches its record", p->cap.peer_id,
			 p->cap.address);
	return !why;
}

/* Checks every peer whose check is due; drops the states of peers no longer in the table. */
static void check_due_peers(struct herd_discovery *d)
{
	struct herd_peer *v;
	size_t n = herd_peers_snapshot(d->peers, 0, &v);
	pthread_mutex_lock(&d->mu);
	for (size_t i = 0; i < d->n_checks;) {
		bool present = false;
		for (size_t k = 0; k < n && !present; k++)
			present = !strcmp(v[k].cap.peer_id, d->checks[i].peer_id);
		if (present)
			i++;
		else
			d->checks[i] = d->checks[--d->n_checks];
	}
	pthread_mutex_unlock(&d->mu);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(v[i].cap.peer_id, d->id.peer_id))
			continue;
		bool due;
		pthread_mutex_lock(&d->mu);
		check_state_locked(d, &v[i], &due);
		bool stop = d->stop;
		pthread_mutex_unlock(&d->mu);
		if (stop)
			break;
		if (!due)
			continue;
		bool ok = node_info_matches(d, &v[i]);
		pthread_mutex_lock(&d->mu);
		record_check_locked(d, &v[i], ok);
		pthread_mutex_unlock(&d->mu);
	}
	free(v);
}

static void *verifier_main(void *arg)
{
	struct herd_discovery *d = arg;
	pthread_mutex_lock(&d->mu);
	while (!d->stop) {
		pthread_mutex_unlock(&d->mu);
		check_due_peers(d);
		pthread_mutex_lock(&d->mu);
		if (d->stop)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += VERIFIER_TICK_MS / 1000;
		pthread_cond_timedwait(&d->cv, &d->mu, &ts);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

/* ---- lifecycle ---- */

enum herd_err herd_discovery_start(const struct herd_discovery_params *p,
				   struct herd_discovery **out)
{
	*out = NULL;
	if (!p->advertise || !*p->advertise)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "advertise: the HOST:PORT others reach this node at is required");
	if (p->n_models > HERD_CAP_MAX_MODELS)
		return herd_fail(HERD_ERR_LIMIT, "models: at most %d per node, got %zu",
				 HERD_CAP_MAX_MODELS, p->n_models);
	if (p->slots < 1 || p->slots > HERD_MAX_SLOTS)
		return herd_fail(HERD_ERR_BAD_INPUT, "slots: must be 1..%d, got %d", HERD_MAX_SLOTS,
				 p->slots);
	if (p->cores < 0 || p->memory_mb < 0)
		return herd_fail(HERD_ERR_BAD_INPUT, "%s: must be >= 0",
				 p->cores < 0 ? "cores" : "memory_mb");
	if (p->announce_interval_ms < 0 || p->stale_ms < 0)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "announce interval / stale window: must be >= 0");
	if (sodium_init() < 0)
		return herd_fail(HERD_ERR_INTERNAL, "libsodium: cannot initialize");

	struct herd_discovery *d = herd_xcalloc(1, sizeof *d);
	d->verify = p->verify;
	pthread_mutex_init(&d->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cv, &ca);
	pthread_condattr_destroy(&ca);

	enum herd_err err = HERD_OK;
	if (p->data_dir) {
		if (snprintf(d->data_dir, sizeof d->data_dir, "%s", p->data_dir) >=
		    (int)sizeof d->data_dir) {
			err = herd_fail(HERD_ERR_BAD_INPUT, "data dir: path too long");
			goto out;
		}
	} else {
		if (!herd_discovery_default_data_dir(p->advertise, d->data_dir,
						     sizeof d->data_dir)) {
			err = herd_fail(HERD_ERR_BAD_INPUT, "data dir: default path too long");
			goto out;
		}
		if ((err = make_parents(d->data_dir)))
			goto out;
		herd_log(INFO, "no --data-dir: identity kept in %s", d->data_dir);
	}
	if ((err = herd_identity_load_or_create(d->data_dir, &d->id)))
		goto out;

	if ((err = herd_capability_measure(&d->id, &d->cap)))
		goto out;
	if (p->cores > 0 && p->cores < d->cap.cpu_cores)
		d->cap.cpu_cores = p->cores;
	else if (p->cores > d->cap.cpu_cores)
		herd_log(WARN, "--cores %d: this machine has %d, advertising %d", p->cores,
			 d->cap.cpu_cores, d->cap.cpu_cores);
	if (p->memory_mb > 0 && p->memory_mb < d->cap.memory_mb)
		d->cap.memory_mb = p->memory_mb;
	else if (p->memory_mb > d->cap.memory_mb)
		herd_log(WARN, "--memory-mb %lld: this machine has %lld, advertising %lld",
			 (long long)p->memory_mb, (long long)d->cap.memory_mb,
			 (long long)d->cap.memory_mb);
	d->cap.slots = p->slots;
	if (snprintf(d->cap.address, sizeof d->cap.address, "%s", p->advertise) >=
	    (int)sizeof d->cap.address) {
		err = herd_fail(HERD_ERR_BAD_INPUT, "advertise: at most %d chars",
				HERD_CAP_MAX_ADDRESS);
		goto out;
	}
	const char *swarm = p->swarm ? p->swarm : "default";
	if (snprintf(d->cap.swarm, sizeof d->cap.swarm, "%s", swarm) >= (int)sizeof d->cap.swarm) {
		err = herd_fail(HERD_ERR_BAD_INPUT, "swarm: at most %d chars", HERD_CAP_MAX_SWARM);
		goto out;
	}
	for (size_t i = 0; i < p->n_models; i++) {
		if ((err = read_model(i, &p->models[i], &d->cap.models[i])))
			goto out;
		d->cap.n_models = (int)i + 1;
	}
	/* the record must be one others accept before anything starts */
	char *text;
	size_t len;
	if ((err = herd_capability_encode(&d->cap, &d->id, &text, &len)))
		goto out;
	free(text);

	d->peers = herd_peers_new(p->stale_ms);
	struct herd_dht_params dp = herd_dht_default_params();
	dp.port = p->dht_port;
	dp.bootstrap = p->bootstrap;
	dp.n_bootstrap = p->n_bootstrap;
	dp.swarm = swarm;
	if (p->announce_interval_ms) {
		dp.announce_interval_ms = p->announce_interval_ms;
		dp.get_interval_ms = p->announce_interval_ms;
	}
	if ((err = herd_dht_start(&dp, &d->id, d->peers, &d->dht)))
		goto out;
	if ((err = herd_dht_announce(d->dht, &d->cap)))
		goto out;
	if (d->verify) {
		HERD_ASSERT(pthread_create(&d->verifier, NULL, verifier_main, d) == 0);
		d->have_verifier = true;
	}
	herd_log(INFO, "discovery: peer id %s, swarm %s, DHT port %u, advertising %s, %d model(s)",
		 d->id.peer_id, d->cap.swarm, herd_dht_port(d->dht), d->cap.address,
		 d->cap.n_models);
out:
	if (err) {
		herd_discovery_free(d);
		return err;
	}
	*out = d;
	return HERD_OK;
}

void herd_discovery_free(struct herd_discovery *d)
{
	if (!d)
		return;
	if (d->have_verifier) {
		pthread_mutex_lock(&d->mu);
		d->stop = true;
		pthread_cond_signal(&d->cv);
		pthread_mutex_unlock(&d->mu);
		pthread_join(d->verifier, NULL);
	}
	herd_dht_free(d->dht);
	herd_peers_free(d->peers);
	free(d->checks);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	sodium_memzero(&d->id, sizeof d->id);
	free(d);
}

const char *herd_discovery_peer_id(const struct herd_discovery *d)
{
	return d->id.peer_id;
}

uint16_t herd_discovery_dht_port(const struct herd_discovery *d)
{
	return herd_dht_port(d->dht);
}

const char *herd_discovery_data_dir(const struct herd_discovery *d)
{
	return d->data_dir;
}

struct herd_peers *herd_discovery_peers(struct herd_discovery *d)
{
	return d->peers;
}

/* ---- our record ---- */

void herd_discovery_set_load(struct herd_discovery *d, int running, int queued)
{
	pthread_mutex_lock(&d->mu);
	running = running < 0 ? 0 : running > d->cap.slots ? d->cap.slots : running;
	queued = queued < 0 ? 0 : queued > 1000000 ? 1000000 : queued;
	d->cap.running = running;
	d->cap.queued = queued;
	herd_dht_set_load(d->dht, running, queued);
	pthread_mutex_unlock(&d->mu);
}

enum herd_err herd_discovery_set_speed(struct herd_discovery *d, const char *model_name,
				       double tokens_per_s)
{
	if (!(tokens_per_s >= 0 && tokens_per_s <= HERD_CAP_MAX_TOKENS_PER_S))
		return herd_fail(HERD_ERR_BAD_INPUT, "tokens_per_s: must be 0..%g, got %g",
				 HERD_CAP_MAX_TOKENS_PER_S, tokens_per_s);
	enum herd_err err = HERD_ERR_NOT_FOUND;
	pthread_mutex_lock(&d->mu);
	for (int i = 0; i < d->cap.n_models; i++) {
		if (strcmp(d->cap.models[i].name, model_name))
			continue;
		if (d->cap.models[i].tokens_per_s == tokens_per_s) {
			err = HERD_OK;
			break;
		}
		d->cap.models[i].tokens_per_s = tokens_per_s;
		err = herd_dht_announce(d->dht, &d->cap);
		break;
	}
	pthread_mutex_unlock(&d->mu);
	if (err == HERD_ERR_NOT_FOUND)
		return herd_fail(err, "model_name: this node does not serve \"%s\"", model_name);
	return err;
}

/* ---- views ---- */

static json_t *peer_json_locked(struct herd_discovery *d, const struct herd_peer *p)
{
	json_t *j = herd_peer_to_json(p);
	bool self = !strcmp(p->cap.peer_id, d->id.peer_id), due;
	bool ok = self || !d->verify || check_state_locked(d, p, &due) == CHECK_OK;
	json_object_set_new(j, "verified", json_boolean(ok));
	json_object_set_new(j, "self", json_boolean(self));
	return j;
}

static json_t *peers_json(struct herd_discovery *d, const struct herd_peer *v, size_t n)
{
	json_t *arr = json_array();
	pthread_mutex_lock(&d->mu);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, peer_json_locked(d, &v[i]));
	pthread_mutex_unlock(&d->mu);
	return arr;
}

enum herd_err herd_discovery_find_nodes(struct herd_discovery *d, const json_t *params,
					json_t **result)
{
	*result = NULL;
	struct herd_find_nodes q;
	enum herd_err err = herd_find_nodes_parse(params, &q);
	if (err)
		return err;
	struct herd_peer *v;
	size_t n = herd_peers_find(d->peers, &q, 0, &v);
	*result = json_pack("{s:o, s:I}", "nodes", peers_json(d, v, n), "count", (json_int_t)n);
	free(v);
	return HERD_OK;
}

json_t *herd_discovery_nodes_json(struct herd_discovery *d)
{
	struct herd_find_nodes q = herd_find_nodes_default();
	struct herd_peer *v;
	size_t n = herd_peers_find(d->peers, &q, 0, &v);
	json_t *j = json_pack("{s:s, s:s, s:i, s:o, s:I}", "peer_id", d->id.peer_id, "swarm",
			      d->cap.swarm, "dht_port", (int)herd_dht_port(d->dht), "nodes",
			      peers_json(d, v, n), "count", (json_int_t)n);
	free(v);
	return j;
}

void herd_discovery_node_info(struct herd_discovery *d, json_t *result)
{
	pthread_mutex_lock(&d->mu);
	json_t *cap = herd_capability_to_json(&d->cap);
	pthread_mutex_unlock(&d->mu);
	json_object_set_new(result, "peer_id", json_string(d->id.peer_id));
	json_object_set_new(result, "node_id", json_string(d->id.peer_id));
	json_object_set(result, "swarm", json_object_get(cap, "swarm"));
	json_object_set_new(result, "dht_port", json_integer(herd_dht_port(d->dht)));
	if (!json_object_get(result, "models"))
		json_object_set(result, "models", json_object_get(cap, "models"));
	json_object_set_new(result, "capability", cap);
}

static double model_speed(const struct herd_capability *cap, const char *model_name)
{
	double best = 0;
	for (int i = 0; i < cap->n_models; i++) {
		if (model_name && !strcmp(cap->models[i].name, model_name))
			return cap->models[i].tokens_per_s;
		if (cap->models[i].tokens_per_s > best)
			best = cap->models[i].tokens_per_s;
	}
	return model_name ? 0 : best;
}

size_t herd_discovery_peers_for_model(struct herd_discovery *d, const char *model_name,
				      struct herd_discovered_peer **out)
{
	*out = NULL;
	struct herd_find_nodes q = herd_find_nodes_default();
	if (model_name)
		snprintf(q.model_name, sizeof q.model_name, "%s", model_name);
	struct herd_peer *v;
	size_t n = herd_peers_find(d->peers, &q, 0, &v), k = 0;
	if (!n)
		return 0;
	struct herd_discovered_peer *r = herd_xcalloc(n, sizeof *r);
	for (size_t i = 0; i < n; i++) {
		const struct herd_peer *p = &v[i];
		bool self = !strcmp(p->cap.peer_id, d->id.peer_id);
		if (!self && d->verify) {
			bool due;
			pthread_mutex_lock(&d->mu);
			enum check_state st = check_state_locked(d, p, &due);
			pthread_mutex_unlock(&d->mu);
			if (st == CHECK_NONE) { /* not checked yet: do it now */
				bool ok = node_info_matches(d, p);
				pthread_mutex_lock(&d->mu);
				record_check_locked(d, p, ok);
				pthread_mutex_unlock(&d->mu);
				st = ok ? CHECK_OK : CHECK_BAD;
			}
			if (st != CHECK_OK)
				continue;
		}
		struct herd_discovered_peer *o = &r[k++];
		memcpy(o->peer_id, p->cap.peer_id, sizeof o->peer_id);
		snprintf(o->url, sizeof o->url, "http://%s", p->cap.address);
		o->slots = p->cap.slots;
		int busy = p->cap.running + p->cap.queued;
		o->free_slots = busy >= p->cap.slots ? 0 : p->cap.slots - busy;
		o->tokens_per_s = model_speed(&p->cap, model_name);
		o->reputation = p->reputation;
		o->is_self = self;
	}
	free(v);
	if (!k) {
		free(r);
		r = NULL;
	}
	*out = r;
	return k;
}

enum herd_err herd_discovery_set_reputation(struct herd_discovery *d, const char *peer_id,
					    double reputation)
{
	return herd_peers_set_reputation(d->peers, peer_id, reputation);
}
