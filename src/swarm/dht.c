/* dht — an OpenDHT runner that announces our capability record under the swarm's key and keeps
 * a peer table current from everyone else's.
 *
 * Threads: OpenDHT runs its own two threads and calls on_value/on_get there; they touch only
 * the peer table (its own mutex) and immutable fields of struct herd_dht. Our ticker thread
 * re-announces and runs the periodic get under d->mu; nothing OpenDHT calls takes d->mu, so
 * there is no lock-order cycle. Shutdown follows DEPENDENCIES.md: stop the ticker, cancel
 * listen and put, dht_runner_shutdown, wait for its callback, then dht_runner_delete.
 *
 * Updating a record: the C API cannot replace a value in place, so each announce puts a new
 * permanent value and cancels the previous one by its value id. Two OpenDHT facts shape this:
 * the id is assigned on OpenDHT's thread when it processes the put, and cancelling a put whose
 * done callback has not fired yet leaves the runner's count of ongoing operations stuck, so
 * that dht_runner_shutdown never completes (seen here with a dead peer in the routing table).
 * So an old value is cancelled only once its put is done; until then it waits in `retired`.
 * The put contexts are recycled, never freed before the runner is deleted (a late callback
 * must find valid memory). */
#define _GNU_SOURCE
#include "swarm.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <opendht/opendht_c.h>
#include <sodium.h>

#define MIN_ANNOUNCE_GAP_MS 250 /* load changes are coalesced: each put lingers on the DHT 10 min  \
				 */
#define SHUTDOWN_WAIT_MS 3000

/* One put of our record. */
struct put {
	dht_value *value; /* we hold a ref while the put is live or retired */
	int done;	  /* atomic: OpenDHT called the put's done callback */
	struct put *next, *next_all;
};

struct herd_dht {
	dht_runner *runner;
	dht_infohash key;
	struct herd_peers *peers; /* borrowed */
	struct herd_identity id;
	char swarm[HERD_CAP_MAX_SWARM + 1];
	int64_t announce_interval_ms, get_interval_ms;
	uint16_t port;
	dht_op_token *listen_token;

	pthread_mutex_t mu; /* everything below */
	pthread_cond_t cv;
	pthread_t ticker;
	bool stop, dirty, have_cap;
	struct herd_capability cap;
	uint64_t seq;
	double last_announce_ms; /* monotonic */
	struct put *current;	 /* our live put */
	struct put *retired;	 /* replaced puts not yet cancelled (their put is not done) */
	struct put *spare;	 /* recycled contexts */
	struct put *all;	 /* every context, freed after dht_runner_delete */

	pthread_mutex_t sd_mu;
	pthread_cond_t sd_cv;
	bool sd_done;
};

struct herd_dht_params herd_dht_default_params(void)
{
	return (struct herd_dht_params){
	    .swarm = "default", .announce_interval_ms = 3000, .get_interval_ms = 5000};
}

uint16_t herd_dht_port(const struct herd_dht *d)
{
	return d->port;
}

/* ---- values from the DHT (OpenDHT's threads) ---- */

static void take_value(struct herd_dht *d, const dht_value *v)
{
	dht_data_view data = dht_value_get_data(v);
	struct herd_capability cap;
	int64_t now = herd_unix_ms();
	if (herd_capability_decode(data.data, data.size, now, herd_peers_stale_ms(d->peers),
				   &cap)) {
		herd_log(DEBUG, "swarm %s: record dropped: %s", d->swarm, herd_last_error());
		return;
	}
	if (strcmp(cap.swarm, d->swarm)) {
		herd_log(DEBUG, "swarm %s: record dropped: capability.swarm: is \"%s\"", d->swarm,
			 cap.swarm);
		return;
	}
	if (herd_peers_update(d->peers, &cap, now) < 0)
		herd_log(WARN, "swarm %s: peer table full (%d), %s not added", d->swarm,
			 HERD_MAX_PEERS, cap.peer_id);
}

