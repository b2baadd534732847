/* submit.h — the client side of a job, shared by `herd submit` and `herd demo`: send a
 * llama_inference envelope to a node as a streamed job, draw progress on stderr, and return
 * the node's final answer. */
#ifndef HERD_CLI_SUBMIT_H
#define HERD_CLI_SUBMIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "base.h"

struct herd_submit_opts {
	bool progress;	   /* redraw a progress line on stderr (fragments, tokens/s, elapsed) */
	bool print_stream; /* print each fragment's output to out as soon as every earlier
			      fragment has been printed (text: the combined output, in order) */
	FILE *out;	   /* for print_stream; NULL = stdout */
	/* optional: told of every fragment event (the event's data; borrowed) */
	void (*on_fragment)(const json_t *fragment, void *ud);
	void *ud;
};

/* POSTs envelope (an EXECUTE_TASK command; params.stream is set to true on a copy) to
 * base_url + "/v1/command" and follows the Server-Sent Events. On HERD_OK *answer is the
 * final envelope (status "success" or "error"; caller owns it). A request the node refused
 * (4xx) also gives HERD_OK with its error envelope. Other failures (cannot connect, stream
 * cut) return the error with herd_last_error() naming the URL. */
enum herd_err herd_submit_job(const char *base_url, const json_t *envelope,
			      const struct herd_submit_opts *opts, json_t **answer);

#endif
