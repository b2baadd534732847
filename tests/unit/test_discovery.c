/* discovery tests: real OpenDHT runners and real HTTP servers on 127.0.0.1 in one process.
 * Each test node has an HTTP server answering NODE_INFO, as `herd node` does, so the
 * NODE_INFO check runs for real. SHA-256 values come from the sha256sum tool. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herd_test.h"

#include "discovery.h"
#include "net.h"
#include "proto.h"

#define STORIES HERD_SHARED("models/stories260K.gguf")
#define STORIES_Q8 HERD_SHARED("models/stories260K-Q8_0.gguf")

struct tnode {
	struct herd_http_server *srv;
	struct herd_discovery *disc;
	const char *fake_peer_id; /* answer NODE_INFO with this id instead (an impostor) */
	char addr[64];
};

static void on_command(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	struct tnode *n = ud;
	size_t len;
	const char *body = herd_http_req_body(req, &len);
	struct herd_command *cmd;
	if (herd_command_parse(body, len, &cmd)) {
		herd_http_resp_error(resp, 400, HERD_ERR_BAD_INPUT, "%s", herd_last_error());
		return;
	}
	if (cmd->kind != HERD_COMMAND_NODE_INFO || !n->disc) {
		herd_command_free(cmd);
		herd_http_resp_error(resp, 503, HERD_ERR_UNSUPPORTED, "not ready");
		return;
	}
	json_t *result = json_object();
	herd_discovery_node_info(n->disc, result);
	if (n->fake_peer_id) {
		json_object_set_new(result, "peer_id", json_string(n->fake_peer_id));
		json_object_set_new(result, "node_id", json_string(n->fake_peer_id));
	}
	struct herd_command *ans =
	    herd_command_answer_success(cmd, herd_discovery_peer_id(n->disc), result);
	herd_http_resp_json(resp, 200, herd_command_to_json(ans));
	herd_command_free(ans);
	herd_command_free(cmd);
}

static void serve(struct tnode *n)
{
	struct herd_http_route route = {"POST", "/v1/command", false, on_command, n};
	struct herd_http_server_params sp = herd_http_server_default_params();
	sp.routes = &route;
	sp.n_routes = 1;
	if (herd_http_server_new(&sp, &n->srv))
		fail_msg("server: %s", herd_last_error());
	snprintf(n->addr, sizeof n->addr, "127.0.0.1:%u", herd_http_server_port(n->srv));
}

static char tmp_root[64];

static void make_tmp(void)
{
	snprintf(tmp_root, sizeof tmp_root, "/tmp/herd-test-disco-XXXXXX");
	assert_non_null(mkdtemp(tmp_root));
}

static void rm_tmp(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
	assert_int_equal(system(cmd), 0);
}

/* Starts node n: HTTP server, then discovery advertising it. */
static void start(struct tnode *n, const char *name, struct herd_discovery_params p)
{
	if (!n->srv)
		serve(n);
	char dir[128];
	snprintf(dir, sizeof dir, "%s/%s", tmp_root, name);
	p.advertise = n->addr;
	p.data_dir = dir;
	p.announce_interval_ms = 500;
	p.stale_ms = 2000;
	struct herd_discovery *d;
	if (herd_discovery_start(&p, &d))
		fail_msg("start %s: %s", name, herd_last_error());
	n->disc = d;
}

static void stop(struct tnode *n)
{
	herd_http_server_free(n->srv);
	n->srv = NULL;
	herd_discovery_free(n->disc);
	n->disc = NULL;
}

static void sha256sum(const char *path, char out[65])
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	assert_non_null(fgets(out, 65, f));
	pclose(f);
	assert_int_equal(strlen(out), 64);
}

#define WAIT_UNTIL(cond, ms)                                                                       \
	({                                                                                         \
		double deadline_ = herd_now_ms() + (ms);                                           \
		while (!(cond) && herd_now_ms() < deadline_)                                       \
			usleep(20000);                                                             \
		(cond);                                                                            \
	})

