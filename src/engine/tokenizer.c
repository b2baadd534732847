/* tokenizer — text to token ids and back, as llama.cpp does it, for the two tokenizer kinds of
 * Llama-family GGUF files:
 *   - "llama": SentencePiece-style. A space is put in front of the text, spaces become "▁"
 *     (U+2581), then neighbouring pieces are merged greedily, the pair whose merged text is the
 *     vocabulary entry with the highest score first (ties: leftmost). What is left and not in the
 *     vocabulary falls back to byte tokens "<0xNN>".
 *   - "gpt2": byte-level BPE. A pre-tokenizer (tokenizer.ggml.pre) cuts the text into words; each
 *     word's bytes are written as GPT-2's printable stand-in characters, then merged by the rank of
 *     the pair in tokenizer.ggml.merges (lowest rank first, ties: leftmost).
 * The one thing to know: a merge step never rescans the text. Candidate pairs sit in a heap and a
 * doubly linked list of symbols; a popped pair whose sides changed since it was pushed is stale
 * and skipped. That keeps a 1 MB text well under a second.
 *
 * Everything read from the file is validated at load time: the tokenizer never trusts it later. */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "limits.h"
#include "unicode_tables.h"

/* token types as stored in tokenizer.ggml.token_type (llama.cpp's numbering) */
enum tok_type {
	TOK_UNDEFINED = 0,
	TOK_NORMAL = 1,
	TOK_UNKNOWN = 2,
	TOK_CONTROL = 3,
	TOK_USER_DEFINED = 4,
	TOK_UNUSED = 5,
	TOK_BYTE = 6,
};

enum vocab_kind { VOCAB_SPM, VOCAB_BPE };

/* pre-tokenizers of byte-level BPE vocabularies */
enum pre_kind {
	PRE_GPT2,      /* the classic GPT-2 regex */
	PRE_DIGITS,    /* every digit alone, then GPT-2 (starcoder, refact, …) */
	PRE_LLAMA3,    /* Llama 3 */
	PRE_FALCON,    /* punctuation runs, GPT-2, then ASCII digit triples */
	PRE_DEEPSEEK_CODER,
};

struct token {
	const char *text; /* in the GGUF mapping, not NUL-terminated */
	uint32_t len;
	float score;
	uint8_t type;
	uint32_t piece_off, piece_len; /* output bytes, in vocab->pieces */
};

struct merge {
	const char *left, *right; /* in the GGUF mapping */
	uint32_t left_len, right_len;
};

struct herd_vocab {
	enum vocab_kind kind;
	enum pre_kind pre;
	int32_t n_tokens;
	struct token *tokens;
	int32_t *tok_slots; /* open addressing: token id or -1; text → id */
	uint32_t tok_mask;
	int32_t n_merges;
	struct merge *merges;
	int32_t *merge_slots; /* open addressing: merge rank or -1; (left, right) → rank */
	uint32_t merge_mask;
	int32_t byte_token[256]; /* SPM: id of "<0xNN>" (or of the byte itself), -1 if none */
	int32_t bos, eos, unk;
	bool add_bos, add_space_prefix, ignore_merges;
	int32_t n_user;   /* user-defined tokens: always matched in the text, longest first */
	int32_t *user_ids;
	char *pieces; /* what each token prints as, back to back (NUL-terminated each) */
};

/* ---------------------------------------------------------------- hashing */

static uint64_t hash_bytes(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ull; /* FNV-1a */
	}
	return h;
}

#define HASH_SEED 0xcbf29ce484222325ull

static uint32_t slots_for(int64_t n)
{
	uint32_t cap = 16;
	while (cap < 2 * (uint64_t)n)
		cap <<= 1;
	return cap;
}

static int32_t token_find(const struct herd_vocab *v, const char *s, size_t n)
{
	uint32_t i = (uint32_t)hash_bytes(HASH_SEED, s, n) & v->tok_mask;
	for (;; i = (i + 1) & v->tok_mask) {
		int32_t id = v->tok_slots[i];
		if (id < 0)
			return -1;
		const struct token *t = &v->tokens[id];
		if (t->len == n && memcmp(t->text, s, n) == 0)
			return id;
	}
}

/* A later duplicate replaces an earlier one, as llama.cpp's token_to_id map does. */
static void token_insert(struct herd_vocab *v, int32_t id)
{
	const struct token *t = &v->tokens[id];
	uint32_t i = (uint32_t)hash_bytes(HASH_SEED, t->text, t->len) & v->tok_mask;
	for (;; i = (i + 1) & v->tok_mask) {
		int32_t old = v->tok_slots[i];
		if (old < 0 || (v->tokens[old].len == t->len && memcmp(v->tokens[old].text, t->text, t->len) == 0)) {
			v->tok_slots[i] = id;
			return;
		}
	}
}

static uint64_t merge_hash(const char *l, size_t ln, const char *r, size_t rn)
{
	uint64_t h = hash_bytes(HASH_SEED, l, ln);
	h = (h ^ 0xff) * 0x100000001b3ull; /* separates "ab"+"c" from "a"+"bc" */
	return hash_bytes(h, r, rn);
}

static int32_t merge_rank(const struct herd_vocab *v, const char *l, size_t ln, const char *r, size_t rn)
{
	if (v->n_merges == 0)
		return -1;
	uint32_t i = (uint32_t)merge_hash(l, ln, r, rn) & v->merge_mask;
	for (;; i = (i + 1) & v->merge_mask) {
		int32_t k = v->merge_slots[i];
		if (k < 0)
			return -1;
		const struct merge *m = &v->merges[k];
		if (m->left_len == ln && m->right_len == rn && memcmp(m->left, l, ln) == 0 &&
		    memcmp(m->right, r, rn) == 0)
			return k;
	}
}

/* The first of equal pairs keeps its rank, as llama.cpp's bpe_ranks.emplace does. */
static void merge_insert(struct herd_vocab *v, int32_t k)
{
	const struct merge *m = &v->merges[k];
	uint32_t i = (uint32_t)merge_hash(m->left, m->left_len, m->right, m->right_len) & v->merge_mask;
	for (;; i = (i + 1) & v->merge_mask) {
		int32_t old = v->merge_slots[i];
		if (old < 0) {
			v->merge_slots[i] = k;
			return;
		}
		const struct merge *o = &v->merges[old];
		if (o->left_len == m->left_len && o->right_len == m->right_len &&
		    memcmp(o->left, m->left, m->left_len) == 0 && memcmp(o->right, m->right, m->right_len) == 0)
			return;
	}
}

