/* swarm discovery: the peer table and FIND_NODES on hand-built records, and real OpenDHT runners
 * on 127.0.0.1 in this process finding each other, keeping swarms apart and forgetting the dead. */
#define _GNU_SOURCE
#include "herd_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "swarm.h"

#define NOW 1700000000000ll /* a fixed "now" for the hand-built table */

static struct herd_capability peer(const char *name, int cores, int64_t mem_mb, int slots,
				   int running, const char *model, double tps)
{
	struct herd_identity id;
	herd_identity_generate(&id);
	struct herd_capability c;
	assert_int_equal(herd_capability_measure(&id, &c), HERD_OK);
	snprintf(c.address, sizeof c.address, "%s:8080", name);
	c.cpu_cores = cores;
	c.memory_mb = mem_mb;
	c.slots = slots;
	c.running = running;
	if (model) {
		c.n_models = 1;
		snprintf(c.models[0].name, sizeof c.models[0].name, "%s", model);
		memset(c.models[0].sha256, 'b', 64);
		c.models[0].tokens_per_s = tps;
	}
	c.timestamp_ms = NOW - 1000;
	return c;
}

static const char *addr_of(const struct herd_peer *p)
{
	return p->cap.address;
}

static void find_nodes_filters_and_orders(void **state)
{
	(void)state;
	struct herd_peers *t = herd_peers_new(15000);
	struct herd_capability a = peer("a", 8, 16000, 4, 0, "llama", 100); /* 4 free × 100 = 400 */
	struct herd_capability b = peer("b", 2, 4000, 2, 0, "llama", 300); /* 2 free × 300 = 600 */
	struct herd_capability c = peer("c", 16, 64000, 2, 2, "llama", 900); /* full */
	struct herd_capability d = peer("d", 8, 16000, 4, 1, "other", 50);   /* other model */
	struct herd_capability e = peer("e", 32, 128000, 8, 0, NULL, 0);     /* no models */
	e.has_gpu = true;
	strcpy(e.gpu_name, "H200");
	struct herd_capability *all[] = {&a, &b, &c, &d, &e};
	for (int i = 0; i < 5; i++)
		assert_int_equal(herd_peers_update(t, all[i], NOW), 1);

	struct herd_find_nodes q = herd_find_nodes_default();
	struct herd_peer *r;
	strcpy(q.model_name, "llama");
	size_t n = herd_peers_find(t, &q, NOW, &r);
	assert_int_equal(n, 3);
	assert_string_equal(addr_of(&r[0]), "b:8080"); /* 600 */
	assert_string_equal(addr_of(&r[1]), "a:8080"); /* 400 */
	assert_string_equal(addr_of(&r[2]), "c:8080"); /* no free slot: last although fastest */
	free(r);

	/* reputation changes the order: b at 0.5 scores 300 < a's 400 */
	assert_int_equal(herd_peers_set_reputation(t, b.peer_id, 0.5), HERD_OK);
	n = herd_peers_find(t, &q, NOW, &r);
	assert_int_equal(n, 3);
	assert_string_equal(addr_of(&r[0]), "a:8080");
	assert_string_equal(addr_of(&r[1]), "b:8080");
	assert_true(r[1].reputation == 0.5);
	free(r);

	/* max_load 0.5: c (1.0) out; min_cpu_cores 4: b out */
	q.max_load = 0.5;
	q.min_cpu_cores = 4;
	n = herd_peers_find(t, &q, NOW, &r);
	assert_int_equal(n, 1);
	assert_string_equal(addr_of(&r[0]), "a:8080");
	free(r);

	q = herd_find_nodes_default();
	q.requires_gpu = true;
	n = herd_peers_find(t, &q, NOW, &r);
	assert_int_equal(n, 1);
	assert_string_equal(addr_of(&r[0]), "e:8080");
	free(r);

	q = herd_find_nodes_default();
	q.min_memory_mb = 64000;
	q.limit = 1;
	n = herd_peers_find(t, &q, NOW, &r);
	assert_int_equal(n, 1); /* c and e match, limit 1: e has free slots */
	assert_string_equal(addr_of(&r[0]), "e:8080");
	free(r);

	strcpy(q.model_name, "nope");
	q.limit = 0;
	assert_int_equal(herd_peers_find(t, &q, NOW, &r), 0);
	assert_null(r);

	assert_int_equal(herd_peers_set_reputation(t, "00000000000000000000000000000000", 1),
			 HERD_ERR_NOT_FOUND);
	herd_peers_free(t);
}