/* The peer with this id in FIND_NODES(params) of d, or NULL (new reference). */
static json_t *find(struct herd_discovery *d, const char *params_json, const char *peer_id,
		    size_t *count)
{
	json_t *params = params_json ? json_loads(params_json, 0, NULL) : NULL;
	json_t *res;
	if (herd_discovery_find_nodes(d, params, &res))
		fail_msg("find_nodes: %s", herd_last_error());
	json_decref(params);
	json_t *nodes = json_object_get(res, "nodes"), *hit = NULL, *e;
	size_t i;
	assert_int_equal(json_integer_value(json_object_get(res, "count")), json_array_size(nodes));
	if (count)
		*count = json_array_size(nodes);
	json_array_foreach(
	    nodes, i, e) if (peer_id && !strcmp(json_string_value(json_object_get(e, "peer_id")),
						peer_id)) hit = json_incref(e);
	json_decref(res);
	return hit;
}

static size_t count_of(struct herd_discovery *d, const char *params_json)
{
	size_t n;
	find(d, params_json, NULL, &n);
	return n;
}

static bool load_is(struct herd_discovery *d, const char *peer_id, int running, int queued)
{
	json_t *p = find(d, NULL, peer_id, NULL);
	bool ok =
	    p &&
	    json_integer_value(json_object_get(json_object_get(p, "load"), "running")) == running &&
	    json_integer_value(json_object_get(json_object_get(p, "load"), "queued")) == queued;
	json_decref(p);
	return ok;
}

static bool speed_is(struct herd_discovery *d, const char *peer_id, double tps)
{
	json_t *p = find(d, NULL, peer_id, NULL);
	json_t *m = p ? json_array_get(json_object_get(p, "models"), 0) : NULL;
	bool ok = m && json_real_value(json_object_get(m, "tokens_per_s")) == tps;
	json_decref(p);
	return ok;
}