/* ---------------------------------------------------------------- UTF-8 and Unicode */

/* Length of the UTF-8 sequence a lead byte announces (1 for a stray continuation byte), as
 * llama.cpp's unicode_len_utf8 counts it. */
static size_t utf8_len(unsigned char c)
{
	static const uint8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
	return lens[c >> 4];
}

/* Decodes one code point at s[*i]; an invalid or truncated sequence gives U+FFFD and advances
 * one byte (what llama.cpp's BPE path does). */
static uint32_t utf8_decode(const unsigned char *s, size_t n, size_t *i)
{
	unsigned char c = s[*i];
	size_t len;
	uint32_t cp;
	if (c < 0x80) {
		*i += 1;
		return c;
	} else if ((c & 0xe0) == 0xc0) {
		len = 2, cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4, cp = c & 0x07;
	} else {
		*i += 1;
		return 0xfffd;
	}
	if (*i + len > n) {
		*i += 1;
		return 0xfffd;
	}
	for (size_t k = 1; k < len; k++) {
		if ((s[*i + k] & 0xc0) != 0x80) {
			*i += 1;
			return 0xfffd;
		}
		cp = (cp << 6) | (s[*i + k] & 0x3f);
	}
	*i += len;
	return cp;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	} else if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | ((cp >> 18) & 0x07));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static unsigned ucp_flags(uint32_t cp)
{
	size_t lo = 0, hi = HERD_UCP_NRANGES;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cp < herd_ucp_ranges[mid].first)
			hi = mid;
		else if (cp > herd_ucp_ranges[mid].last)
			lo = mid + 1;
		else
			return herd_ucp_ranges[mid].flags;
	}
	return 0;
}

/* GPT-2's byte ↔ printable character map: bytes that are printable Latin-1 stand for
 * themselves, the other 68 are given the code points 256, 257, … in byte order. */
static uint32_t gpt2_byte_cp[256];
static int16_t gpt2_cp_byte[324]; /* code point → byte, -1 if it stands for none */

static void gpt2_map_build(void)
{
	uint32_t next = 256;
	for (int b = 0; b < 324; b++)
		gpt2_cp_byte[b] = -1;
	for (int b = 0; b < 256; b++) {
		bool self = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
		gpt2_byte_cp[b] = self ? (uint32_t)b : next++;
		gpt2_cp_byte[gpt2_byte_cp[b]] = (int16_t)b;
	}
}

static pthread_once_t gpt2_map_once = PTHREAD_ONCE_INIT;

/* ---------------------------------------------------------------- the merge queue */

struct bigram {
	double key; /* larger first: the score (SPM) or minus the rank (BPE) */
	int32_t left, right;
	uint32_t size; /* bytes of the merged text when pushed; differs once a side has changed */
};

struct heap {
	struct bigram *a;
	size_t n, cap;
};

static bool before(const struct bigram *x, const struct bigram *y)
{
	return x->key > y->key || (x->key == y->key && x->left < y->left);
}

static void heap_push(struct heap *h, struct bigram b)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 256;
		h->a = herd_xrealloc(h->a, h->cap * sizeof *h->a);
	}
	size_t i = h->n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!before(&b, &h->a[p]))
			break;
		h->a[i] = h->a[p];
		i = p;
	}
	h->a[i] = b;
}

static struct bigram heap_pop(struct heap *h)
{
	struct bigram top = h->a[0], last = h->a[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && before(&h->a[c + 1], &h->a[c]))
			c++;
		if (!before(&h->a[c], &last))
			break;
		h->a[i] = h->a[c];
		i = c;
	}
	if (h->n > 0)
		h->a[i] = last;
	return top;
}

/* A piece of text being merged: bytes [off, off+n) of the working buffer, linked to its
 * neighbours; n = 0 once merged into its left neighbour. */
struct symbol {
	uint32_t off, n;
	int32_t prev, next;
};

/* Growable id output. */
struct ids {
	int32_t *a;
	size_t n, cap;
};

static void ids_push(struct ids *o, int32_t id)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? 2 * o->cap : 64;
		o->a = herd_xrealloc(o->a, o->cap * sizeof *o->a);
	}
	o->a[o->n++] = id;
}

/* Splits buf[0..len) into UTF-8 characters as symbols; returns their number. */
static int32_t split_chars(const char *buf, size_t len, struct symbol *sym)
{
	int32_t n = 0;
	for (size_t off = 0; off < len;) {
		size_t cl = utf8_len((unsigned char)buf[off]);
		if (cl > len - off)
			cl = len - off;
		sym[n] = (struct symbol){(uint32_t)off, (uint32_t)cl, n - 1, off + cl == len ? -1 : n + 1};
		off += cl;
		n++;
	}
	return n;
}

/* ---------------------------------------------------------------- SentencePiece-style */

static void spm_try_pair(const struct herd_vocab *v, const char *buf, const struct symbol *sym, struct heap *h,
			 int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return;
	uint32_t size = sym[l].n + sym[r].n;
	int32_t id = token_find(v, buf + sym[l].off, size);
	if (id < 0)
		return;
	heap_push(h, (struct bigram){v->tokens[id].score, l, r, size});
}

static enum herd_err spm_tokenize(const struct herd_vocab *v, const char *text, size_t len, bool prefix,
				  struct ids *out)
{
	if (len == 0)
		return HERD_OK; /* llama.cpp adds no space prefix to an empty text */
	/* the text with the prefix space, every space written as U+2581 (3 bytes) */
	size_t cap = 3 * (len + 1);
	char *buf = herd_xmalloc(cap);
	size_t bl = 0;
	if (prefix) {
		memcpy(buf, "\xe2\x96\x81", 3);
		bl = 3;
	}
	for (size_t i = 0; i < len; i++) {
		if (text[i] == ' ') {
			memcpy(buf + bl, "\xe2\x96\x81", 3);
			bl += 3;
		} else {
			buf[bl++] = text[i];
		}
	}
	struct symbol *sym = herd_xmalloc(bl * sizeof *sym);
	int32_t n = split_chars(buf, bl, sym);
	struct heap h = {0};
	for (int32_t i = 1; i < n; i++)
		spm_try_pair(v, buf, sym, &h, i - 1, i);
	while (h.n > 0) {
		struct bigram b = heap_pop(&h);
		struct symbol *l = &sym[b.left], *r = &sym[b.right];
		if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
			continue; /* stale: one side was merged since */
		l->n += r->n;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0)
			sym[r->next].prev = b.left;
		spm_try_pair(v, buf, sym, &h, l->prev, b.left);
		spm_try_pair(v, buf, sym, &h, b.left, l->next);
	}
	enum herd_err err = HERD_OK;
	for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = sym[i].next) {
		int32_t id = token_find(v, buf + sym[i].off, sym[i].n);
		if (id >= 0) {
			ids_push(out, id);
			continue;
		}
		/* not in the vocabulary: one byte token per byte */
		for (uint32_t k = 0; k < sym[i].n; k++) {
			unsigned char c = (unsigned char)buf[sym[i].off + k];
			int32_t bid = v->byte_token[c] >= 0 ? v->byte_token[c] : v->unk;
			if (bid < 0) {
				err = herd_fail(HERD_ERR_UNSUPPORTED,
						"tokenize: byte 0x%02x is not in the vocabulary and it has no "
						"byte or unknown token",
						c);
				goto out;
			}
			ids_push(out, bid);
		}
	}
