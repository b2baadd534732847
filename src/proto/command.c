/* command — the seed's Command envelope: request, success answer, error answer.
 *
 * Unknown top-level fields are ignored (newer peers may add some); known ones are checked
 * for type and size, so a handler can trust every field of a parsed command. */
#include "proto.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ID_BYTES 256 /* request_id, from, to: ids and node names, never text */

static const char *const names[HERD_COMMAND_COUNT_] = {
    [HERD_COMMAND_EXECUTE_TASK] = "EXECUTE_TASK", [HERD_COMMAND_FIND_NODES] = "FIND_NODES",
    [HERD_COMMAND_NODE_INFO] = "NODE_INFO",	  [HERD_COMMAND_PING] = "PING",
    [HERD_COMMAND_JOB_STATUS] = "JOB_STATUS",	  [HERD_COMMAND_CANCEL_JOB] = "CANCEL_JOB",
};

const char *herd_command_name(enum herd_command_kind kind)
{
	if ((unsigned)kind >= HERD_COMMAND_COUNT_)
		return NULL;
	return names[kind];
}

static atomic_uint_fast64_t next_request = 1;

struct herd_command *herd_command_new(enum herd_command_kind kind, const char *request_id,
				      const char *from, const char *to)
{
	HERD_ASSERT((unsigned)kind < HERD_COMMAND_COUNT_);
	struct herd_command *c = herd_xcalloc(1, sizeof *c);
	c->kind = kind;
	if (request_id) {
		c->request_id = herd_xstrdup(request_id);
	} else {
		char buf[64];
		uint64_t n = atomic_fetch_add(&next_request, 1);
		snprintf(buf, sizeof buf, "req-%llx-%llx", (unsigned long long)time(NULL),
			 (unsigned long long)n);
		c->request_id = herd_xstrdup(buf);
	}
	c->from = herd_xstrdup(from ? from : "");
	c->to = herd_xstrdup(to ? to : "");
	c->timestamp = (int64_t)time(NULL);
	c->params = json_object();
	HERD_ASSERT(c->params);
	c->status = HERD_COMMAND_REQUEST;
	return c;
}

void herd_command_free(struct herd_command *c)
{
	if (!c)
		return;
	free(c->request_id);
	free(c->from);
	free(c->to);
	json_decref(c->params);
	json_decref(c->result);
	free(c->error_code);
	free(c->error_message);
	free(c);
}

enum herd_err herd_command_with_param(struct herd_command *c, const char *key, json_t *value)
{
	if (!value)
		return herd_fail(HERD_ERR_BAD_INPUT, "params.%s: value is missing", key);
	if (json_object_set_new(c->params, key, value))
		return herd_fail(HERD_ERR_BAD_INPUT, "params: key is not valid UTF-8");
	return HERD_OK;
}

json_t *herd_command_to_json(const struct herd_command *c)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:O}", "command", names[c->kind],
			      "request_id", c->request_id, "from", c->from, "to", c->to,
			      "timestamp", (json_int_t)c->timestamp, "params", c->params);
	HERD_ASSERT(j);
	if (c->status == HERD_COMMAND_SUCCESS) {
		json_object_set_new(j, "status", json_string("success"));
		json_object_set(j, "result", c->result ? c->result : json_null());
	} else if (c->status == HERD_COMMAND_ERROR) {
		json_object_set_new(j, "status", json_string("error"));
		json_object_set_new(
		    j, "error",
		    json_pack("{s:s, s:s}", "code", c->error_code, "message", c->error_message));
	}
	return j;
}

/* A string field of at most `max` bytes: *out = a copy, or `dflt` copied when absent. */
static enum herd_err get_string(const json_t *obj, const char *field, const char *dflt, size_t max,
				char **out)
{
	json_t *v = json_object_get(obj, field);
	if (!v || json_is_null(v)) {
		if (!dflt)
			return herd_fail(HERD_ERR_BAD_INPUT, "%s: required", field);
		*out = herd_xstrdup(dflt);
		return HERD_OK;
	}
	if (!json_is_string(v))
		return herd_fail(HERD_ERR_BAD_INPUT, "%s: must be a string", field);
	if (json_string_length(v) > max)
		return herd_fail(HERD_ERR_BAD_INPUT, "%s: must be at most %zu bytes, got %zu",
				 field, max, json_string_length(v));
	if (strlen(json_string_value(v)) != json_string_length(v))
		return herd_fail(HERD_ERR_BAD_INPUT, "%s: must not contain NUL characters", field);
	*out = herd_xstrdup(json_string_value(v));
	return HERD_OK;
}