static void two_nodes_see_models_load_and_speed(void **state)
{
	(void)state;
	make_tmp();
	struct tnode a = {0}, b = {0};
	struct herd_discovery_model ma = {"stories", STORIES}, mb = {"other", STORIES_Q8};
	struct herd_discovery_params p = herd_discovery_default_params();
	p.models = &ma;
	p.n_models = 1;
	p.slots = 2;
	p.cores = 1;
	p.memory_mb = 1000;
	start(&a, "a", p);
	char boot[32];
	snprintf(boot, sizeof boot, "127.0.0.1:%u", herd_discovery_dht_port(a.disc));
	const char *boots[] = {boot};
	p = herd_discovery_default_params();
	p.bootstrap = boots;
	p.n_bootstrap = 1;
	p.models = &mb;
	p.n_models = 1;
	p.slots = 3;
	p.memory_mb = 2000;
	start(&b, "b", p);
	const char *ida = herd_discovery_peer_id(a.disc), *idb = herd_discovery_peer_id(b.disc);
	assert_string_not_equal(ida, idb);

	assert_true(WAIT_UNTIL(count_of(a.disc, NULL) == 2 && count_of(b.disc, NULL) == 2, 5000));

	/* B's record as A sees it: exactly what B serves */
	json_t *rb = find(a.disc, NULL, idb, NULL);
	assert_non_null(rb);
	assert_string_equal(json_string_value(json_object_get(rb, "address")), b.addr);
	assert_int_equal(json_integer_value(json_object_get(rb, "slots")), 3);
	assert_int_equal(json_integer_value(json_object_get(rb, "memory_mb")), 2000);
	assert_int_equal(json_integer_value(json_object_get(rb, "cpu_cores")),
			 sysconf(_SC_NPROCESSORS_ONLN));
	json_t *m = json_array_get(json_object_get(rb, "models"), 0);
	assert_int_equal(json_array_size(json_object_get(rb, "models")), 1);
	assert_string_equal(json_string_value(json_object_get(m, "name")), "other");
	char sum[65];
	sha256sum(STORIES_Q8, sum);
	assert_string_equal(json_string_value(json_object_get(m, "sha256")), sum);
	struct stat st;
	assert_int_equal(stat(STORIES_Q8, &st), 0);
	assert_int_equal(json_integer_value(json_object_get(m, "size_bytes")), st.st_size);
	json_t *types = json_object_get(m, "tensor_types");
	assert_int_equal(json_array_size(types), 3);
	assert_string_equal(json_string_value(json_array_get(types, 0)), "f16");
	assert_string_equal(json_string_value(json_array_get(types, 1)), "f32");
	assert_string_equal(json_string_value(json_array_get(types, 2)), "q8_0");
	json_decref(rb);

	json_t *ra = find(b.disc, NULL, ida, NULL);
	assert_non_null(ra);
	assert_int_equal(json_integer_value(json_object_get(ra, "cpu_cores")), 1);
	m = json_array_get(json_object_get(ra, "models"), 0);
	sha256sum(STORIES, sum);
	assert_string_equal(json_string_value(json_object_get(m, "sha256")), sum);
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(m, "tensor_types"), 0)), "f32");
	json_decref(ra);

	/* filters */
	json_t *hit = find(a.disc, "{\"min_memory_mb\": 1500}", idb, NULL);
	assert_non_null(hit);
	json_decref(hit);
	assert_int_equal(count_of(a.disc, "{\"min_memory_mb\": 1500}"), 1);
	assert_int_equal(count_of(a.disc, "{\"model_name\": \"stories\"}"), 1);
	assert_int_equal(count_of(a.disc, "{\"model_name\": \"nope\"}"), 0);
	assert_int_equal(count_of(a.disc, "{\"requires_gpu\": true}"), 0);
	json_t *bad = json_loads("{\"min_cpu_cores\": -1}", 0, NULL), *res;
	assert_int_equal(herd_discovery_find_nodes(a.disc, bad, &res), HERD_ERR_BAD_INPUT);
	assert_null(res);
	assert_non_null(strstr(herd_last_error(), "params.min_cpu_cores"));
	json_decref(bad);

	/* load and speed travel */
	herd_discovery_set_load(b.disc, 1, 2);
	assert_true(WAIT_UNTIL(load_is(a.disc, idb, 1, 2), 3000));
	assert_int_equal(count_of(a.disc, "{\"max_load\": 0.5}"), 1); /* B is at 3/3 */
	assert_int_equal(herd_discovery_set_speed(b.disc, "other", 42.5), HERD_OK);
	assert_true(WAIT_UNTIL(speed_is(a.disc, idb, 42.5), 3000));
	assert_true(load_is(a.disc, idb, 1, 2)); /* the speed update kept the load */
	assert_int_equal(herd_discovery_set_speed(b.disc, "stories", 1), HERD_ERR_NOT_FOUND);
	assert_int_equal(herd_discovery_set_speed(b.disc, "other", -1), HERD_ERR_BAD_INPUT);

	/* the coordinator's view: B passed the NODE_INFO check; A is itself */
	struct herd_discovered_peer *v;
	size_t n = herd_discovery_peers_for_model(a.disc, "other", &v);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].peer_id, idb);
	char url[80];
	snprintf(url, sizeof url, "http://%s", b.addr);
	assert_string_equal(v[0].url, url);
	assert_int_equal(v[0].slots, 3);
	assert_int_equal(v[0].free_slots, 0);
	assert_true(v[0].tokens_per_s == 42.5);
	assert_false(v[0].is_self);
	free(v);
	n = herd_discovery_peers_for_model(a.disc, "stories", &v);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].peer_id, ida);
	assert_true(v[0].is_self);
	free(v);
	n = herd_discovery_peers_for_model(a.disc, NULL, &v);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].peer_id, ida); /* A has free slots, B has none */
	free(v);

	/* GET /v1/nodes shape */
	json_t *all = herd_discovery_nodes_json(a.disc);
	assert_string_equal(json_string_value(json_object_get(all, "peer_id")), ida);
	assert_int_equal(json_integer_value(json_object_get(all, "count")), 2);
	assert_int_equal(json_integer_value(json_object_get(all, "dht_port")),
			 herd_discovery_dht_port(a.disc));
	json_t *first = json_array_get(json_object_get(all, "nodes"), 0);
	assert_true(json_is_true(json_object_get(first, "self")));
	assert_true(json_is_true(json_object_get(first, "verified")));
	json_decref(all);

	/* B leaves: A's view drops it once its record is stale */
	stop(&b);
	assert_true(WAIT_UNTIL(count_of(a.disc, NULL) == 1, 6000));
	n = herd_discovery_peers_for_model(a.disc, "other", &v);
	assert_int_equal(n, 0);
	assert_null(v);
	stop(&a);
	rm_tmp();
}