out:
	free(h.a);
	free(sym);
	free(buf);
	return err;
}

/* ---------------------------------------------------------------- pre-tokenizers (BPE) */

/* Word boundaries over code points: each word is cps[start .. start+len). */
struct words {
	uint32_t *len;
	size_t n, cap;
};

static void words_push(struct words *w, size_t len)
{
	if (len == 0)
		return;
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 256;
		w->len = herd_xrealloc(w->len, w->cap * sizeof *w->len);
	}
	w->len[w->n++] = (uint32_t)len;
}

#define OUT_OF_RANGE 0xffffffffu

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * over cps[a, b): the text outside the range does not exist for the regex (lookahead included). */
static void pre_gpt2(const uint32_t *cps, size_t a, size_t b, struct words *w)
{
#define CP(i) ((i) < b ? cps[i] : OUT_OF_RANGE)
#define FL(i) ((i) < b ? ucp_flags(cps[i]) : 0u)
	const unsigned LN = HERD_UCP_LETTER | HERD_UCP_NUMBER;
	size_t pos = a, prev = a;
	while (pos < b) {
		uint32_t c = cps[pos];
		if (c == '\'' && pos + 1 < b) {
			uint32_t c1 = cps[pos + 1];
			if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
				pos += 2;
				words_push(w, pos - prev), prev = pos;
				continue;
			}
			if (pos + 2 < b) {
				uint32_t c2 = cps[pos + 2];
				if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
					pos += 3;
					words_push(w, pos - prev), prev = pos;
					continue;
				}
			}
		}
		/* the class of the character after an optional leading space */
		size_t q = pos + (c == ' ');
		unsigned f = (c == ' ') ? FL(pos + 1) : ucp_flags(c);
		bool in_range = q < b;
		if (in_range && (f & HERD_UCP_LETTER)) {
			while (q < b && (ucp_flags(cps[q]) & HERD_UCP_LETTER))
				q++;
		} else if (in_range && (f & HERD_UCP_NUMBER)) {
			while (q < b && (ucp_flags(cps[q]) & HERD_UCP_NUMBER))
				q++;
		} else if (in_range && !(f & (LN | HERD_UCP_SPACE))) {
			while (q < b && !(ucp_flags(cps[q]) & (LN | HERD_UCP_SPACE)))
				q++;
		} else {
			size_t ns = 0;
			while (FL(pos + ns) & HERD_UCP_SPACE)
				ns++;
			if (ns > 1 && CP(pos + ns) != OUT_OF_RANGE)
				q = pos + ns - 1; /* \s+(?!\S): leave the last space to the next word */
			else if (ns > 0)
				q = pos + ns;
			else
				q = pos + 1; /* cannot happen: every character is in some class */
		}
		pos = q;
		words_push(w, pos - prev), prev = pos;
	}
#undef CP
#undef FL
}

/* \p{N} first (every number character a word of its own), then GPT-2 on what lies between. */
static void pre_digits(const uint32_t *cps, size_t a, size_t b, struct words *w)
{
	size_t start = a;
	for (size_t i = a; i < b; i++) {
		if (ucp_flags(cps[i]) & HERD_UCP_NUMBER) {
			pre_gpt2(cps, start, i, w);
			words_push(w, 1);
			start = i + 1;
		}
	}
	pre_gpt2(cps, start, b, w);
}

/* One regex of a llama.cpp pre-tokenizer list: the length of its match at pos (0: none). */
typedef size_t match_fn(const uint32_t *cps, size_t pos, size_t end);

/* Applies a regex to every word as std::regex_iterator does in llama.cpp: each match becomes a
 * word, and so does each stretch of text between matches. */
static void split_stage(const uint32_t *cps, struct words *w, match_fn *match)
{
	struct words out = {0};
	size_t a = 0;
	for (size_t k = 0; k < w->n; a += w->len[k], k++) {
		size_t b = a + w->len[k], gap = a;
		for (size_t p = a; p < b;) {
			size_t m = match(cps, p, b);
			if (m == 0) {
				p++;
				continue;
			}
			words_push(&out, p - gap);
			words_push(&out, m);
			p += m;
			gap = p;
		}
		words_push(&out, b - gap);
	}
	free(w->len);
	*w = out;
}

/* GPT-2's regex as a stage (within each word) */
static void gpt2_stage(const uint32_t *cps, struct words *w)
{
	struct words out = {0};
	size_t a = 0;
	for (size_t k = 0; k < w->n; a += w->len[k], k++)
		pre_gpt2(cps, a, a + w->len[k], &out);
	free(w->len);
	*w = out;
}

static size_t run_of(const uint32_t *cps, size_t pos, size_t end, unsigned flag)
{
	size_t q = pos;
	while (q < end && (ucp_flags(cps[q]) & flag))
		q++;
	return q - pos;
}

/* [\p{P}\$\+<=>\^~\|`]+ */
static size_t m_falcon_punct(const uint32_t *cps, size_t pos, size_t end)
{
	size_t q = pos;
	while (q < end && ((ucp_flags(cps[q]) & HERD_UCP_PUNCT) || (cps[q] < 128 && strchr("$+<=>^~|`", (int)cps[q]))))
		q++;
	return q - pos;
}

/* [0-9][0-9][0-9] */
static size_t m_digits3(const uint32_t *cps, size_t pos, size_t end)
{
	for (size_t k = 0; k < 3; k++)
		if (pos + k >= end || cps[pos + k] < '0' || cps[pos + k] > '9')
			return 0;
	return 3;
}