static void table_keeps_newest_and_drops_stale(void **state)
{
	(void)state;
	struct herd_peers *t = herd_peers_new(15000);
	struct herd_capability a = peer("a", 8, 16000, 4, 0, NULL, 0);
	a.seq = 5;
	assert_int_equal(herd_peers_update(t, &a, NOW), 1);
	assert_int_equal(herd_peers_set_reputation(t, a.peer_id, 0.25), HERD_OK);
	struct herd_capability older = a;
	older.timestamp_ms -= 10;
	older.running = 3;
	assert_int_equal(herd_peers_update(t, &older, NOW), 0); /* older: ignored */
	struct herd_capability same = a;
	assert_int_equal(herd_peers_update(t, &same, NOW), 0); /* same (timestamp, seq): ignored */
	struct herd_capability newer = a;
	newer.seq = 6;
	newer.running = 2;
	assert_int_equal(herd_peers_update(t, &newer, NOW), 1);
	struct herd_peer p;
	assert_true(herd_peers_lookup(t, a.peer_id, NOW, &p));
	assert_int_equal(p.cap.running, 2);
	assert_true(p.reputation == 0.25); /* reputation survives a new record */

	/* a record already stale is not taken */
	struct herd_capability b = peer("b", 8, 16000, 4, 0, NULL, 0);
	b.timestamp_ms = NOW - 15001;
	assert_int_equal(herd_peers_update(t, &b, NOW), 0);

	struct herd_peer *all;
	assert_int_equal(herd_peers_snapshot(t, NOW, &all), 1);
	free(all);
	/* 15 s after its timestamp a is invisible, then expired */
	int64_t later = newer.timestamp_ms + 15001;
	assert_false(herd_peers_lookup(t, a.peer_id, later, &p));
	assert_int_equal(herd_peers_snapshot(t, later, &all), 0);
	assert_int_equal(herd_peers_expire(t, later), 1);
	assert_int_equal(herd_peers_expire(t, later), 0);
	herd_peers_free(t);
}

static void peer_json_has_the_fields(void **state)
{
	(void)state;
	struct herd_peer p = {.cap = peer("10.0.0.7", 8, 16000, 4, 1, "llama", 42.5),
			      .reputation = 0.75};
	p.cap.queued = 1;
	json_t *o = herd_peer_to_json(&p);
	assert_string_equal(json_string_value(json_object_get(o, "address")), "10.0.0.7:8080");
	assert_string_equal(json_string_value(json_object_get(o, "peer_id")), p.cap.peer_id);
	assert_int_equal(json_integer_value(json_object_get(o, "free_slots")), 2);
	assert_true(json_real_value(json_object_get(o, "load_ratio")) == 0.5);
	assert_true(json_real_value(json_object_get(o, "reputation")) == 0.75);
	assert_true(json_is_null(json_object_get(o, "gpu")));
	assert_null(json_object_get(o, "sig"));
	json_t *m = json_array_get(json_object_get(o, "models"), 0);
	assert_string_equal(json_string_value(json_object_get(m, "name")), "llama");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "load"), "running")),
			 1);
	json_decref(o);
}

static enum herd_err parse(const char *text, struct herd_find_nodes *q)
{
	json_t *o = json_loads(text, JSON_DECODE_ANY, NULL);
	assert_non_null(o);
	enum herd_err err = herd_find_nodes_parse(o, q);
	json_decref(o);
	return err;
}

