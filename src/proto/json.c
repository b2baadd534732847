/* json — parsing untrusted JSON bytes and checking UTF-8, the first gate of every request.
 *
 * jansson already refuses malformed JSON, invalid UTF-8 and nesting over 2048; herd adds
 * its own, much lower, depth limit, measured without recursion so any value is safe. */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

enum herd_err herd_json_parse(const char *buf, size_t len, json_t **out)
{
	*out = NULL;
	if (len > HERD_MAX_REQUEST_BYTES)
		return herd_fail(HERD_ERR_LIMIT, "request: must be at most %u bytes, got %zu",
				 HERD_MAX_REQUEST_BYTES, len);
	if (!buf || len == 0)
		return herd_fail(HERD_ERR_BAD_INPUT, "request: malformed JSON: empty body");
	json_error_t e;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
	if (!j)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "request: malformed JSON at line %d, column %d: %s", e.line,
				 e.column, e.text);
	size_t depth = herd_json_depth(j);
	if (depth > HERD_MAX_JSON_DEPTH) {
		json_decref(j);
		return herd_fail(HERD_ERR_LIMIT,
				 "request: JSON nesting must be at most %d deep, got %zu",
				 HERD_MAX_JSON_DEPTH, depth);
	}
	*out = j;
	return HERD_OK;
}

struct frame {
	const json_t *v;
	size_t depth;
};

size_t herd_json_depth(const json_t *j)
{
	if (!j)
		return 0;
	size_t cap = 64, n = 0, max = 0;
	struct frame *stack = herd_xmalloc(cap * sizeof *stack);
	stack[n++] = (struct frame){j, 1};
	while (n > 0) {
		struct frame f = stack[--n];
		if (f.depth > max)
			max = f.depth;
		size_t kids = json_is_array(f.v)    ? json_array_size(f.v)
			      : json_is_object(f.v) ? json_object_size(f.v)
						    : 0;
		if (kids == 0)
			continue;
		if (n + kids > cap) {
			while (n + kids > cap)
				cap *= 2;
			stack = herd_xrealloc(stack, cap * sizeof *stack);
		}
		if (json_is_array(f.v)) {
			for (size_t i = 0; i < kids; i++)
				stack[n++] = (struct frame){json_array_get(f.v, i), f.depth + 1};
		} else {
			const char *key;
			json_t *val;
			json_object_foreach((json_t *)f.v, key, val) stack[n++] =
			    (struct frame){val, f.depth + 1};
		}
	}
	free(stack);
	return max;
}

/* Length of the UTF-8 sequence starting at s[0] (≤ left bytes), 0 when it is not valid. */
static size_t seq_len(const unsigned char *s, size_t left)
{
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	size_t n;
	unsigned min;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2, min = 0x80;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3, min = 0x800;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4, min = 0x10000;
	else
		return 0;
	if (left < n)
		return 0;
	unsigned cp = c & (0x7F >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

bool herd_utf8_valid(const char *s, size_t len, size_t *bad_at)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		size_t n = seq_len(u + i, len - i);
		if (n == 0) {
			if (bad_at)
				*bad_at = i;
			return false;
		}
		i += n;
	}
	return true;
}

size_t herd_utf8_count(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xC0) != 0x80;
	return n;
}