/* [\r\n] */
static size_t m_newline(const uint32_t *cps, size_t pos, size_t end)
{
	return cps[pos] == '\r' || cps[pos] == '\n';
}

/* \s?X+ for a class X */
static size_t space_then_run(const uint32_t *cps, size_t pos, size_t end, unsigned flag)
{
	if ((ucp_flags(cps[pos]) & HERD_UCP_SPACE) && pos + 1 < end && (ucp_flags(cps[pos + 1]) & flag))
		return 1 + run_of(cps, pos + 1, end, flag);
	return run_of(cps, pos, end, flag);
}

static size_t m_space_letters(const uint32_t *cps, size_t pos, size_t end)
{
	return space_then_run(cps, pos, end, HERD_UCP_LETTER);
}

static size_t m_space_punct(const uint32_t *cps, size_t pos, size_t end)
{
	return space_then_run(cps, pos, end, HERD_UCP_PUNCT);
}

/* [一-龥ࠀ-一가-퟿]+ : U+0800..U+9FA5 and U+AC00..U+D7FF */
static size_t m_cjk(const uint32_t *cps, size_t pos, size_t end)
{
	size_t q = pos;
	while (q < end && ((cps[q] >= 0x800 && cps[q] <= 0x9fa5) || (cps[q] >= 0xac00 && cps[q] <= 0xd7ff)))
		q++;
	return q - pos;
}

/* \p{N} */
static size_t m_number(const uint32_t *cps, size_t pos, size_t end)
{
	return (ucp_flags(cps[pos]) & HERD_UCP_NUMBER) != 0;
}

static uint32_t lower_ascii(uint32_t c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* Llama 3:
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static void pre_llama3(const uint32_t *cps, size_t a, size_t b, struct words *w)
{
#define CP(i) ((i) < b ? cps[i] : OUT_OF_RANGE)
#define FL(i) ((i) < b ? ucp_flags(cps[i]) : 0u)
	const unsigned LN = HERD_UCP_LETTER | HERD_UCP_NUMBER;
	size_t pos = a, prev = a;
	while (pos < b) {
		uint32_t c = cps[pos];
		unsigned f = ucp_flags(c);
		if (c == '\'' && pos + 1 < b) {
			uint32_t c1 = lower_ascii(cps[pos + 1]);
			if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
				pos += 2;
				words_push(w, pos - prev), prev = pos;
				continue;
			}
			if (pos + 2 < b) {
				uint32_t c2 = lower_ascii(cps[pos + 2]);
				if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
					pos += 3;
					words_push(w, pos - prev), prev = pos;
					continue;
				}
			}
		}
		/* [^\r\n\p{L}\p{N}]?\p{L}+ */
		if (!(c == '\r' || c == '\n' || (f & HERD_UCP_NUMBER))) {
			size_t q = (f & HERD_UCP_LETTER) ? pos : pos + 1;
			if (FL(q) & HERD_UCP_LETTER) {
				while (FL(q) & HERD_UCP_LETTER)
					q++;
				pos = q;
				words_push(w, pos - prev), prev = pos;
				continue;
			}
		}
		/* \p{N}{1,3} */
		if (f & HERD_UCP_NUMBER) {
			size_t k = 0;
			while (k < 3 && (FL(pos + k) & HERD_UCP_NUMBER))
				k++;
			pos += k;
			words_push(w, pos - prev), prev = pos;
			continue;
		}
		/* ' '?[^\s\p{L}\p{N}]+[\r\n]* */
		{
			size_t q = pos + (c == ' ');
			unsigned g = FL(q);
			if (q < b && !(g & (LN | HERD_UCP_SPACE))) {
				while (q < b && !(FL(q) & (LN | HERD_UCP_SPACE)))
					q++;
				while (CP(q) == '\r' || CP(q) == '\n')
					q++;
				pos = q;
				words_push(w, pos - prev), prev = pos;
				continue;
			}
		}
		size_t ns = 0, last_nl = 0;
		while (FL(pos + ns) & HERD_UCP_SPACE) {
			uint32_t d = cps[pos + ns];
			if (d == '\r' || d == '\n')
				last_nl = pos + ns + 1;
			ns++;
		}
		/* \s*[\r\n]+ */
		if (last_nl != 0) {
			pos = last_nl;
			words_push(w, pos - prev), prev = pos;
			continue;
		}
		/* \s+(?!\S) */
		if (ns > 1 && CP(pos + ns) != OUT_OF_RANGE) {
			pos += ns - 1;
			words_push(w, pos - prev), prev = pos;
			continue;
		}
		/* \s+ */
		pos += ns > 0 ? ns : 1;
		words_push(w, pos - prev), prev = pos;
	}
#undef CP
#undef FL
}

/* ---------------------------------------------------------------- byte-level BPE */

static void bpe_try_pair(const struct herd_vocab *v, const char *buf, const struct symbol *sym, struct heap *h,
			 int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return;
	int32_t rank = merge_rank(v, buf + sym[l].off, sym[l].n, buf + sym[r].off, sym[r].n);
	if (rank < 0)
		return;
	heap_push(h, (struct bigram){-(double)rank, l, r, sym[l].n + sym[r].n});
}

