/* node tests: the pure parts (fragment prompt templates, chat format detection and
 * rendering) with expected strings written out by hand, and one in-process node on
 * 127.0.0.1 (real model, real HTTP) answering PING, NODE_INFO and a two-fragment job. */
#include <stdlib.h>
#include <string.h>

#include "herd_test.h"

#include "net.h"
#include "node.h"
#include "node_int.h"

#define STORIES HERD_SHARED("models/stories260K.gguf")

static void template_default(void **state)
{
	(void)state;
	size_t n;
	char *p = herd_prompt_render(HERD_DEFAULT_PROMPT_TEMPLATE, "frag", 4, "before ", 7,
				     " after", 6, &n);
	assert_string_equal(p, "before frag");
	assert_int_equal(n, 11);
	free(p);
}

static void template_all_fields_and_other_braces(void **state)
{
	(void)state;
	size_t n;
	const char *t = "{x} [{context_before}|{fragment}|{context_after}] {fragment}{";
	char *p = herd_prompt_render(t, "F", 1, "B", 1, "A", 1, &n);
	assert_string_equal(p, "{x} [B|F|A] F{");
	assert_int_equal(n, strlen("{x} [B|F|A] F{"));
	free(p);
	/* empty values and a template with no fields */
	p = herd_prompt_render("Summarize: {fragment}", "", 0, NULL, 0, NULL, 0, &n);
	assert_string_equal(p, "Summarize: ");
	free(p);
	p = herd_prompt_render("", "F", 1, "B", 1, "A", 1, &n);
	assert_string_equal(p, "");
	assert_int_equal(n, 0);
	free(p);
}

static void chat_detect(void **state)
{
	(void)state;
	assert_int_equal(herd_chat_detect(NULL), HERD_CHAT_PLAIN);
	assert_int_equal(herd_chat_detect("{% for m in messages %}<|im_start|>{{ m.role }}"),
			 HERD_CHAT_CHATML);
	assert_int_equal(herd_chat_detect("{{ bos_token }}[INST] {{ m.content }} [/INST]"),
			 HERD_CHAT_LLAMA2);
	assert_int_equal(herd_chat_detect("<|start_header_id|>{{ role }}<|end_header_id|>"),
			 HERD_CHAT_LLAMA3);
	assert_int_equal(herd_chat_detect("{% if m.role == 'user' %}<|user|>\n"), HERD_CHAT_ZEPHYR);
	assert_int_equal(herd_chat_detect("{{ messages }}"), HERD_CHAT_PLAIN);
}

static char *render(enum herd_chat_format f, const char *messages_json)
{
	json_t *m = json_loads(messages_json, JSON_ALLOW_NUL, NULL);
	assert_non_null(m);
	char *out = NULL;
	size_t n = 0;
	enum herd_err e = herd_chat_render(f, m, &out, &n);
	json_decref(m);
	if (e)
		return NULL;
	assert_int_equal(n, strlen(out));
	return out;
}

