/* fuzz_command — herd_command_parse on arbitrary bytes (any POST /v1/command body). A
 * command that parses must serialize and parse again to the same JSON; then every handler's
 * parser that a node runs on a command gets it: herd_fragment_from_command (a worker),
 * herd_job_from_request (a coordinator) and herd_find_nodes_parse (FIND_NODES). */
#include "fuzz.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "proto.h"
#include "swarm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		fuzz_quiet();
		init = true;
	}
	struct herd_command *c = NULL;
	enum herd_err e = herd_command_parse((const char *)data, size, &c);
	if (e != HERD_OK) {
		FUZZ_CHECK(c == NULL, "failed parse left a command");
		FUZZ_CHECK(herd_last_error()[0] != 0, "refused without a message");
		return 0;
	}
	FUZZ_CHECK(c->request_id && c->from && c->to && json_is_object(c->params),
		   "fields missing");
	FUZZ_CHECK(herd_command_name(c->kind) != NULL, "kind %d has no name", (int)c->kind);

	json_t *j = herd_command_to_json(c);
	char *text = json_dumps(j, JSON_COMPACT);
	FUZZ_CHECK(text != NULL, "command does not serialize");
	struct herd_command *c2 = NULL;
	e = herd_command_parse(text, strlen(text), &c2);
	FUZZ_CHECK(e == HERD_OK, "own output refused: %s: %s", herd_last_error(), text);
	json_t *j2 = herd_command_to_json(c2);
	FUZZ_CHECK(json_equal(j, j2), "round trip changed the command: %s", text);
	json_decref(j2);
	herd_command_free(c2);
	free(text);
	json_decref(j);

	struct herd_fragment *f = NULL;
	if (herd_fragment_from_command(c, &f) == HERD_OK) {
		FUZZ_CHECK(f->index >= 0 && f->index < f->total, "fragment %d of %d", f->index,
			   f->total);
		struct herd_fragment_result *r = herd_fragment_result_new(f, "me");
		r->output = json_string("");
		json_t *rj = herd_fragment_result_to_json(r);
		struct herd_fragment_result *r2 = NULL;
		e = herd_fragment_result_from_json(rj, &r2);
		FUZZ_CHECK(e == HERD_OK, "result for fragment %s refused: %s", f->fragment_id,
			   herd_last_error());
		herd_fragment_result_free(r2);
		json_decref(rj);
		herd_fragment_result_free(r);
		herd_fragment_free(f);
	} else {
		FUZZ_CHECK(f == NULL, "failed fragment left memory");
	}
	struct herd_job *job = NULL;
	if (herd_job_from_request(c, NULL, &job) == HERD_OK)
		herd_job_free(job);
	struct herd_find_nodes q;
	(void)herd_find_nodes_parse(c->params, &q);

	struct herd_command *a = herd_command_answer_error(c, "me", HERD_ERR_BAD_INPUT, "no");
	json_decref(herd_command_to_json(a));
	herd_command_free(a);
	herd_command_free(c);
	return 0;
}