static enum herd_err bpe_tokenize(const struct herd_vocab *v, const char *text, size_t len, struct ids *out)
{
	if (len == 0)
		return HERD_OK;
	const unsigned char *s = (const unsigned char *)text;
	uint32_t *cps = herd_xmalloc(len * sizeof *cps);
	size_t ncp = 0;
	for (size_t i = 0; i < len;)
		cps[ncp++] = utf8_decode(s, len, &i);
	struct words w = {0};
	switch (v->pre) {
	case PRE_GPT2: pre_gpt2(cps, 0, ncp, &w); break;
	case PRE_DIGITS: pre_digits(cps, 0, ncp, &w); break;
	case PRE_LLAMA3: pre_llama3(cps, 0, ncp, &w); break;
	case PRE_FALCON:
		words_push(&w, ncp);
		split_stage(cps, &w, m_falcon_punct);
		gpt2_stage(cps, &w);
		split_stage(cps, &w, m_digits3);
		break;
	case PRE_DEEPSEEK_CODER:
		words_push(&w, ncp);
		split_stage(cps, &w, m_newline);
		split_stage(cps, &w, m_space_letters);
		split_stage(cps, &w, m_space_punct);
		split_stage(cps, &w, m_cjk);
		split_stage(cps, &w, m_number);
		break;
	}
	/* the longest word, byte-encoded: 4 UTF-8 bytes per code point, 2 bytes per stand-in */
	size_t maxw = 0;
	for (size_t k = 0; k < w.n; k++)
		maxw = w.len[k] > maxw ? w.len[k] : maxw;
	char *buf = herd_xmalloc(8 * maxw + 1);
	struct symbol *sym = herd_xmalloc((8 * maxw + 1) * sizeof *sym);
	struct heap h = {0};
	size_t c0 = 0;
	for (size_t k = 0; k < w.n; c0 += w.len[k], k++) {
		size_t bl = 0;
		for (size_t c = c0; c < c0 + w.len[k]; c++) {
			char u[4];
			size_t ul = utf8_encode(cps[c], u);
			for (size_t j = 0; j < ul; j++)
				bl += utf8_encode(gpt2_byte_cp[(unsigned char)u[j]], buf + bl);
		}
		if (v->ignore_merges) {
			int32_t id = token_find(v, buf, bl);
			if (id >= 0) {
				ids_push(out, id);
				continue;
			}
		}
		int32_t n = split_chars(buf, bl, sym);
		h.n = 0;
		for (int32_t i = 1; i < n; i++)
			bpe_try_pair(v, buf, sym, &h, i - 1, i);
		while (h.n > 0) {
			struct bigram b = heap_pop(&h);
			struct symbol *l = &sym[b.left], *r = &sym[b.right];
			if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
				continue;
			l->n += r->n;
			r->n = 0;
			l->next = r->next;
			if (r->next >= 0)
				sym[r->next].prev = b.left;
			bpe_try_pair(v, buf, sym, &h, l->prev, b.left);
			bpe_try_pair(v, buf, sym, &h, b.left, l->next);
		}
		for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = sym[i].next) {
			int32_t id = token_find(v, buf + sym[i].off, sym[i].n);
			if (id >= 0) {
				ids_push(out, id);
				continue;
			}
			/* llama.cpp keeps whichever single bytes happen to be tokens and drops the rest */
			for (uint32_t j = 0; j < sym[i].n; j++) {
				int32_t bid = token_find(v, buf + sym[i].off + j, 1);
				if (bid >= 0)
					ids_push(out, bid);
			}
		}
	}
	free(h.a);
	free(sym);
	free(buf);
	free(w.len);
	free(cps);
	return HERD_OK;
}

/* ---------------------------------------------------------------- user-defined tokens */

/* A run of text to tokenize (id -1) or one user-defined token found in it. */
struct frag {
	size_t off, len;
	int32_t id;
};

/* Cuts the text at every occurrence of a user-defined token. Like llama.cpp (which does this
 * even when special tokens are not parsed), the longest token is cut out everywhere first, then
 * the next longest from what is left, and so on. Returns the number of fragments. */
static size_t partition(const struct herd_vocab *v, const char *text, size_t len, struct frag **out)
{
	size_t n = len > 0, cap = 8;
	struct frag *f = herd_xmalloc(cap * sizeof *f);
	f[0] = (struct frag){0, len, -1};
	bool present[256] = {false};
	if (v->n_user > 0)
		for (size_t i = 0; i < len; i++)
			present[(unsigned char)text[i]] = true;
	for (int32_t u = 0; u < v->n_user && n > 0; u++) {
		const struct token *t = &v->tokens[v->user_ids[u]];
		if (t->len == 0 || t->len > len || !present[(unsigned char)t->text[0]])
			continue;
		bool found = false;
		for (size_t i = 0; i < n && !found; i++)
			found = f[i].id < 0 && memmem(text + f[i].off, f[i].len, t->text, t->len) != NULL;
		if (!found)
			continue;
		size_t m = 0, mcap = 2 * n + 8;
		struct frag *g = herd_xmalloc(mcap * sizeof *g);
		for (size_t i = 0; i < n; i++) {
			size_t off = f[i].off, end = f[i].off + f[i].len;
			const char *hit;
			while (f[i].id < 0 && off < end && (hit = memmem(text + off, end - off, t->text, t->len))) {
				size_t at = (size_t)(hit - text);
				if (m + 2 >= mcap)
					g = herd_xrealloc(g, (mcap *= 2) * sizeof *g);
				if (at > off)
					g[m++] = (struct frag){off, at - off, -1};
				g[m++] = (struct frag){at, t->len, v->user_ids[u]};
				off = at + t->len;
			}
			if (m + 1 >= mcap)
				g = herd_xrealloc(g, (mcap *= 2) * sizeof *g);
			if (f[i].id >= 0)
				g[m++] = f[i];
			else if (off < end)
				g[m++] = (struct frag){off, end - off, -1};
		}
		free(f);
		f = g;
		n = m;
	}
	*out = f;
	return n;
}

/* ---------------------------------------------------------------- public: tokenize */

enum herd_err herd_tokenize(const struct herd_vocab *v, const char *text, size_t len, bool add_bos,
			    int32_t **ids, size_t *n_ids)
{
	*ids = NULL;
	*n_ids = 0;
	if (!text && len > 0)
		return herd_fail(HERD_ERR_BAD_INPUT, "tokenize: text is NULL with length %zu", len);
	if (len > HERD_TOKENIZE_MAX_BYTES)
		return herd_fail(HERD_ERR_LIMIT, "tokenize: text is %zu bytes, the limit is %u", len,
				 HERD_TOKENIZE_MAX_BYTES);
	struct ids out = {0};
	if (add_bos && v->bos >= 0)
		ids_push(&out, v->bos);
	struct frag *frags;
	size_t nfrags = partition(v, text, len, &frags);
	enum herd_err err = HERD_OK;
	/* SentencePiece: the space prefix goes in front of the text and after every user-defined
	 * token, as llama.cpp does it */
	bool prev_token = true;
	for (size_t i = 0; i < nfrags && err == HERD_OK; i++) {
		if (frags[i].id >= 0) {
			ids_push(&out, frags[i].id);
			prev_token = true;
			continue;
		}
		const char *t = text + frags[i].off;
		err = v->kind == VOCAB_SPM ? spm_tokenize(v, t, frags[i].len, v->add_space_prefix && prev_token, &out)
					   : bpe_tokenize(v, t, frags[i].len, &out);
		prev_token = false;
	}
	free(frags);
	if (err != HERD_OK) {
		free(out.a);
		return err;
	}
	if (out.n == 0) {
		free(out.a);
		out.a = herd_xmalloc(sizeof *out.a); /* a valid pointer even for no ids */
	}
	*ids = out.a;
	*n_ids = out.n;
	return HERD_OK;
}