static void impostors_and_dead_addresses_are_not_used(void **state)
{
	(void)state;
	make_tmp();
	struct tnode a = {0}, liar = {0}, dead = {0};
	struct herd_discovery_model m = {"stories", STORIES};
	struct herd_discovery_params p = herd_discovery_default_params();
	p.models = &m;
	p.n_models = 1;
	start(&a, "a", p);
	char boot[32];
	snprintf(boot, sizeof boot, "127.0.0.1:%u", herd_discovery_dht_port(a.disc));
	const char *boots[] = {boot};
	p.bootstrap = boots;
	p.n_bootstrap = 1;
	liar.fake_peer_id = "00000000000000000000000000000000";
	start(&liar, "liar", p);
	/* "dead" advertises the port of a server that is gone */
	serve(&dead);
	herd_http_server_free(dead.srv);
	dead.srv = NULL;
	struct herd_discovery_params pd = p;
	pd.advertise = dead.addr;
	pd.data_dir = NULL;
	char dir[128];
	snprintf(dir, sizeof dir, "%s/dead", tmp_root);
	pd.data_dir = dir;
	pd.announce_interval_ms = 500;
	assert_int_equal(herd_discovery_start(&pd, &dead.disc), HERD_OK);

	assert_true(WAIT_UNTIL(count_of(a.disc, "{\"model_name\": \"stories\"}") == 3, 5000));
	struct herd_discovered_peer *v;
	size_t n = herd_discovery_peers_for_model(a.disc, "stories", &v);
	assert_int_equal(n, 1);
	assert_true(v[0].is_self);
	free(v);
	/* FIND_NODES still lists them, marked unverified */
	json_t *e = find(a.disc, NULL, herd_discovery_peer_id(liar.disc), NULL);
	assert_non_null(e);
	assert_true(json_is_false(json_object_get(e, "verified")));
	json_decref(e);
	stop(&dead);
	stop(&liar);
	stop(&a);
	rm_tmp();
}