static bool on_value(const dht_value *v, bool expired, void *ud)
{
	if (!expired) /* expiry is judged by the record's own timestamp */
		take_value(ud, v);
	return true;
}

static bool on_get(const dht_value *v, void *ud)
{
	take_value(ud, v);
	return true;
}

static void on_put_done(bool ok, void *ud)
{
	struct put *p = ud;
	(void)ok; /* a permanent put retries by itself */
	__atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
}

static void on_get_done(bool ok, void *ud)
{
	(void)ok, (void)ud; /* gets repeat every interval */
}

static void on_listen_end(void *ud)
{
	(void)ud;
}

static void on_shutdown(void *ud)
{
	struct herd_dht *d = ud;
	pthread_mutex_lock(&d->sd_mu);
	d->sd_done = true;
	pthread_cond_signal(&d->sd_cv);
	pthread_mutex_unlock(&d->sd_mu);
}

/* ---- announcing (under d->mu) ---- */

/* Cancels the retired puts that are done (final: forget the rest without cancelling). */
static void cancel_retired_locked(struct herd_dht *d, bool final)
{
	struct put **link = &d->retired;
	while (*link) {
		struct put *p = *link;
		bool done = __atomic_load_n(&p->done, __ATOMIC_ACQUIRE);
		dht_value_id vid = done ? dht_value_get_id(p->value) : 0;
		if (!vid && !final) {
			link = &p->next;
			continue;
		}
		if (vid)
			dht_runner_cancel_put(d->runner, &d->key, vid);
		dht_value_unref(p->value);
		p->value = NULL;
		*link = p->next;
		p->next = d->spare;
		d->spare = p;
	}
}

static struct put *new_put_locked(struct herd_dht *d, dht_value *v)
{
	struct put *p = d->spare;
	if (p) {
		d->spare = p->next;
	} else {
		p = herd_xcalloc(1, sizeof *p);
		p->next_all = d->all;
		d->all = p;
	}
	p->value = v;
	p->next = NULL;
	__atomic_store_n(&p->done, 0, __ATOMIC_RELEASE);
	return p;
}

static enum herd_err announce_locked(struct herd_dht *d)
{
	d->cap.timestamp_ms = herd_unix_ms();
	d->cap.seq = ++d->seq;
	char *text;
	size_t len;
	enum herd_err err = herd_capability_encode(&d->cap, &d->id, &text, &len);
	if (err)
		return err;
	struct put *put = new_put_locked(d, dht_value_new((const uint8_t *)text, len));
	dht_runner_put(d->runner, &d->key, put->value, on_put_done, put, true);
	/* our own table sees us at once, through the same checks as everyone else */
	struct herd_capability self;
	if (!herd_capability_decode(text, len, d->cap.timestamp_ms, 0, &self))
		herd_peers_update(d->peers, &self, d->cap.timestamp_ms);
	free(text);
	if (d->current) {
		d->current->next = d->retired;
		d->retired = d->current;
	}
	d->current = put;
	cancel_retired_locked(d, false);
	d->dirty = false;
	d->last_announce_ms = herd_now_ms();
	return HERD_OK;
}

