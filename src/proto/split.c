/* split — cutting an input into fragments: text by bytes on natural boundaries, arrays by
 * item counts, and the context windows around each text fragment.
 *
 * The one invariant: spans tile the input exactly and none is empty. The cut for fragment
 * i is searched near the ideal ceil(remaining / fragments_left) bytes, but never so late
 * that a later fragment would be left without a character. */
#include "proto.h"

#include <stdlib.h>

static bool is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

enum level { CUT_CHAR, CUT_WORD, CUT_SENTENCE, CUT_PARAGRAPH };

/* How good a cut before byte p is (p a character boundary, 0 < p < len). */
static enum level cut_level(const unsigned char *t, size_t p)
{
	if (!is_space(t[p - 1]) || is_space(t[p]))
		return CUT_CHAR;
	/* p starts a word after a run of whitespace: look at that run and what precedes it */
	size_t q = p, newlines = 0;
	while (q > 0 && is_space(t[q - 1])) {
		newlines += t[q - 1] == '\n';
		q--;
	}
	if (newlines >= 2)
		return CUT_PARAGRAPH;
	if (q > 0) {
		unsigned char c = t[q - 1];
		if ((c == '"' || c == '\'' || c == ')') && q > 1)
			c = t[q - 2];
		if (c == '.' || c == '!' || c == '?')
			return CUT_SENTENCE;
	}
	return CUT_WORD;
}

/* The best cut in [a, b] (character boundaries lo <= a <= b <= hi): the highest level,
 * then the closest to ideal. */
static size_t find_cut(const unsigned char *t, size_t a, size_t b, size_t ideal)
{
	size_t best = (size_t)-1, best_dist = 0;
	enum level best_level = CUT_CHAR;
	for (size_t p = a; p <= b; p++) {
		if (is_cont(t[p]))
			continue;
		enum level l = cut_level(t, p);
		size_t dist = p > ideal ? p - ideal : ideal - p;
		if (best == (size_t)-1 || l > best_level || (l == best_level && dist < best_dist)) {
			best = p;
			best_dist = dist;
			best_level = l;
		}
	}
	HERD_ASSERT(best != (size_t)-1); /* [a, b] always holds a character boundary */
	return best;
}

enum herd_err herd_split_text(const char *text, size_t len, int n, size_t overlap,
			      struct herd_piece **out, int *n_out)
{
	*out = NULL;
	*n_out = 0;
	if (n < 1 || n > HERD_MAX_FRAGMENTS)
		return herd_fail(HERD_ERR_BAD_INPUT, "params.num_fragments: must be 1..%d, got %d",
				 HERD_MAX_FRAGMENTS, n);
	if (len == 0)
		return herd_fail(HERD_ERR_BAD_INPUT, "params.input_data: must not be empty");
	if (len > HERD_MAX_INPUT_BYTES)
		return herd_fail(HERD_ERR_LIMIT,
				 "params.input_data: must be at most %u bytes, got %zu",
				 HERD_MAX_INPUT_BYTES, len);
	size_t bad;
	if (!herd_utf8_valid(text, len, &bad))
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "params.input_data: must be valid UTF-8, bad byte at offset %zu",
				 bad);
	const unsigned char *t = (const unsigned char *)text;

	size_t chars = herd_utf8_count(text, len);
	int m = chars < (size_t)n ? (int)chars : n;

	/* tail[j]: where the last j characters begin, so that a cut leaving r fragments after
	 * it is at most tail[r] */
	size_t *tail = herd_xmalloc((size_t)m * sizeof *tail);
	tail[0] = len;
	for (int j = 1; j < m; j++) {
		size_t q = tail[j - 1] - 1;
		while (is_cont(t[q]))
			q--;
		tail[j] = q;
	}

	struct herd_piece *pieces = herd_xcalloc((size_t)m, sizeof *pieces);
	size_t pos = 0;
	for (int i = 0; i < m; i++) {
		int r = m - i; /* fragments left, this one included */
		size_t end = len;
		if (r > 1) {
			size_t lo = pos + 1, hi = tail[r - 1];
			while (is_cont(t[lo]))
				lo++;
			size_t chunk = (len - pos + (size_t)r - 1) / (size_t)r;
			size_t ideal = pos + chunk;
			if (ideal < lo)
				ideal = lo;
			if (ideal > hi)
				ideal = hi;
			size_t radius = chunk / 4 > 3 ? chunk / 4 : 3;
			size_t a = ideal - lo > radius ? ideal - radius : lo;
			size_t b = hi - ideal > radius ? ideal + radius : hi;
			end = find_cut(t, a, b, ideal);
		}
		pieces[i].span_start = pos;
		pieces[i].span_end = end;
		pos = end;
	}
	HERD_ASSERT(pos == len);
	free(tail);

	for (int i = 0; i < m; i++) {
		struct herd_piece *pc = &pieces[i];
		size_t ws = pc->span_start > overlap ? pc->span_start - overlap : 0;
		while (ws < pc->span_start && is_cont(t[ws]))
			ws++;
		size_t we = len - pc->span_end > overlap ? pc->span_end + overlap : len;
		while (we > pc->span_end && we < len && is_cont(t[we]))
			we--;
		pc->window_start = ws;
		pc->window_end = we;
	}
	*out = pieces;
	*n_out = m;
	return HERD_OK;
}

enum herd_err herd_split_array(size_t items, int n, struct herd_piece **out, int *n_out)
{
	*out = NULL;
	*n_out = 0;
	if (n < 1 || n > HERD_MAX_FRAGMENTS)
		return herd_fail(HERD_ERR_BAD_INPUT, "params.num_fragments: must be 1..%d, got %d",
				 HERD_MAX_FRAGMENTS, n);
	if (items == 0)
		return herd_fail(HERD_ERR_BAD_INPUT, "params.input_data: array must not be empty");
	if (items > HERD_MAX_ARRAY_ITEMS)
		return herd_fail(HERD_ERR_LIMIT,
				 "params.input_data: must have at most %d items, got %zu",
				 HERD_MAX_ARRAY_ITEMS, items);
	size_t per = (items + (size_t)n - 1) / (size_t)n;
	int m = (int)((items + per - 1) / per);
	struct herd_piece *pieces = herd_xcalloc((size_t)m, sizeof *pieces);
	for (int i = 0; i < m; i++) {
		size_t s = (size_t)i * per, e = s + per < items ? s + per : items;
		pieces[i] = (struct herd_piece){s, e, s, e};
	}
	*out = pieces;
	*n_out = m;
	return HERD_OK;
}
