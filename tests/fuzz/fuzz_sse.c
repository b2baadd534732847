/* fuzz_sse — the incremental Server-Sent Events parser on arbitrary bytes fed in arbitrary
 * chunks. The events must not depend on where the chunks were cut: the whole input in one
 * feed and the same input cut at fuzzer-chosen points must give the same events. The first
 * bytes choose the cuts and whether a callback asks to stop. */
#include "fuzz.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "net.h"

struct log {
	char *buf; /* the events, each as event\0data\0id\0 */
	size_t len, cap;
	int n, stop_after; /* stop_after < 0: never */
};

static void add(struct log *l, const char *s)
{
	size_t n = strlen(s) + 1;
	if (l->len + n > l->cap) {
		l->cap = (l->len + n) * 2;
		l->buf = realloc(l->buf, l->cap);
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static bool on_event(const char *event, const char *data, const char *id, void *ud)
{
	struct log *l = ud;
	FUZZ_CHECK(event && data && id, "NULL field");
	FUZZ_CHECK(event[0] != 0, "empty event name (should be \"message\")");
	add(l, event);
	add(l, data);
	add(l, id);
	l->n++;
	return l->stop_after < 0 || l->n < l->stop_after;
}

/* Feeds data cut at the given lengths (cycled; 0 = all the rest); returns feed's last answer. */
static bool run(const uint8_t *data, size_t size, const uint8_t *cuts, size_t ncuts, struct log *l)
{
	struct herd_sse_parser *p = herd_sse_parser_new(on_event, l);
	bool ok = true;
	size_t off = 0, k = 0;
	while (off < size && ok) {
		size_t n = ncuts ? cuts[k++ % ncuts] : 0;
		if (n == 0 || n > size - off)
			n = size - off;
		ok = herd_sse_parser_feed(p, (const char *)data + off, n);
		off += n;
	}
	herd_sse_parser_free(p);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t ncuts = data[0] % 8;
	int stop_after = data[1] % 4 == 0 ? (data[1] >> 2) % 4 + 1 : -1;
	if (size < 2 + ncuts)
		return 0;
	const uint8_t *cuts = data + 2;
	data += 2 + ncuts;
	size -= 2 + ncuts;

	struct log whole = {.stop_after = stop_after}, cut = {.stop_after = stop_after};
	bool ok_whole = run(data, size, NULL, 0, &whole);
	bool ok_cut = run(data, size, cuts, ncuts, &cut);
	FUZZ_CHECK(whole.n == cut.n, "%d events in one feed, %d when cut", whole.n, cut.n);
	FUZZ_CHECK(whole.len == cut.len &&
		       (whole.len == 0 || memcmp(whole.buf, cut.buf, whole.len) == 0),
		   "events differ when the input is cut");
	FUZZ_CHECK(ok_whole == ok_cut, "feed answered %d in one piece, %d when cut", ok_whole,
		   ok_cut);
	if (stop_after > 0)
		FUZZ_CHECK(whole.n <= stop_after, "%d events after asking to stop at %d", whole.n,
			   stop_after);
	free(whole.buf);
	free(cut.buf);
	return 0;
}