static void deadline_in(struct timespec *ts, double ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	if (ms < 1)
		ms = 1;
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)((ms - (double)(int64_t)(ms / 1000) * 1000) * 1e6);
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static void *ticker_main(void *arg)
{
	struct herd_dht *d = arg;
	double next_get = 0;
	pthread_mutex_lock(&d->mu);
	while (!d->stop) {
		double now = herd_now_ms();
		if (d->have_cap) {
			double since = now - d->last_announce_ms;
			if ((d->dirty && since >= MIN_ANNOUNCE_GAP_MS) ||
			    since >= d->announce_interval_ms) {
				if (announce_locked(d))
					herd_log(WARN, "swarm %s: cannot announce: %s", d->swarm,
						 herd_last_error());
				d->last_announce_ms = now; /* also after an error: no busy loop */
			}
		}
		if (now >= next_get) {
			dht_runner_get(d->runner, &d->key, on_get, on_get_done, d);
			herd_peers_expire(d->peers, 0);
			next_get = now + (double)d->get_interval_ms;
		}
		double wake = next_get;
		if (d->have_cap) {
			double a =
			    d->last_announce_ms +
			    (d->dirty ? MIN_ANNOUNCE_GAP_MS : (double)d->announce_interval_ms);
			wake = a < wake ? a : wake;
		}
		struct timespec ts;
		deadline_in(&ts, wake - herd_now_ms());
		pthread_cond_timedwait(&d->cv, &d->mu, &ts);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

/* ---- lifecycle ---- */

/* Splits "host:port" / "[v6]:port" into host and port strings. */
static bool split_host_port(const char *s, char *host, size_t host_size, char *port,
			    size_t port_size)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || !colon[1] || strlen(colon + 1) >= port_size)
		return false;
	const char *h = s;
	size_t hlen = (size_t)(colon - s);
	if (h[0] == '[') {
		if (hlen < 3 || h[hlen - 1] != ']')
			return false;
		h++;
		hlen -= 2;
	}
	if (hlen >= host_size)
		return false;
	memcpy(host, h, hlen);
	host[hlen] = 0;
	strcpy(port, colon + 1);
	char *end;
	long p = strtol(port, &end, 10);
	return !*end && p >= 1 && p <= 65535;
}

static bool swarm_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > HERD_CAP_MAX_SWARM)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

enum herd_err herd_dht_start(const struct herd_dht_params *p, const struct herd_identity *id,
			     struct herd_peers *peers, struct herd_dht **out)
{
	*out = NULL;
	if (!p->swarm || !swarm_name_ok(p->swarm))
		return herd_fail(HERD_ERR_BAD_INPUT, "swarm: must be 1..%d chars of [A-Za-z0-9._-]",
				 HERD_CAP_MAX_SWARM);
	if (p->n_bootstrap > HERD_DHT_MAX_BOOTSTRAP)
		return herd_fail(HERD_ERR_LIMIT, "bootstrap: at most %d addresses, got %zu",
				 HERD_DHT_MAX_BOOTSTRAP, p->n_bootstrap);
	char host[256], port[8];
	for (size_t i = 0; i < p->n_bootstrap; i++)
		if (!split_host_port(p->bootstrap[i], host, sizeof host, port, sizeof port))
			return herd_fail(
			    HERD_ERR_BAD_INPUT,
			    "bootstrap[%zu]: must be HOST:PORT with port 1..65535, got \"%s\"", i,
			    p->bootstrap[i]);
	if (p->announce_interval_ms < 1 || p->get_interval_ms < 1)
		return herd_fail(HERD_ERR_BAD_INPUT, "announce/get interval: must be > 0 ms");

	struct herd_dht *d = herd_xcalloc(1, sizeof *d);
	d->peers = peers;
	d->id = *id;
	snprintf(d->swarm, sizeof d->swarm, "%s", p->swarm);
	d->announce_interval_ms = p->announce_interval_ms;
	d->get_interval_ms = p->get_interval_ms;
	d->seq = (uint64_t)herd_unix_ms(); /* grows across restarts of the same identity */
	pthread_mutex_init(&d->mu, NULL);
	pthread_mutex_init(&d->sd_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&d->sd_cv, NULL);