static void chat_render_formats(void **state)
{
	(void)state;
	const char *msgs = "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
			   "{\"role\":\"user\",\"content\":\"Hi\"}]";
	char *p = render(HERD_CHAT_CHATML, msgs);
	assert_string_equal(p, "<|im_start|>system\nBe brief.<|im_end|>\n"
			       "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
	free(p);
	p = render(HERD_CHAT_LLAMA3, msgs);
	assert_non_null(strstr(p, "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"));
	assert_non_null(strstr(p, "<|start_header_id|>assistant<|end_header_id|>\n\n"));
	free(p);
	p = render(HERD_CHAT_LLAMA2, msgs);
	assert_non_null(strstr(p, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]"));
	free(p);
	p = render(HERD_CHAT_ZEPHYR, msgs);
	assert_non_null(strstr(p, "<|user|>\nHi</s>\n"));
	assert_non_null(strstr(p, "<|assistant|>\n"));
	free(p);
	p = render(HERD_CHAT_PLAIN, msgs);
	assert_non_null(strstr(p, "system: Be brief.\n"));
	assert_non_null(strstr(p, "user: Hi\n"));
	assert_non_null(strstr(p, "assistant:"));
	free(p);
}

static void chat_render_bad_input(void **state)
{
	(void)state;
	assert_null(render(HERD_CHAT_CHATML, "[]"));
	assert_non_null(strstr(herd_last_error(), "messages"));
	assert_null(render(HERD_CHAT_CHATML, "[{\"role\":\"user\",\"content\":\"a\"},"
					     "{\"role\":\"robot\",\"content\":\"b\"}]"));
	assert_non_null(strstr(herd_last_error(), "messages[1].role"));
	assert_null(render(HERD_CHAT_CHATML, "[{\"role\":\"user\",\"content\":3}]"));
	assert_non_null(strstr(herd_last_error(), "messages[0].content"));
	assert_null(render(HERD_CHAT_CHATML, "[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]"));
	assert_non_null(strstr(herd_last_error(), "NUL"));
	assert_null(render(HERD_CHAT_PLAIN, "{\"role\":\"user\"}"));
}

static json_t *command(const char *url, const char *body, long *status)
{
	json_t *req = json_loads(body, 0, NULL), *reply = NULL;
	assert_non_null(req);
	char u[256];
	snprintf(u, sizeof u, "%s/v1/command", url);
	assert_int_equal(herd_http_post_json(u, req, 30000, status, &reply), HERD_OK);
	json_decref(req);
	return reply;
}

static void node_in_process(void **state)
{
	(void)state;
	struct herd_node_params p = herd_node_default_params();
	struct herd_node_model m = {"tiny", STORIES};
	p.models = &m;
	p.n_models = 1;
	p.threads = 1;
	p.slots = 2;
	struct herd_node *n = NULL;
	assert_int_equal(herd_node_start(&p, &n), HERD_OK);
	assert_true(herd_node_port(n) > 0);
	assert_int_equal(strlen(herd_node_id(n)), 32);
	const char *url = herd_node_url(n);
	long status;
	json_t *r = command(url,
			    "{\"command\":\"PING\",\"request_id\":\"p1\",\"from\":\"t\","
			    "\"timestamp\":1,\"params\":{}}",
			    &status);
	assert_int_equal(status, 200);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "success");
	assert_string_equal(json_string_value(json_object_get(r, "request_id")), "p1");
	json_decref(r);
	r = command(url,
		    "{\"command\":\"NODE_INFO\",\"request_id\":\"i1\",\"from\":\"t\","
		    "\"timestamp\":1,\"params\":{}}",
		    &status);
	json_t *res = json_object_get(r, "result");
	assert_string_equal(json_string_value(json_object_get(res, "node_id")), herd_node_id(n));
	assert_int_equal(json_integer_value(json_object_get(res, "slots")), 2);
	json_t *models = json_object_get(res, "models");
	assert_int_equal(json_array_size(models), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(models, 0), "name")),
			    "tiny");
	json_decref(r);
	r = command(url,
		    "{\"command\":\"EXECUTE_TASK\",\"request_id\":\"j1\",\"from\":\"t\","
		    "\"timestamp\":1,\"params\":{\"model_name\":\"tiny\",\"input_data\":"
		    "\"Once upon a time.\\n\\nThe end.\",\"num_fragments\":2,\"max_tokens\":4,"
		    "\"temperature\":0}}",
		    &status);
	assert_int_equal(status, 200);
	res = json_object_get(r, "result");
	assert_int_equal(json_integer_value(json_object_get(res, "fragments_processed")), 2);
	assert_int_equal(json_integer_value(json_object_get(res, "total_tokens")), 8);
	json_decref(r);
	r = command(url,
		    "{\"command\":\"EXECUTE_TASK\",\"request_id\":\"j2\",\"from\":\"t\","
		    "\"timestamp\":1,\"params\":{\"model_name\":\"other\",\"input_data\":\"x\"}}",
		    &status);
	assert_int_equal(status, 404);
	assert_non_null(strstr(
	    json_string_value(json_object_get(json_object_get(r, "error"), "message")), "other"));
	json_decref(r);
	herd_node_free(n);
}

static void node_bad_params(void **state)
{
	(void)state;
	struct herd_node_params p = herd_node_default_params();
	struct herd_node_model m = {"tiny", "/nonexistent/model.gguf"};
	p.models = &m;
	p.n_models = 1;
	struct herd_node *n = NULL;
	assert_int_not_equal(herd_node_start(&p, &n), HERD_OK);
	assert_null(n);
	assert_non_null(strstr(herd_last_error(), "models[0]"));
	m.path = STORIES;
	p.slots = 100000;
	assert_int_equal(herd_node_start(&p, &n), HERD_ERR_BAD_INPUT);
	assert_non_null(strstr(herd_last_error(), "slots"));
}

HERD_TEST_MAIN(((const struct CMUnitTest[]){
    cmocka_unit_test(template_default),
    cmocka_unit_test(template_all_fields_and_other_braces),
    cmocka_unit_test(chat_detect),
    cmocka_unit_test(chat_render_formats),
    cmocka_unit_test(chat_render_bad_input),
    cmocka_unit_test(node_in_process),
    cmocka_unit_test(node_bad_params),
}))