static void find_nodes_params_are_checked(void **state)
{
	(void)state;
	struct herd_find_nodes q;
	assert_int_equal(parse("{\"min_cpu_cores\":4,\"min_memory_mb\":8000,\"requires_gpu\":true,"
			       "\"model_name\":\"llama\",\"max_load\":0.5,\"limit\":3}",
			       &q),
			 HERD_OK);
	assert_int_equal(q.min_cpu_cores, 4);
	assert_int_equal(q.min_memory_mb, 8000);
	assert_true(q.requires_gpu);
	assert_string_equal(q.model_name, "llama");
	assert_true(q.max_load == 0.5);
	assert_int_equal(q.limit, 3);
	assert_int_equal(parse("{}", &q), HERD_OK);
	assert_true(q.max_load < 0);
	assert_int_equal(herd_find_nodes_parse(NULL, &q), HERD_OK);

	struct {
		const char *in, *msg;
	} bad[] = {
	    {"{\"min_cpu_cores\":-1}", "params.min_cpu_cores: must be a non-negative integer"},
	    {"{\"min_cpu_cores\":\"4\"}", "params.min_cpu_cores: must be a non-negative integer"},
	    {"{\"min_cpu_cores\":1.5}", "params.min_cpu_cores: must be a non-negative integer"},
	    {"{\"min_memory_mb\":true}", "params.min_memory_mb: must be a non-negative integer"},
	    {"{\"requires_gpu\":1}", "params.requires_gpu: must be a boolean"},
	    {"{\"model_name\":\"\"}", "params.model_name: must be a string of 1..64 chars"},
	    {"{\"max_load\":-0.1}", "params.max_load: must be a non-negative number"},
	    {"{\"limit\":5000}", "params.limit: must be at most 4096, got 5000"},
	    {"{\"min_cores\":4}", "params.min_cores: unknown field"},
	    {"[1]", "params: must be an object"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(parse(bad[i].in, &q), HERD_ERR_BAD_INPUT);
		if (strncmp(herd_last_error(), bad[i].msg, strlen(bad[i].msg)))
			fail_msg("%s: expected \"%s\", got \"%s\"", bad[i].in, bad[i].msg,
				 herd_last_error());
	}
}

/* ---- real OpenDHT runners on 127.0.0.1 ---- */

struct node {
	struct herd_identity id;
	struct herd_peers *peers;
	struct herd_dht *dht;
	struct herd_capability cap;
};

static void node_start(struct node *n, const char *swarm, uint16_t bootstrap_port, int idx,
		       int64_t stale_ms, int64_t interval_ms)
{
	herd_identity_generate(&n->id);
	n->peers = herd_peers_new(stale_ms);
	struct herd_dht_params p = herd_dht_default_params();
	char boot[32];
	const char *boots[1] = {boot};
	if (bootstrap_port) {
		snprintf(boot, sizeof boot, "127.0.0.1:%u", bootstrap_port);
		p.bootstrap = boots;
		p.n_bootstrap = 1;
	}
	p.swarm = swarm;
	p.announce_interval_ms = interval_ms;
	p.get_interval_ms = interval_ms;
	if (herd_dht_start(&p, &n->id, n->peers, &n->dht))
		fail_msg("herd_dht_start: %s", herd_last_error());
	assert_true(herd_dht_port(n->dht) > 0);
	assert_int_equal(herd_capability_measure(&n->id, &n->cap), HERD_OK);
	snprintf(n->cap.address, sizeof n->cap.address, "127.0.0.1:%d", 9000 + idx);
	snprintf(n->cap.swarm, sizeof n->cap.swarm, "%s", swarm);
	n->cap.slots = 2;
	if (herd_dht_announce(n->dht, &n->cap))
		fail_msg("herd_dht_announce: %s", herd_last_error());
}

static void node_stop(struct node *n)
{
	herd_dht_free(n->dht);
	n->dht = NULL;
	herd_peers_free(n->peers);
	n->peers = NULL;
}

static size_t count(struct node *n)
{
	struct herd_peer *v;
	size_t k = herd_peers_snapshot(n->peers, 0, &v);
	free(v);
	return k;
}

static bool sees(struct node *n, const char *peer_id, struct herd_peer *out)
{
	struct herd_peer tmp;
	return herd_peers_lookup(n->peers, peer_id, 0, out ? out : &tmp);
}

#define WAIT_UNTIL(cond, ms)                                                                       \
	({                                                                                         \
		double deadline_ = herd_now_ms() + (ms);                                           \
		while (!(cond) && herd_now_ms() < deadline_)                                       \
			usleep(20000);                                                             \
		(cond);                                                                            \
	})

static bool all_see(struct node *ns, int k, size_t expect)
{
	for (int i = 0; i < k; i++)
		if (count(&ns[i]) != expect)
			return false;
	return true;
}

static void runners_find_each_other(void **state)
{
	(void)state;
	struct node ns[4], other;
	double t0 = herd_now_ms();
	node_start(&ns[0], "alpha", 0, 0, 15000, 500);
	for (int i = 1; i < 4; i++)
		node_start(&ns[i], "alpha", herd_dht_port(ns[0].dht), i, 15000, 500);
	node_start(&other, "beta", herd_dht_port(ns[0].dht), 9, 15000, 500);

	assert_true(WAIT_UNTIL(all_see(ns, 4, 4), 5000));
	herd_log(INFO, "4 runners saw each other after %.0f ms", herd_now_ms() - t0);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++) {
			struct herd_peer p;
			assert_true(sees(&ns[i], ns[j].id.peer_id, &p));
			char want[32];
			snprintf(want, sizeof want, "127.0.0.1:%d", 9000 + j);
			assert_string_equal(p.cap.address, want);
			assert_string_equal(p.cap.swarm, "alpha");
		}

	/* the load change reaches the others quickly, without waiting for the interval */
	herd_dht_set_load(ns[2].dht, 2, 3);
	struct herd_peer p;
	assert_true(WAIT_UNTIL(sees(&ns[0], ns[2].id.peer_id, &p) && p.cap.queued == 3, 3000));
	assert_int_equal(p.cap.running, 2);

	/* the other swarm shares the DHT network but not the key */
	assert_int_equal(count(&other), 1);
	assert_true(sees(&other, other.id.peer_id, NULL));
	for (int i = 0; i < 4; i++) {
		assert_false(sees(&ns[i], other.id.peer_id, NULL));
		assert_false(sees(&other, ns[i].id.peer_id, NULL));
	}

	/* a record for another swarm is refused by announce */
	struct herd_capability wrong = ns[1].cap;
	strcpy(wrong.swarm, "beta");
	assert_int_equal(herd_dht_announce(ns[1].dht, &wrong), HERD_ERR_BAD_INPUT);

	node_stop(&other);
	for (int i = 3; i >= 0; i--)
		node_stop(&ns[i]);
}