const char *herd_token_text(const struct herd_vocab *v, int32_t id, size_t *len)
{
	if (id < 0 || id >= v->n_tokens) {
		if (len)
			*len = 0;
		return "";
	}
	if (len)
		*len = v->tokens[id].piece_len;
	return v->pieces + v->tokens[id].piece_off;
}

enum herd_err herd_detokenize(const struct herd_vocab *v, const int32_t *ids, size_t n_ids, char **text,
			      size_t *len)
{
	*text = NULL;
	*len = 0;
	size_t total = 0;
	for (size_t i = 0; i < n_ids; i++) {
		if (ids[i] < 0 || ids[i] >= v->n_tokens)
			return herd_fail(HERD_ERR_BAD_INPUT, "detokenize: ids[%zu] = %d is not in 0..%d", i, ids[i],
					 v->n_tokens - 1);
		total += v->tokens[ids[i]].piece_len;
	}
	char *out = herd_xmalloc(total + 1);
	size_t o = 0;
	/* The space the SentencePiece prefix added comes back as the first piece's leading space.
	 * llama.cpp strips it from the very first token; herd strips it from the first token that
	 * prints anything, so that a leading BOS (which prints nothing) does not keep it. */
	bool strip = v->add_space_prefix;
	for (size_t i = 0; i < n_ids; i++) {
		const struct token *t = &v->tokens[ids[i]];
		const char *p = v->pieces + t->piece_off;
		size_t pl = t->piece_len;
		if (strip && pl > 0) {
			if (p[0] == ' ')
				p++, pl--;
			strip = false;
		}
		memcpy(out + o, p, pl);
		o += pl;
	}
	out[o] = 0;
	*text = out;
	*len = o;
	return HERD_OK;
}

/* ---------------------------------------------------------------- loading */

int32_t herd_vocab_size(const struct herd_vocab *v)
{
	return v->n_tokens;
}

int32_t herd_vocab_bos(const struct herd_vocab *v)
{
	return v->bos;
}

int32_t herd_vocab_eos(const struct herd_vocab *v)
{
	return v->eos;
}

bool herd_vocab_add_bos(const struct herd_vocab *v)
{
	return v->add_bos && v->bos >= 0;
}

void herd_vocab_free(struct herd_vocab *v)
{
	if (!v)
		return;
	free(v->tokens);
	free(v->tok_slots);
	free(v->merges);
	free(v->merge_slots);
	free(v->pieces);
	free(v->user_ids);
	free(v);
}

