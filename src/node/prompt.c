/* prompt — what the model reads: fragment templates and chat templates. Pure functions.
 * The one thing to know: chat formats are recognised by telltale substrings of the model's
 * tokenizer.chat_template (a Jinja program we do not run); anything else gets a plain
 * "role: content" transcript. Special tokens are written as text (the tokenizer does not
 * parse them), which small models follow well enough. */
#include <stdlib.h>
#include <string.h>

#include "node_int.h"

char *herd_prompt_render(const char *tmpl, const char *fragment, size_t fragment_len,
			 const char *before, size_t before_len, const char *after,
			 size_t after_len, size_t *out_len)
{
	struct herd_buf b = {0};
	herd_buf_add(&b, "", 0);
	static const char *const names[] = {"{fragment}", "{context_before}", "{context_after}"};
	const char *vals[] = {fragment, before, after};
	size_t lens[] = {fragment_len, before_len, after_len};
	const char *s = tmpl;
	while (*s) {
		int hit = -1;
		if (*s == '{')
			for (int k = 0; k < 3; k++)
				if (!strncmp(s, names[k], strlen(names[k])))
					hit = k;
		if (hit >= 0) {
			if (lens[hit])
				herd_buf_add(&b, vals[hit], lens[hit]);
			s += strlen(names[hit]);
		} else {
			const char *next = strchr(s + 1, '{');
			size_t n = next ? (size_t)(next - s) : strlen(s);
			herd_buf_add(&b, s, n);
			s += n;
		}
	}
	*out_len = b.len;
	return b.p;
}

enum herd_chat_format herd_chat_detect(const char *t)
{
	if (!t)
		return HERD_CHAT_PLAIN;
	if (strstr(t, "<|start_header_id|>"))
		return HERD_CHAT_LLAMA3;
	if (strstr(t, "<|im_start|>"))
		return HERD_CHAT_CHATML;
	if (strstr(t, "<|user|>"))
		return HERD_CHAT_ZEPHYR;
	if (strstr(t, "[INST]"))
		return HERD_CHAT_LLAMA2;
	return HERD_CHAT_PLAIN;
}

const char *herd_chat_format_name(enum herd_chat_format f)
{
	switch (f) {
	case HERD_CHAT_CHATML:
		return "chatml";
	case HERD_CHAT_LLAMA2:
		return "llama2";
	case HERD_CHAT_LLAMA3:
		return "llama3";
	case HERD_CHAT_ZEPHYR:
		return "zephyr";
	default:
		return "plain";
	}
}

enum herd_err herd_chat_render(enum herd_chat_format f, const json_t *messages, char **out,
			       size_t *out_len)
{
	*out = NULL;
	if (!json_is_array(messages))
		return herd_fail(HERD_ERR_BAD_INPUT, "messages: must be an array of objects");
	size_t n = json_array_size(messages);
	if (n < 1 || n > HERD_MAX_CHAT_MESSAGES)
		return herd_fail(HERD_ERR_BAD_INPUT, "messages: must hold 1..%d messages, got %zu",
				 HERD_MAX_CHAT_MESSAGES, n);
	for (size_t i = 0; i < n; i++) {
		const json_t *m = json_array_get(messages, i);
		if (!json_is_object(m))
			return herd_fail(HERD_ERR_BAD_INPUT, "messages[%zu]: must be an object", i);
		const char *role = json_string_value(json_object_get(m, "role"));
		if (!role || (strcmp(role, "system") && strcmp(role, "user") &&
			      strcmp(role, "assistant")))
			return herd_fail(HERD_ERR_BAD_INPUT,
					 "messages[%zu].role: must be \"system\", \"user\" or "
					 "\"assistant\"",
					 i);
		const json_t *c = json_object_get(m, "content");
		if (!json_is_string(c))
			return herd_fail(HERD_ERR_BAD_INPUT, "messages[%zu].content: must be a string",
					 i);
		if (strlen(json_string_value(c)) != json_string_length(c))
			return herd_fail(HERD_ERR_BAD_INPUT,
					 "messages[%zu].content: must not contain NUL", i);
	}
	struct herd_buf b = {0};
	herd_buf_add(&b, "", 0);
	bool sys_open = false; /* llama2: a system message goes inside the next [INST] */
	for (size_t i = 0; i < n; i++) {
		const json_t *m = json_array_get(messages, i);
		const char *role = json_string_value(json_object_get(m, "role"));
		const char *content = json_string_value(json_object_get(m, "content"));
		switch (f) {
		case HERD_CHAT_CHATML:
			herd_buf_puts(&b, "<|im_start|>");
			herd_buf_puts(&b, role);
			herd_buf_puts(&b, "\n");
			herd_buf_puts(&b, content);
			herd_buf_puts(&b, "<|im_end|>\n");
			break;
		case HERD_CHAT_LLAMA3:
			herd_buf_puts(&b, "<|start_header_id|>");
			herd_buf_puts(&b, role);
			herd_buf_puts(&b, "<|end_header_id|>\n\n");
			herd_buf_puts(&b, content);
			herd_buf_puts(&b, "<|eot_id|>");
			break;
		case HERD_CHAT_ZEPHYR:
			herd_buf_puts(&b, "<|");
			herd_buf_puts(&b, role);
			herd_buf_puts(&b, "|>\n");
			herd_buf_puts(&b, content);
			herd_buf_puts(&b, "</s>\n");
			break;
		case HERD_CHAT_LLAMA2:
			if (!strcmp(role, "system")) {
				herd_buf_puts(&b, "[INST] <<SYS>>\n");
				herd_buf_puts(&b, content);
				herd_buf_puts(&b, "\n<</SYS>>\n\n");
				sys_open = true;
			} else if (!strcmp(role, "user")) {
				herd_buf_puts(&b, sys_open ? "" : "[INST] ");
				herd_buf_puts(&b, content);
				herd_buf_puts(&b, " [/INST]");
				sys_open = false;
			} else {
				herd_buf_puts(&b, " ");
				herd_buf_puts(&b, content);
				herd_buf_puts(&b, " </s>");
			}
			break;
		default:
			herd_buf_puts(&b, role);
			herd_buf_puts(&b, ": ");
			herd_buf_puts(&b, content);
			herd_buf_puts(&b, "\n");
		}
	}
	switch (f) {
	case HERD_CHAT_CHATML:
		herd_buf_puts(&b, "<|im_start|>assistant\n");
		break;
	case HERD_CHAT_LLAMA3:
		herd_buf_puts(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
		break;
	case HERD_CHAT_ZEPHYR:
		herd_buf_puts(&b, "<|assistant|>\n");
		break;
	case HERD_CHAT_LLAMA2:
		if (sys_open)
			herd_buf_puts(&b, " [/INST]");
		break;
	default:
		herd_buf_puts(&b, "assistant:");
	}
	*out = b.p;
	*out_len = b.len;
	return HERD_OK;
}