static void identity_is_stable_and_default_dir_is_per_address(void **state)
{
	(void)state;
	make_tmp();
	struct herd_discovery_params p = herd_discovery_default_params();
	p.advertise = "127.0.0.1:1";
	char dir[128];
	snprintf(dir, sizeof dir, "%s/keep", tmp_root);
	p.data_dir = dir;
	struct herd_discovery *d;
	assert_int_equal(herd_discovery_start(&p, &d), HERD_OK);
	char id[HERD_PEER_ID_HEX + 1];
	snprintf(id, sizeof id, "%s", herd_discovery_peer_id(d));
	herd_discovery_free(d);
	assert_int_equal(herd_discovery_start(&p, &d), HERD_OK);
	assert_string_equal(herd_discovery_peer_id(d), id);
	herd_discovery_free(d);

	/* no data dir: $XDG_STATE_HOME/herd/node-<address> */
	char xdg[128];
	snprintf(xdg, sizeof xdg, "%s/state", tmp_root);
	setenv("XDG_STATE_HOME", xdg, 1);
	p.data_dir = NULL;
	p.advertise = "127.0.0.1:4567";
	assert_int_equal(herd_discovery_start(&p, &d), HERD_OK);
	char want[256];
	snprintf(want, sizeof want, "%s/herd/node-127.0.0.1_4567", xdg);
	assert_string_equal(herd_discovery_data_dir(d), want);
	char key[300];
	snprintf(key, sizeof key, "%s/identity.key", want);
	assert_int_equal(access(key, R_OK), 0);
	assert_string_not_equal(herd_discovery_peer_id(d), id);
	herd_discovery_free(d);
	unsetenv("XDG_STATE_HOME");
	char tmpdir[128];
	assert_true(herd_discovery_default_data_dir("[::1]:80", tmpdir, sizeof tmpdir));
	snprintf(want, sizeof want, "/tmp/herd-%u/node-___1__80", (unsigned)getuid());
	assert_string_equal(tmpdir, want);
	rm_tmp();
}

static void bad_params_are_refused(void **state)
{
	(void)state;
	make_tmp();
	char dir[128];
	snprintf(dir, sizeof dir, "%s/x", tmp_root);
	struct herd_discovery *d = (void *)1;
	struct herd_discovery_params p = herd_discovery_default_params();
	p.data_dir = dir;
	assert_int_equal(herd_discovery_start(&p, &d), HERD_ERR_BAD_INPUT);
	assert_null(d);
	assert_non_null(strstr(herd_last_error(), "advertise"));

	p.advertise = "0.0.0.0:8080";
	assert_int_equal(herd_discovery_start(&p, &d), HERD_ERR_BAD_INPUT);
	assert_non_null(strstr(herd_last_error(), "capability.address"));

	p.advertise = "127.0.0.1:8080";
	p.slots = 0;
	assert_int_equal(herd_discovery_start(&p, &d), HERD_ERR_BAD_INPUT);
	assert_string_equal(herd_last_error(), "slots: must be 1..256, got 0");
	p.slots = 1;

	struct herd_discovery_model m = {"m", "/nonexistent/x.gguf"};
	p.models = &m;
	p.n_models = 1;
	assert_int_equal(herd_discovery_start(&p, &d), HERD_ERR_FORMAT);
	assert_non_null(strstr(herd_last_error(), "models[0] (m): "));
	assert_non_null(strstr(herd_last_error(), "/nonexistent/x.gguf"));

	m.path = HERD_SHARED("models/stories260K.bin"); /* not GGUF */
	assert_int_equal(herd_discovery_start(&p, &d), HERD_ERR_FORMAT);
	assert_non_null(strstr(herd_last_error(), "models[0] (m): "));

	struct herd_discovery_model two[2] = {{"same", STORIES}, {"same", STORIES_Q8}};
	p.models = two;
	p.n_models = 2;
	assert_int_equal(herd_discovery_start(&p, &d), HERD_ERR_BAD_INPUT);
	assert_non_null(strstr(herd_last_error(), "capability.models"));

	p.n_models = 0;
	p.swarm = "bad swarm";
	assert_int_equal(herd_discovery_start(&p, &d), HERD_ERR_BAD_INPUT);
	assert_non_null(strstr(herd_last_error(), "swarm"));
	assert_null(d);
	rm_tmp();
}

HERD_TEST_MAIN(((const struct CMUnitTest[]){
    cmocka_unit_test(two_nodes_see_models_load_and_speed),
    cmocka_unit_test(impostors_and_dead_addresses_are_not_used),
    cmocka_unit_test(identity_is_stable_and_default_dir_is_per_address),
    cmocka_unit_test(bad_params_are_refused),
}))