static bool str_is(struct herd_gguf_str s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* An optional token id key: absent, -1 or 0xFFFFFFFF (llama.cpp's "unset") give -1. */
static enum herd_err load_id(const struct herd_gguf *g, const char *key, int32_t n, int32_t dflt, int32_t *out)
{
	*out = dflt;
	int64_t k = herd_gguf_find_kv(g, key);
	if (k < 0)
		return HERD_OK;
	int64_t id;
	if (!herd_gguf_kv_int(g, k, &id))
		return herd_fail(HERD_ERR_FORMAT, "%s: must be an integer token id, got a %s", key,
				 herd_gguf_vtype_name(herd_gguf_kv_type(g, k)));
	if (id == -1 || id == 0xffffffffll) {
		*out = -1;
		return HERD_OK;
	}
	if (id < 0 || id >= n)
		return herd_fail(HERD_ERR_FORMAT, "%s: token id must be in 0..%d, got %lld", key, n - 1,
				 (long long)id);
	*out = (int32_t)id;
	return HERD_OK;
}

static enum herd_err load_bool(const struct herd_gguf *g, const char *key, bool dflt, bool *out)
{
	*out = dflt;
	if (herd_gguf_find_kv(g, key) < 0)
		return HERD_OK;
	return herd_gguf_get_bool(g, key, out);
}

/* Finds an array key and checks its element type and (when n >= 0) its length. */
static enum herd_err load_array(const struct herd_gguf *g, const char *key, bool numeric, int64_t n,
				int64_t *index)
{
	int64_t k = herd_gguf_find_kv(g, key);
	*index = k;
	if (k < 0)
		return herd_fail(HERD_ERR_NOT_FOUND, "%s: missing", key);
	if (herd_gguf_kv_type(g, k) != HERD_GGUF_ARRAY)
		return herd_fail(HERD_ERR_FORMAT, "%s: must be an array, got a %s", key,
				 herd_gguf_vtype_name(herd_gguf_kv_type(g, k)));
	enum herd_gguf_vtype et = herd_gguf_arr_type(g, k);
	bool is_num = et != HERD_GGUF_STRING && et != HERD_GGUF_ARRAY && et != HERD_GGUF_BOOL;
	if (numeric ? !is_num : et != HERD_GGUF_STRING)
		return herd_fail(HERD_ERR_FORMAT, "%s: must be an array of %s, got an array of %s", key,
				 numeric ? "numbers" : "strings", herd_gguf_vtype_name(et));
	if (n >= 0 && herd_gguf_arr_len(g, k) != (uint64_t)n)
		return herd_fail(HERD_ERR_FORMAT, "%s: has %llu entries, tokenizer.ggml.tokens has %lld", key,
				 (unsigned long long)herd_gguf_arr_len(g, k), (long long)n);
	return HERD_OK;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Writes what token id prints as into pieces (grown as needed). */
static void make_piece(struct herd_vocab *v, int32_t id, char **pieces, size_t *used, size_t *cap)
{
	struct token *t = &v->tokens[id];
	size_t need = *used + 2 * (size_t)t->len + 2;
	if (need > *cap) {
		*cap = need > 2 * *cap ? need : 2 * *cap;
		*pieces = herd_xrealloc(*pieces, *cap);
	}
	char *p = *pieces + *used;
	size_t n = 0;
	switch (t->type) {
	case TOK_USER_DEFINED:
		memcpy(p, t->text, t->len);
		n = t->len;
		break;
	case TOK_BYTE:
		if (v->kind == VOCAB_SPM) {
			p[0] = (char)(hexval(t->text[3]) * 16 + hexval(t->text[4]));
			n = 1;
		}
		break;
	case TOK_NORMAL:
		if (v->kind == VOCAB_SPM) {
			for (uint32_t i = 0; i < t->len; i++) {
				if (i + 2 < t->len && memcmp(t->text + i, "\xe2\x96\x81", 3) == 0) {
					p[n++] = ' ';
					i += 2;
				} else {
					p[n++] = t->text[i];
				}
			}
		} else {
			/* every stand-in character back to its byte; others are kept as they are */
			const unsigned char *s = (const unsigned char *)t->text;
			for (size_t i = 0; i < t->len;) {
				size_t i0 = i;
				uint32_t cp = utf8_decode(s, t->len, &i);
				if (cp < 324 && gpt2_cp_byte[cp] >= 0) {
					p[n++] = (char)gpt2_cp_byte[cp];
				} else {
					memcpy(p + n, t->text + i0, i - i0);
					n += i - i0;
				}
			}
		}
		break;
	default: /* control, unknown, unused, undefined: print nothing */
		break;
	}
	p[n] = 0;
	t->piece_off = (uint32_t)*used;
	t->piece_len = (uint32_t)n;
	*used += n + 1;
}

static _Thread_local const struct herd_vocab *sort_vocab; /* qsort has no user pointer */

static int longer_first(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	uint32_t lx = sort_vocab->tokens[x].len, ly = sort_vocab->tokens[y].len;
	if (lx != ly)
		return lx > ly ? -1 : 1;
	return x < y ? -1 : x > y;
}

enum herd_err herd_vocab_load(const struct herd_gguf *g, struct herd_vocab **out)
{
	*out = NULL;
	enum herd_err err;
	struct herd_vocab *v = herd_xcalloc(1, sizeof *v);
	pthread_once(&gpt2_map_once, gpt2_map_build);

	struct herd_gguf_str model;
	if ((err = herd_gguf_get_str(g, "tokenizer.ggml.model", &model)) != HERD_OK)
		goto out;
	if (str_is(model, "llama")) {
		v->kind = VOCAB_SPM;
	} else if (str_is(model, "gpt2")) {
		v->kind = VOCAB_BPE;
	} else {
		err = herd_fail(HERD_ERR_UNSUPPORTED,
				"tokenizer.ggml.model: \"%.*s\" is not supported (herd knows \"llama\" and \"gpt2\")",
				(int)(model.len > 64 ? 64 : model.len), model.ptr);
		goto out;
	}

	int64_t kt, ks = -1, ky = -1, km;
	if ((err = load_array(g, "tokenizer.ggml.tokens", false, -1, &kt)) != HERD_OK)
		goto out;
	uint64_t n = herd_gguf_arr_len(g, kt);
	if (n == 0 || n > HERD_MAX_VOCAB) {
		err = herd_fail(HERD_ERR_FORMAT, "tokenizer.ggml.tokens: must have 1..%d entries, has %llu",
				HERD_MAX_VOCAB, (unsigned long long)n);
		goto out;
	}
	v->n_tokens = (int32_t)n;
	if (herd_gguf_find_kv(g, "tokenizer.ggml.scores") >= 0 &&
	    (err = load_array(g, "tokenizer.ggml.scores", true, (int64_t)n, &ks)) != HERD_OK)
		goto out;
	if (herd_gguf_find_kv(g, "tokenizer.ggml.token_type") >= 0 &&
	    (err = load_array(g, "tokenizer.ggml.token_type", true, (int64_t)n, &ky)) != HERD_OK)
		goto out;

	v->tokens = herd_xcalloc(n, sizeof *v->tokens);
	for (uint64_t i = 0; i < n; i++) {
		struct token *t = &v->tokens[i];
		struct herd_gguf_str s = herd_gguf_arr_str(g, kt, i);
		if (!s.ptr && s.len == 0)
			s.ptr = "";
		if (s.len > HERD_TOKEN_MAX_BYTES) {
			err = herd_fail(HERD_ERR_FORMAT, "tokenizer.ggml.tokens[%llu]: %llu bytes, the limit is %d",
					(unsigned long long)i, (unsigned long long)s.len, HERD_TOKEN_MAX_BYTES);
			goto out;
		}
		t->text = s.ptr;
		t->len = (uint32_t)s.len;
		t->type = TOK_NORMAL;
		if (ks >= 0) {
			double sc;
			if (!herd_gguf_arr_float(g, ks, i, &sc) || !isfinite(sc) || fabs(sc) > 3.4e38) {
				err = herd_fail(HERD_ERR_FORMAT, "tokenizer.ggml.scores[%llu]: must be a finite float",
						(unsigned long long)i);
				goto out;
			}
			t->score = (float)sc;
		}
		if (ky >= 0) {
			int64_t ty;
			if (!herd_gguf_arr_int(g, ky, i, &ty) || ty < TOK_UNDEFINED || ty > TOK_BYTE) {
				err = herd_fail(HERD_ERR_FORMAT, "tokenizer.ggml.token_type[%llu]: must be 0..6",
						(unsigned long long)i);
				goto out;
			}
			t->type = (uint8_t)ty;
		}
		if (t->type == TOK_BYTE && v->kind == VOCAB_SPM &&
		    (t->len != 6 || memcmp(t->text, "<0x", 3) != 0 || t->text[5] != '>' || hexval(t->text[3]) < 0 ||
		     hexval(t->text[4]) < 0)) {
			err = herd_fail(HERD_ERR_FORMAT,
					"tokenizer.ggml.tokens[%llu]: a byte token must read <0xNN>, got \"%.*s\"",
					(unsigned long long)i, (int)(t->len > 32 ? 32 : t->len), t->text);
			goto out;
		}
	}
	v->tok_mask = slots_for((int64_t)n) - 1;
	v->tok_slots = herd_xmalloc(((size_t)v->tok_mask + 1) * sizeof *v->tok_slots);
	memset(v->tok_slots, 0xff, ((size_t)v->tok_mask + 1) * sizeof *v->tok_slots);
	for (int32_t i = 0; i < v->n_tokens; i++)
		token_insert(v, i);

	if (v->kind == VOCAB_SPM) {
		for (int c = 0; c < 256; c++) {
			char hex[7];
			snprintf(hex, sizeof hex, "<0x%02X>", c);
			v->byte_token[c] = token_find(v, hex, 6);
			if (v->byte_token[c] < 0) {
				char one = (char)c;
				v->byte_token[c] = token_find(v, &one, 1);
			}
		}
	} else {
		for (int c = 0; c < 256; c++)
			v->byte_token[c] = -1;
		if ((err = load_array(g, "tokenizer.ggml.merges", false, -1, &km)) != HERD_OK)
			goto out;
		uint64_t nm = herd_gguf_arr_len(g, km);
		if (nm > HERD_GGUF_MAX_ARRAY) {
			err = herd_fail(HERD_ERR_FORMAT, "tokenizer.ggml.merges: %llu entries, the limit is %u",
					(unsigned long long)nm, HERD_GGUF_MAX_ARRAY);
			goto out;
		}
		v->n_merges = (int32_t)nm;
		v->merges = herd_xcalloc(nm ? nm : 1, sizeof *v->merges);
		for (uint64_t i = 0; i < nm; i++) {
			struct herd_gguf_str s = herd_gguf_arr_str(g, km, i);
			/* "left right", split at the first space after the first byte (as llama.cpp) */
			const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
			if (!sp) {
				err = herd_fail(HERD_ERR_FORMAT,
						"tokenizer.ggml.merges[%llu]: must be two pieces separated by a "
						"space, got \"%.*s\"",
						(unsigned long long)i, (int)(s.len > 32 ? 32 : s.len),
						s.ptr ? s.ptr : "");
				goto out;
			}
			v->merges[i] = (struct merge){s.ptr, sp + 1, (uint32_t)(sp - s.ptr),
						      (uint32_t)(s.len - (size_t)(sp - s.ptr) - 1)};
		}
		v->merge_mask = slots_for((int64_t)nm) - 1;
		v->merge_slots = herd_xmalloc(((size_t)v->merge_mask + 1) * sizeof *v->merge_slots);
		memset(v->merge_slots, 0xff, ((size_t)v->merge_mask + 1) * sizeof *v->merge_slots);
		for (int32_t i = 0; i < v->n_merges; i++)
			merge_insert(v, i);

		v->pre = PRE_GPT2;
		int64_t kp = herd_gguf_find_kv(g, "tokenizer.ggml.pre");
		struct herd_gguf_str pre = kp >= 0 ? herd_gguf_kv_str(g, kp) : (struct herd_gguf_str){NULL, 0};
		if (kp >= 0 && !pre.ptr) {
			err = herd_fail(HERD_ERR_FORMAT, "tokenizer.ggml.pre: must be a string");
			goto out;
		}
		static const char *const gpt2_names[] = {"gpt-2", "phi-2", "mpt", "olmo", "jais", "jina-es",
							 "jina-de", "jina-v1-en", "jina-v2-es", "jina-v2-de",
							 "jina-v2-code", "roberta-bpe", "gigachat"};
		static const char *const digit_names[] = {"starcoder", "refact", "command-r", "smollm",
							  "codeshell", "exaone", "minerva-7b"};
		static const char *const llama3_names[] = {"llama3", "llama-v3", "llama-bpe", "falcon3"};
		bool known = false;
		for (size_t i = 0; kp >= 0 && i < sizeof gpt2_names / sizeof *gpt2_names; i++)
			known |= str_is(pre, gpt2_names[i]);
		for (size_t i = 0; kp >= 0 && !known && i < sizeof digit_names / sizeof *digit_names; i++)
			if (str_is(pre, digit_names[i]))
				known = true, v->pre = PRE_DIGITS;
		for (size_t i = 0; kp >= 0 && !known && i < sizeof llama3_names / sizeof *llama3_names; i++)
			if (str_is(pre, llama3_names[i]))
				known = true, v->pre = PRE_LLAMA3, v->ignore_merges = true;
		if (kp >= 0 && !known && str_is(pre, "falcon"))
			known = true, v->pre = PRE_FALCON;
		if (kp >= 0 && !known && str_is(pre, "deepseek-coder"))
			known = true, v->pre = PRE_DEEPSEEK_CODER;
		if (!known)
			herd_log(WARN, "tokenizer.ggml.pre \"%.*s\" is not known to herd; using the GPT-2 pre-tokenizer",
				 (int)(pre.len > 64 ? 64 : pre.len), pre.ptr ? pre.ptr : "(absent)");
	}

	int32_t n32 = v->n_tokens;
	if ((err = load_id(g, "tokenizer.ggml.bos_token_id", n32, v->kind == VOCAB_SPM && n32 > 1 ? 1 : -1,
			   &v->bos)) != HERD_OK ||
	    (err = load_id(g, "tokenizer.ggml.eos_token_id", n32, v->kind == VOCAB_SPM && n32 > 2 ? 2 : -1,
			   &v->eos)) != HERD_OK ||
	    (err = load_id(g, "tokenizer.ggml.unknown_token_id", n32, v->kind == VOCAB_SPM ? 0 : -1, &v->unk)) !=
		    HERD_OK)
		goto out;
	/* these are only validated: herd does not use them */
	static const char *const other_ids[] = {"tokenizer.ggml.seperator_token_id", "tokenizer.ggml.padding_token_id",
						"tokenizer.ggml.cls_token_id", "tokenizer.ggml.mask_token_id"};
	for (size_t i = 0; i < sizeof other_ids / sizeof *other_ids; i++) {
		int32_t ignored;
		if ((err = load_id(g, other_ids[i], n32, -1, &ignored)) != HERD_OK)
			goto out;
	}
	if ((err = load_bool(g, "tokenizer.ggml.add_bos_token", v->kind == VOCAB_SPM || v->pre == PRE_LLAMA3,
			     &v->add_bos)) != HERD_OK ||
	    (err = load_bool(g, "tokenizer.ggml.add_space_prefix", v->kind == VOCAB_SPM, &v->add_space_prefix)) !=
		    HERD_OK)
		goto out;
	/* llama.cpp reads the prefix flag for SentencePiece vocabularies only */
	if (v->kind == VOCAB_BPE)
		v->add_space_prefix = false;

	for (int32_t i = 0; i < v->n_tokens; i++)
		if (v->tokens[i].type == TOK_USER_DEFINED && v->tokens[i].len > 0)
			v->n_user++;
	v->user_ids = herd_xmalloc((size_t)(v->n_user ? v->n_user : 1) * sizeof *v->user_ids);
	for (int32_t i = 0, k = 0; i < v->n_tokens; i++)
		if (v->tokens[i].type == TOK_USER_DEFINED && v->tokens[i].len > 0)
			v->user_ids[k++] = i;
	sort_vocab = v;
	qsort(v->user_ids, (size_t)v->n_user, sizeof *v->user_ids, longer_first);

	char *pieces = NULL;
	size_t used = 0, cap = 0;
	for (int32_t i = 0; i < v->n_tokens; i++)
		make_piece(v, i, &pieces, &used, &cap);
	v->pieces = pieces;
	*out = v;
	return HERD_OK;
out:
	herd_vocab_free(v);
	return err;
}
