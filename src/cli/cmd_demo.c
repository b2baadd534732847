/* herd demo — interim: until nodes exist, shows how a sample job over a sample text is
 * split into six fragments with their context windows. A real swarm demo replaces it. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "proto.h"

static const char sample_text[] =
    "The swarm starts with a single node. It loads a model, opens a port and announces "
    "itself in the distributed hash table, so that others can find it.\n\n"
    "A second node joins a minute later. It bootstraps from the first, reads the "
    "capability records under the shared key, and learns which models its neighbour "
    "serves. Neither node is in charge: any of them can coordinate a job.\n\n"
    "A client sends a long document to one of them. That node becomes the coordinator: "
    "it cuts the text into fragments at paragraph and sentence boundaries, gives each "
    "fragment some context from both sides, and sends the pieces to whichever nodes "
    "are idle. Results come back in any order.\n\n"
    "When a node stalls, its fragment is sent elsewhere. When the last result arrives, "
    "the coordinator puts the outputs back in order and answers the client, who never "
    "learns how many machines did the work.";

int herd_cmd_demo(int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "usage: herd demo\n");
		return 2;
	}
	struct herd_command *req =
	    herd_command_new(HERD_COMMAND_EXECUTE_TASK, "demo-1", "client", "");
	herd_command_with_param(req, "task_type", json_string("llama_inference"));
	herd_command_with_param(req, "model_name", json_string("stories260K"));
	herd_command_with_param(req, "input_data", json_string(sample_text));
	herd_command_with_param(req, "max_tokens", json_integer(64));
	herd_command_with_param(req, "temperature", json_integer(0));
	herd_command_with_param(req, "num_fragments", json_integer(6));
	herd_command_with_param(req, "context_overlap", json_integer(64));
	struct herd_job *job;
	if (herd_job_from_request(req, NULL, &job)) {
		fprintf(stderr, "herd demo: %s\n", herd_last_error());
		herd_command_free(req);
		return 1;
	}
	json_t *doc = json_pack("{s:o, s:o, s:[]}", "request", herd_command_to_json(req), "job",
				herd_job_to_json(job), "fragments");
	json_t *frags = json_object_get(doc, "fragments");
	for (int i = 0; i < job->n_fragments; i++) {
		struct herd_command *c = herd_fragment_to_command(&job->fragments[i], "demo", "");
		json_array_append_new(frags, herd_command_to_json(c));
		herd_command_free(c);
	}
	json_dumpf(doc, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	json_decref(doc);
	herd_job_free(job);
	herd_command_free(req);
	return 0;
}
