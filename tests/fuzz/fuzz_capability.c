/* fuzz_capability — herd_capability_decode on arbitrary bytes (a DHT value from anyone).
 * Every field is validated before the signature, so mutated records reach every check. A
 * record that decodes must re-encode only with its own key, so here: its fields must be in
 * the documented ranges, to_json must work, and the peer table must take it. Time is fixed
 * (the seeds from fuzz_corpus_gen are stamped at CAP_EPOCH_MS), so runs are reproducible. */
#include "fuzz.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "swarm.h"

#define CAP_EPOCH_MS 1700000000000ll

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		fuzz_quiet();
		init = true;
	}
	struct herd_capability cap;
	int64_t now = CAP_EPOCH_MS + 1000;
	enum herd_err e = herd_capability_decode(data, size, now, 0, &cap);
	if (e != HERD_OK) {
		FUZZ_CHECK(herd_last_error()[0] != 0, "refused without a message");
		return 0;
	}
	FUZZ_CHECK(size <= HERD_CAP_MAX_BYTES, "%zu bytes accepted", size);
	FUZZ_CHECK(cap.cpu_cores >= 1 && cap.slots >= 1 && cap.running >= 0 &&
		       cap.running <= cap.slots && cap.queued >= 0 && cap.n_models >= 0 &&
		       cap.n_models <= HERD_CAP_MAX_MODELS,
		   "fields out of range");
	char pid[HERD_PEER_ID_HEX + 1];
	herd_peer_id_of(cap.public_key, pid);
	FUZZ_CHECK(strcmp(pid, cap.peer_id) == 0, "peer id %s is not the key's %s", cap.peer_id,
		   pid);
	FUZZ_CHECK(cap.timestamp_ms <= now + HERD_CAP_MAX_FUTURE_MS, "future record accepted");
	json_t *j = herd_capability_to_json(&cap);
	FUZZ_CHECK(j != NULL, "no JSON");
	json_decref(j);
	struct herd_peers *t = herd_peers_new(INT64_MAX / 4);
	FUZZ_CHECK(herd_peers_update(t, &cap, now) == 1, "the table refused a valid record");
	struct herd_find_nodes q = herd_find_nodes_default();
	struct herd_peer *found = NULL;
	size_t n = herd_peers_find(t, &q, now, &found);
	FUZZ_CHECK(n == 1, "%zu peers found", n);
	json_decref(herd_peer_to_json(&found[0]));
	free(found);
	herd_peers_free(t);
	return 0;
}