enum herd_err herd_command_from_json(const json_t *j, struct herd_command **out)
{
	*out = NULL;
	if (!json_is_object(j))
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "request: must be a JSON object (a Command envelope)");
	json_t *name = json_object_get(j, "command");
	if (!name)
		return herd_fail(HERD_ERR_BAD_INPUT, "command: required");
	if (!json_is_string(name))
		return herd_fail(HERD_ERR_BAD_INPUT, "command: must be a string");
	int kind = -1;
	for (int k = 0; k < HERD_COMMAND_COUNT_; k++)
		if (!strcmp(json_string_value(name), names[k]))
			kind = k;
	if (kind < 0)
		return herd_fail(
		    HERD_ERR_BAD_INPUT,
		    "command: must be one of EXECUTE_TASK, FIND_NODES, NODE_INFO, PING, "
		    "JOB_STATUS, CANCEL_JOB, got \"%.64s\"",
		    json_string_value(name));

	struct herd_command *c = herd_xcalloc(1, sizeof *c);
	c->kind = (enum herd_command_kind)kind;
	enum herd_err err;
	if ((err = get_string(j, "request_id", NULL, MAX_ID_BYTES, &c->request_id)) ||
	    (err = get_string(j, "from", "", MAX_ID_BYTES, &c->from)) ||
	    (err = get_string(j, "to", "", MAX_ID_BYTES, &c->to)))
		goto out;
	if (!c->request_id[0]) {
		err = herd_fail(HERD_ERR_BAD_INPUT, "request_id: must not be empty");
		goto out;
	}

	/* Unix seconds; the seed's peers may send a real (Python's time.time()). */
	json_t *ts = json_object_get(j, "timestamp");
	if (ts && !json_is_null(ts)) {
		if (!json_is_number(ts) || json_number_value(ts) < 0 ||
		    json_number_value(ts) > 1e15) {
			err = herd_fail(HERD_ERR_BAD_INPUT,
					"timestamp: must be a number of Unix seconds >= 0");
			goto out;
		}
		c->timestamp = json_is_integer(ts) ? (int64_t)json_integer_value(ts)
						   : (int64_t)json_real_value(ts);
	}

	json_t *params = json_object_get(j, "params");
	if (!params || json_is_null(params)) {
		c->params = json_object();
	} else if (!json_is_object(params)) {
		err = herd_fail(HERD_ERR_BAD_INPUT, "params: must be an object");
		goto out;
	} else {
		c->params = json_deep_copy(params);
	}
	HERD_ASSERT(c->params);

	json_t *status = json_object_get(j, "status");
	if (!status || json_is_null(status)) {
		c->status = HERD_COMMAND_REQUEST;
	} else if (json_is_string(status) && !strcmp(json_string_value(status), "success")) {
		c->status = HERD_COMMAND_SUCCESS;
		json_t *res = json_object_get(j, "result");
		c->result = res ? json_deep_copy(res) : json_null();
	} else if (json_is_string(status) && !strcmp(json_string_value(status), "error")) {
		c->status = HERD_COMMAND_ERROR;
		json_t *e = json_object_get(j, "error");
		if (!json_is_object(e)) {
			err =
			    herd_fail(HERD_ERR_BAD_INPUT, "error: must be an object {\"code\", "
							  "\"message\"} when status is \"error\"");
			goto out;
		}
		if ((err = get_string(e, "code", NULL, MAX_ID_BYTES, &c->error_code)) ||
		    (err =
			 get_string(e, "message", "", HERD_MAX_REQUEST_BYTES, &c->error_message))) {
			/* name the nesting in the message */
			char msg[512];
			snprintf(msg, sizeof msg, "error.%s", herd_last_error());
			err = herd_fail(err, "%s", msg);
			goto out;
		}
	} else {
		err = herd_fail(HERD_ERR_BAD_INPUT, "status: must be \"success\" or \"error\"");
		goto out;
	}
	*out = c;
	return HERD_OK;
out:
	herd_command_free(c);
	return err;
}

enum herd_err herd_command_parse(const char *buf, size_t len, struct herd_command **out)
{
	*out = NULL;
	json_t *j;
	enum herd_err err = herd_json_parse(buf, len, &j);
	if (err)
		return err;
	err = herd_command_from_json(j, out);
	json_decref(j);
	return err;
}

static struct herd_command *answer(const struct herd_command *req, const char *from)
{
	struct herd_command *a = herd_command_new(req->kind, req->request_id, from, req->from);
	return a;
}

struct herd_command *herd_command_answer_success(const struct herd_command *req, const char *from,
						 json_t *result)
{
	struct herd_command *a = answer(req, from);
	a->status = HERD_COMMAND_SUCCESS;
	a->result = result ? result : json_null();
	return a;
}

struct herd_command *herd_command_answer_error(const struct herd_command *req, const char *from,
					       enum herd_err err, const char *message)
{
	struct herd_command *a = answer(req, from);
	a->status = HERD_COMMAND_ERROR;
	a->error_code = herd_xstrdup(herd_errcode(err));
	a->error_message = herd_xstrdup(message ? message : herd_strerror(err));
	return a;
}
