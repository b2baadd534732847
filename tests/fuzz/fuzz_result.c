/* fuzz_result — herd_fragment_result_from_json on arbitrary JSON (what a worker answered),
 * and the aggregator fed what parsed. The input is one result object or an array of them;
 * each is offered to the aggregators of two fixed jobs (a text job of 4 fragments and an
 * array job of 3). The aggregator must refuse duplicates and wrong shapes without changing
 * state, count exactly what it accepted, and finish only when complete. */
#include "fuzz.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "proto.h"

static struct herd_job *jobs[2];

static const char *const requests[2] = {
    "{\"command\":\"EXECUTE_TASK\",\"request_id\":\"r\",\"timestamp\":1,\"params\":{\"model_name\":"
    "\"m\","
    "\"input_data\":\"One. Two. Three. Four. Five six seven.\",\"num_fragments\":4}}",
    "{\"command\":\"EXECUTE_TASK\",\"request_id\":\"r\",\"timestamp\":1,\"params\":{\"model_name\":"
    "\"m\","
    "\"input_data\":[\"a\",\"b\",\"c\",\"d\",\"e\"],\"num_fragments\":3}}",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	struct herd_job_opts o = {.job_id = "job-fuzz"};
	for (int i = 0; i < 2; i++)
		if (herd_job_parse(requests[i], strlen(requests[i]), &o, &jobs[i]) != HERD_OK) {
			fprintf(stderr, "fuzz_result: %s\n", herd_last_error());
			exit(1);
		}
	return 0;
}

static void offer(struct herd_aggregator *agg, const struct herd_job *job, const json_t *j,
		  int *accepted)
{
	struct herd_fragment_result *r = NULL;
	enum herd_err e = herd_fragment_result_from_json(j, &r);
	if (e != HERD_OK) {
		FUZZ_CHECK(r == NULL, "failed parse left a result");
		return;
	}
	FUZZ_CHECK(r->job_id && r->fragment_id && r->node_id && r->output, "fields missing");
	/* to JSON and back gives the same */
	json_t *back = herd_fragment_result_to_json(r);
	struct herd_fragment_result *r2 = NULL;
	e = herd_fragment_result_from_json(back, &r2);
	FUZZ_CHECK(e == HERD_OK, "own output refused: %s", herd_last_error());
	json_t *again = herd_fragment_result_to_json(r2);
	FUZZ_CHECK(json_equal(back, again), "round trip changed the result");
	json_decref(again);
	json_decref(back);
	herd_fragment_result_free(r2);

	int before = herd_aggregator_received(agg);
	e = herd_aggregator_add(agg, r);
	if (e == HERD_OK) {
		(*accepted)++;
		FUZZ_CHECK(r->index >= 0 && r->index < job->n_fragments, "index %d accepted",
			   r->index);
		FUZZ_CHECK(herd_aggregator_add(agg, r) != HERD_OK, "duplicate %d accepted",
			   r->index);
	}
	FUZZ_CHECK(herd_aggregator_received(agg) == before + (e == HERD_OK),
		   "count wrong after add");
	herd_fragment_result_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = NULL;
	if (herd_json_parse((const char *)data, size, &j) != HERD_OK)
		return 0;
	for (int k = 0; k < 2; k++) {
		struct herd_aggregator *agg = herd_aggregator_new(jobs[k]);
		int accepted = 0;
		if (json_is_array(j)) {
			size_t i;
			json_t *x;
			json_array_foreach(j, i, x) offer(agg, jobs[k], x, &accepted);
		} else {
			offer(agg, jobs[k], j, &accepted);
		}
		FUZZ_CHECK(herd_aggregator_received(agg) == accepted, "received %d, accepted %d",
			   herd_aggregator_received(agg), accepted);
		bool complete = herd_aggregator_complete(agg);
		FUZZ_CHECK(complete == (accepted == jobs[k]->n_fragments),
			   "complete=%d with %d of %d", complete, accepted, jobs[k]->n_fragments);
		int miss = herd_aggregator_first_missing(agg);
		FUZZ_CHECK(complete ? miss == -1 : (miss >= 0 && miss < jobs[k]->n_fragments),
			   "first missing %d", miss);
		struct herd_job_result *res = NULL;
		enum herd_err e = herd_aggregator_finish(agg, &res);
		FUZZ_CHECK((e == HERD_OK) == complete, "finish %d when complete=%d", (int)e,
			   complete);
		if (res) {
			json_t *resp = herd_job_result_to_response(res, jobs[k]->request, "me");
			FUZZ_CHECK(resp != NULL, "no response");
			char *s = json_dumps(resp, JSON_COMPACT);
			FUZZ_CHECK(s != NULL, "response does not serialize");
			free(s);
			json_decref(resp);
			herd_job_result_free(res);
		}
		herd_aggregator_free(agg);
	}
	json_decref(j);
	return 0;
}
