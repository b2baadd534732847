/* fuzz_find_nodes — herd_find_nodes_parse on arbitrary JSON (FIND_NODES params from any
 * client), then the parsed filters run against a small peer table: results must satisfy
 * the filters and respect the limit. */
#include "fuzz.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "proto.h"
#include "swarm.h"

static struct herd_peers *table;
static const int64_t now = 1700000000000ll;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	table = herd_peers_new(60000);
	for (int i = 0; i < 4; i++) {
		struct herd_identity id;
		herd_identity_generate(&id);
		struct herd_capability c;
		memset(&c, 0, sizeof c);
		memcpy(c.peer_id, id.peer_id, sizeof c.peer_id);
		memcpy(c.public_key, id.public_key, sizeof c.public_key);
		snprintf(c.address, sizeof c.address, "127.0.0.1:%d", 9000 + i);
		snprintf(c.swarm, sizeof c.swarm, "default");
		c.cpu_cores = 1 << i;
		c.memory_mb = 1024 << i;
		c.slots = 1 + i;
		c.running = i % 2;
		c.queued = i;
		c.n_models = i % 3;
		for (int m = 0; m < c.n_models; m++) {
			snprintf(c.models[m].name, sizeof c.models[m].name, "model%d", m);
			c.models[m].tokens_per_s = 10.0 * (i + 1);
		}
		c.timestamp_ms = now;
		if (herd_peers_update(table, &c, now) != 1) {
			fprintf(stderr, "fuzz_find_nodes: peer table refused peer %d\n", i);
			exit(1);
		}
	}
	return 0;
}

static bool has_model(const struct herd_capability *c, const char *name)
{
	for (int m = 0; m < c->n_models; m++)
		if (strcmp(c->models[m].name, name) == 0)
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = NULL;
	if (herd_json_parse((const char *)data, size, &j) != HERD_OK)
		return 0;
	struct herd_find_nodes q;
	enum herd_err e = herd_find_nodes_parse(j, &q);
	json_decref(j);
	if (e != HERD_OK) {
		FUZZ_CHECK(herd_last_error()[0] != 0, "refused without a message");
		return 0;
	}
	struct herd_peer *out = NULL;
	size_t n = herd_peers_find(table, &q, now, &out);
	FUZZ_CHECK(q.limit <= 0 || n <= (size_t)q.limit, "%zu results for limit %d", n, q.limit);
	for (size_t i = 0; i < n; i++) {
		const struct herd_capability *c = &out[i].cap;
		FUZZ_CHECK(c->cpu_cores >= q.min_cpu_cores && c->memory_mb >= q.min_memory_mb,
			   "peer %s below the minimum", c->peer_id);
		FUZZ_CHECK(!q.requires_gpu || c->has_gpu, "peer %s has no GPU", c->peer_id);
		FUZZ_CHECK(!q.model_name[0] || has_model(c, q.model_name), "peer %s lacks %s",
			   c->peer_id, q.model_name);
		FUZZ_CHECK(q.max_load < 0 ||
			       (double)(c->running + c->queued) / c->slots <= q.max_load,
			   "peer %s over the load", c->peer_id);
	}
	free(out);
	return 0;
}