	d->runner = dht_runner_new();
	dht_runner_config cfg;
	dht_runner_config_default(&cfg);
	cfg.threaded = true;
	/* a node leaving must not wait to hand stored values over to peers that may be dead
	 * (shutdown then takes 10+ s); records are re-announced every few seconds anyway */
	cfg.dht_config.node_config.maintain_storage = false;
	int rc = dht_runner_run_config(d->runner, p->port, &cfg);
	if (rc != 0) {
		dht_runner_delete(d->runner);
		pthread_cond_destroy(&d->cv);
		pthread_cond_destroy(&d->sd_cv);
		pthread_mutex_destroy(&d->mu);
		pthread_mutex_destroy(&d->sd_mu);
		free(d);
		return herd_fail(HERD_ERR_IO, "DHT port %u: cannot start the runner (%s)", p->port,
				 strerror(rc < 0 ? -rc : rc));
	}
	d->port = dht_runner_get_bound_port(d->runner, AF_INET);
	for (size_t i = 0; i < p->n_bootstrap; i++) {
		split_host_port(p->bootstrap[i], host, sizeof host, port, sizeof port);
		dht_runner_bootstrap(d->runner, host, port);
	}
	char keystr[sizeof "herd/v1/swarm/" + HERD_CAP_MAX_SWARM];
	snprintf(keystr, sizeof keystr, "herd/v1/swarm/%s", d->swarm);
	dht_infohash_get_from_string(&d->key, keystr);
	d->listen_token = dht_runner_listen(d->runner, &d->key, on_value, on_listen_end, d);
	HERD_ASSERT(pthread_create(&d->ticker, NULL, ticker_main, d) == 0);
	herd_log(INFO, "swarm %s: DHT on port %u, %zu bootstrap address(es), peer id %s", d->swarm,
		 d->port, p->n_bootstrap, d->id.peer_id);
	*out = d;
	return HERD_OK;
}

enum herd_err herd_dht_announce(struct herd_dht *d, const struct herd_capability *cap)
{
	if (strcmp(cap->swarm, d->swarm))
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "capability.swarm: is \"%s\", this DHT serves \"%s\"", cap->swarm,
				 d->swarm);
	pthread_mutex_lock(&d->mu);
	struct herd_capability old = d->cap;
	bool had = d->have_cap;
	d->cap = *cap;
	enum herd_err err = announce_locked(d);
	if (err) {
		d->cap = old;
		d->have_cap = had;
	} else {
		d->have_cap = true;
		pthread_cond_signal(&d->cv);
	}
	pthread_mutex_unlock(&d->mu);
	return err;
}

void herd_dht_set_load(struct herd_dht *d, int running, int queued)
{
	pthread_mutex_lock(&d->mu);
	if (d->cap.running != running || d->cap.queued != queued) {
		d->cap.running = running;
		d->cap.queued = queued;
		d->dirty = true;
		pthread_cond_signal(&d->cv);
	}
	pthread_mutex_unlock(&d->mu);
}

void herd_dht_free(struct herd_dht *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->stop = true;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->ticker, NULL);

	/* puts not done yet are not cancelled (see the top of the file): the runner stops
	 * refreshing them when it stops */
	if (d->listen_token)
		dht_runner_cancel_listen(d->runner, &d->key, d->listen_token);
	if (d->current) {
		d->current->next = d->retired;
		d->retired = d->current;
		d->current = NULL;
	}
	cancel_retired_locked(d, true);

	double t0 = herd_now_ms();
	dht_runner_shutdown(d->runner, on_shutdown, d);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += SHUTDOWN_WAIT_MS / 1000;
	pthread_mutex_lock(&d->sd_mu);
	while (!d->sd_done)
		if (pthread_cond_timedwait(&d->sd_cv, &d->sd_mu, &ts) == ETIMEDOUT) {
			herd_log(WARN, "swarm %s: DHT shutdown did not finish in %d ms", d->swarm,
				 SHUTDOWN_WAIT_MS);
			break;
		}
	pthread_mutex_unlock(&d->sd_mu);
	herd_log(DEBUG, "swarm %s: DHT shutdown took %.0f ms", d->swarm, herd_now_ms() - t0);
	dht_runner_delete(d->runner);
	if (d->listen_token)
		dht_op_token_delete(d->listen_token);
	while (d->all) {
		struct put *p = d->all;
		d->all = p->next_all;
		free(p);
	}
	pthread_cond_destroy(&d->cv);
	pthread_cond_destroy(&d->sd_cv);
	pthread_mutex_destroy(&d->mu);
	pthread_mutex_destroy(&d->sd_mu);
	sodium_memzero(&d->id, sizeof d->id);
	free(d);
}