static void dead_node_vanishes(void **state)
{
	(void)state;
	const int64_t stale_ms = 1500;
	struct node ns[3];
	node_start(&ns[0], "gamma", 0, 0, stale_ms, 300);
	for (int i = 1; i < 3; i++)
		node_start(&ns[i], "gamma", herd_dht_port(ns[0].dht), i, stale_ms, 300);
	assert_true(WAIT_UNTIL(all_see(ns, 3, 3), 5000));
	char gone[HERD_PEER_ID_HEX + 1];
	strcpy(gone, ns[2].id.peer_id);

	/* it stays visible while it refreshes, for longer than the window */
	usleep((useconds_t)(stale_ms + 300) * 1000);
	assert_true(sees(&ns[0], gone, NULL));
	assert_true(sees(&ns[1], gone, NULL));

	/* it stops refreshing: its value lingers in the DHT, but the survivors drop it */
	double t0 = herd_now_ms();
	node_stop(&ns[2]);
	assert_true(
	    WAIT_UNTIL(!sees(&ns[0], gone, NULL) && !sees(&ns[1], gone, NULL), 3 * stale_ms));
	double took = herd_now_ms() - t0;
	assert_true(took <= stale_ms + 500);
	assert_true(all_see(ns, 2, 2));
	/* and the periodic gets that still return its lingering value do not bring it back */
	usleep(700 * 1000);
	assert_false(sees(&ns[0], gone, NULL));
	struct herd_peer *v;
	assert_int_equal(herd_peers_snapshot(ns[0].peers, 0, &v), 2);
	free(v);
	node_stop(&ns[1]);
	node_stop(&ns[0]);
}

static void bad_params_are_refused(void **state)
{
	(void)state;
	struct herd_identity id;
	herd_identity_generate(&id);
	struct herd_peers *t = herd_peers_new(0);
	struct herd_dht *d = NULL;
	struct herd_dht_params p = herd_dht_default_params();
	const char *boots[] = {"127.0.0.1"};
	p.bootstrap = boots;
	p.n_bootstrap = 1;
	assert_int_equal(herd_dht_start(&p, &id, t, &d), HERD_ERR_BAD_INPUT);
	assert_string_equal(
	    herd_last_error(),
	    "bootstrap[0]: must be HOST:PORT with port 1..65535, got \"127.0.0.1\"");
	p.n_bootstrap = 0;
	p.swarm = "no spaces";
	assert_int_equal(herd_dht_start(&p, &id, t, &d), HERD_ERR_BAD_INPUT);
	assert_non_null(strstr(herd_last_error(), "swarm:"));
	assert_null(d);
	herd_peers_free(t);
}

HERD_TEST_MAIN(((const struct CMUnitTest[]){
    cmocka_unit_test(find_nodes_filters_and_orders),
    cmocka_unit_test(table_keeps_newest_and_drops_stale),
    cmocka_unit_test(peer_json_has_the_fields),
    cmocka_unit_test(find_nodes_params_are_checked),
    cmocka_unit_test(runners_find_each_other),
    cmocka_unit_test(dead_node_vanishes),
    cmocka_unit_test(bad_params_are_refused),
}))
