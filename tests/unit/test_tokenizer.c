/* tokenizer: exact agreement with llama.cpp's tokenizers, checked against outputs llama.cpp
 * produced (../shared/reference/stories260K-tokenize.json and the test vectors of
 * ../shared/models/vocab/), round trips, and corrupt tokenizer metadata written by the test. */
#include "herd_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

struct loaded {
	struct herd_gguf *g;
	struct herd_vocab *v;
};

static struct loaded load(const char *path)
{
	struct loaded l = {0};
	if (herd_gguf_open(path, &l.g) != HERD_OK)
		fail_msg("%s: %s", path, herd_last_error());
	if (herd_vocab_load(l.g, &l.v) != HERD_OK)
		fail_msg("%s: %s", path, herd_last_error());
	return l;
}

static void unload(struct loaded *l)
{
	herd_vocab_free(l->v);
	herd_gguf_close(l->g);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	buf[n] = 0;
	*len = (size_t)n;
	return buf;
}

/* Tokenizes and detokenizes; the round trip must give the text back. */
static void round_trip(const struct herd_vocab *v, const char *text, size_t len, bool bos)
{
	int32_t *ids;
	size_t n;
	assert_int_equal(herd_tokenize(v, text, len, bos, &ids, &n), HERD_OK);
	char *back;
	size_t blen;
	assert_int_equal(herd_detokenize(v, ids, n, &back, &blen), HERD_OK);
	if (blen != len || memcmp(back, text, len) != 0)
		fail_msg("round trip of %zu bytes gave %zu bytes back: \"%.*s\" -> \"%s\"", len, blen, (int)len, text,
			 back);
	free(back);
	free(ids);
}

/* ---- stories260K: the reference prompts ---- */

static size_t unhex(const char *hex, char *out)
{
	size_t n = strlen(hex) / 2;
	for (size_t i = 0; i < n; i++) {
		unsigned b;
		sscanf(hex + 2 * i, "%2x", &b);
		out[i] = (char)b;
	}
	return n;
}

static void expect_ids(const struct herd_vocab *v, const char *name, const char *text, size_t len, bool bos,
		       json_t *expected)
{
	int32_t *ids;
	size_t n;
	assert_int_equal(herd_tokenize(v, text, len, bos, &ids, &n), HERD_OK);
	bool same = n == json_array_size(expected);
	for (size_t i = 0; same && i < n; i++)
		same = ids[i] == json_integer_value(json_array_get(expected, i));
	if (!same) {
		fprintf(stderr, "%s (bos %d): got", name, bos);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, " %d", ids[i]);
		fprintf(stderr, "\n");
		fail_msg("%s: ids differ from llama.cpp's", name);
	}
	free(ids);
}

static void stories_reference_prompts(void **state)
{
	(void)state;
	struct loaded l = load(HERD_SHARED("models/stories260K.gguf"));
	assert_int_equal(herd_vocab_size(l.v), 512);
	assert_int_equal(herd_vocab_bos(l.v), 1);
	assert_int_equal(herd_vocab_eos(l.v), 2);
	assert_true(herd_vocab_add_bos(l.v)); /* no add_bos_token key: the llama default */
	json_error_t jerr;
	json_t *root = json_load_file(HERD_SHARED("reference/stories260K-tokenize.json"), 0, &jerr);
	if (!root)
		fail_msg("reference json: %s", jerr.text);
	json_t *prompts = json_object_get(root, "prompts");
	assert_true(json_array_size(prompts) == 12);
	for (size_t i = 0; i < json_array_size(prompts); i++) {
		json_t *p = json_array_get(prompts, i);
		const char *name = json_string_value(json_object_get(p, "name"));
		const char *hex = json_string_value(json_object_get(p, "text_utf8_hex"));
		char *text = malloc(strlen(hex) / 2 + 1);
		size_t len = unhex(hex, text);
		expect_ids(l.v, name, text, len, true, json_object_get(p, "ids_with_bos"));
		expect_ids(l.v, name, text, len, false, json_object_get(p, "ids_no_bos"));
		round_trip(l.v, text, len, false);
		round_trip(l.v, text, len, true);
		free(text);
	}
	json_decref(root);
	unload(&l);
}

/* The pieces tokens print as: "▁" is a space, byte tokens their byte, control tokens nothing. */
static void stories_token_texts(void **state)
{
	(void)state;
	struct loaded l = load(HERD_SHARED("models/stories260K.gguf"));
	size_t n;
	assert_string_equal(herd_token_text(l.v, 1, &n), "");  /* <s>: control */
	assert_int_equal(n, 0);
	assert_string_equal(herd_token_text(l.v, 13, &n), "\n"); /* <0x0A> */
	assert_string_equal(herd_token_text(l.v, 410, &n), " "); /* ▁ */
	assert_int_equal(n, 1);
	herd_token_text(l.v, 3, &n); /* <0x00>: one NUL byte */
	assert_int_equal(n, 1);
	assert_string_equal(herd_token_text(l.v, 512, &n), ""); /* out of range */
	/* "Once upon" starts with the prefix space, which detokenize removes */
	const int32_t once[] = {1, 403, 407};
	char *text;
	assert_int_equal(herd_detokenize(l.v, once, 3, &text, &n), HERD_OK);
	assert_string_equal(text, "Once upon");
	free(text);
	const int32_t bad[] = {403, 512};
	assert_int_equal(herd_detokenize(l.v, bad, 2, &text, &n), HERD_ERR_BAD_INPUT);
	assert_non_null(strstr(herd_last_error(), "ids[1]"));
	unload(&l);
}

/* Random UTF-8 (1- to 4-byte characters, many not in this 512-token vocab, so byte
 * fallback is exercised) survives tokenize → detokenize. */
static void stories_random_utf8_round_trip(void **state)
{
	(void)state;
	struct loaded l = load(HERD_SHARED("models/stories260K.gguf"));
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	char buf[512];
	for (int iter = 0; iter < 300; iter++) {
		size_t len = 0;
		int nchars = (int)(iter % 40);
		for (int c = 0; c < nchars; c++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			uint32_t r = (uint32_t)(seed >> 33);
			uint32_t cp;
			switch (r % 5) {
			case 0: cp = 0x20 + (r >> 3) % 0x5f; break;        /* ASCII */
			case 1: cp = (r >> 3) % 4 ? ' ' : '\n'; break;     /* spaces, newlines */
			case 2: cp = 0x80 + (r >> 3) % 0x780; break;       /* 2 bytes */
			case 3: cp = 0x800 + (r >> 3) % 0xd000; break;     /* 3 bytes, below the surrogates */
			default: cp = 0x10000 + (r >> 3) % 0x100000; break; /* 4 bytes */
			}
			if (cp < 0x80) {
				buf[len++] = (char)cp;
			} else if (cp < 0x800) {
				buf[len++] = (char)(0xc0 | cp >> 6);
				buf[len++] = (char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				buf[len++] = (char)(0xe0 | cp >> 12);
				buf[len++] = (char)(0x80 | ((cp >> 6) & 0x3f));
				buf[len++] = (char)(0x80 | (cp & 0x3f));
			} else {
				buf[len++] = (char)(0xf0 | cp >> 18);
				buf[len++] = (char)(0x80 | ((cp >> 12) & 0x3f));
				buf[len++] = (char)(0x80 | ((cp >> 6) & 0x3f));
				buf[len++] = (char)(0x80 | (cp & 0x3f));
			}
		}
		round_trip(l.v, buf, len, iter % 2);
	}
	/* arbitrary bytes, invalid UTF-8 included, come back too (byte fallback) */
	for (int iter = 0; iter < 100; iter++) {
		size_t len = (size_t)iter % 30;
		for (size_t i = 0; i < len; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			buf[i] = (char)(seed >> 56);
		}
		round_trip(l.v, buf, len, false);
	}
	unload(&l);
}

/* ---- llama.cpp's tokenizer test vectors ---- */

#define SEP "\n__ggml_vocab_test__\n"

/* Runs every case of ggml-vocab-NAME.gguf.{inp,out}; returns how many pass. Cases are separated
 * by SEP (the file also ends with it); .out has one line of ids per case, no BOS. */
static int vocab_cases(const char *name, int *total, bool verbose)
{
	char path[1024];
	snprintf(path, sizeof path, HERD_SHARED("models/vocab/ggml-vocab-%s.gguf"), name);
	struct loaded l = load(path);
	size_t ilen, olen;
	snprintf(path, sizeof path, HERD_SHARED("models/vocab/ggml-vocab-%s.gguf.inp"), name);
	char *inp = read_file(path, &ilen);
	snprintf(path, sizeof path, HERD_SHARED("models/vocab/ggml-vocab-%s.gguf.out"), name);
	char *outp = read_file(path, &olen);
	int pass = 0, n = 0;
	char *ip = inp, *op = outp;
	for (;;) {
		char *end = strstr(ip, SEP);
		if (!end)
			break;
		char *eol = strchr(op, '\n');
		assert_non_null(eol);
		*eol = 0;
		int32_t *ids;
		size_t nids;
		assert_int_equal(herd_tokenize(l.v, ip, (size_t)(end - ip), false, &ids, &nids), HERD_OK);
		bool ok = true;
		size_t k = 0;
		for (char *q = op;;) {
			char *next;
			long id = strtol(q, &next, 10);
			if (next == q)
				break;
			ok = ok && k < nids && ids[k] == id;
			k++;
			q = next;
		}
		ok = ok && k == nids;
		char *back;
		size_t blen;
		assert_int_equal(herd_detokenize(l.v, ids, nids, &back, &blen), HERD_OK);
		bool rt = blen == (size_t)(end - ip) && memcmp(back, ip, blen) == 0;
		if (ok && rt)
			pass++;
		else if (verbose)
			fprintf(stderr, "%s case %d: %s%s: \"%.*s\"\n", name, n, ok ? "" : "ids differ ",
				rt ? "" : "round trip differs", (int)(end - ip), ip);
		free(back);
		free(ids);
		n++;
		ip = end + strlen(SEP);
		op = eol + 1;
	}
	free(inp);
	free(outp);
	unload(&l);
	*total = n;
	return pass;
}

static void all_cases_pass(const char *name)
{
	int total;
	int pass = vocab_cases(name, &total, true);
	assert_int_equal(total, 46);
	assert_int_equal(pass, total);
}

static void vocab_llama_spm(void **state)
{
	(void)state;
	all_cases_pass("llama-spm");
}

static void vocab_phi_3(void **state)
{
	(void)state;
	all_cases_pass("phi-3");
}

static void vocab_gpt_2(void **state)
{
	(void)state;
	all_cases_pass("gpt-2");
}

/* user-defined tokens (runs of spaces) are cut out of the text before the BPE */
static void vocab_mpt(void **state)
{
	(void)state;
	all_cases_pass("mpt");
}

/* the digit-splitting pre-tokenizer */
static void vocab_starcoder(void **state)
{
	(void)state;
	all_cases_pass("starcoder");
}

static void vocab_refact(void **state)
{
	(void)state;
	all_cases_pass("refact");
}

/* regex lists run as stages: punctuation runs, GPT-2, digit triples */
static void vocab_falcon(void **state)
{
	(void)state;
	all_cases_pass("falcon");
}

/* newline, letters, punctuation, CJK, numbers as stages; user-defined tokens */
static void vocab_deepseek_coder(void **state)
{
	(void)state;
	all_cases_pass("deepseek-coder");
}

/* ---- corrupt tokenizer metadata, written by the test ---- */

/* A GGUF holding a small valid SentencePiece vocab plus whatever `extra` adds or replaces. */
struct kv_override {
	const char *key; /* replaces the pair of this key (or adds it) */
	uint32_t vtype;
	const void *val;
	size_t len;
};

static size_t put_u32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
	return 4;
}

static size_t put_u64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, 8);
	return 8;
}

/* array of strings as GGUF stores it after the type */
static size_t str_array(unsigned char *p, const char *const *s, size_t n)
{
	size_t o = put_u32(p, HERD_GGUF_STRING);
	o += put_u64(p + o, n);
	for (size_t i = 0; i < n; i++) {
		o += put_u64(p + o, strlen(s[i]));
		memcpy(p + o, s[i], strlen(s[i]));
		o += strlen(s[i]);
	}
	return o;
}

static size_t num_array(unsigned char *p, uint32_t type, const void *vals, size_t n, size_t elem)
{
	size_t o = put_u32(p, type);
	o += put_u64(p + o, n);
	memcpy(p + o, vals, n * elem);
	return o + n * elem;
}

static const char *const tiny_tokens[] = {"<unk>", "<s>", "</s>", "<0x41>", "\xe2\x96\x81", "a", "b", "ab"};
static const float tiny_scores[] = {0, 0, 0, 0, -1, -2, -3, -0.5f};
static const int32_t tiny_types[] = {2, 3, 3, 6, 1, 1, 1, 1};

/* Writes the tiny vocab with one pair overridden and returns the load error (and the message). */
static enum herd_err load_tiny(const char *model, const struct kv_override *o)
{
	char path[] = "/tmp/herd-tok-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	static unsigned char buf[8192];
	struct herd_gguf_writer *w = herd_gguf_writer_new(0);
	const char *keys[] = {"tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
			      "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id"};
	for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
		if (o && !strcmp(o->key, keys[k])) {
			herd_gguf_writer_raw(w, o->key, o->vtype, o->val, o->len);
			continue;
		}
		size_t n;
		switch (k) {
		case 0: herd_gguf_writer_str(w, keys[k], model); break;
		case 1:
			n = str_array(buf, tiny_tokens, 8);
			herd_gguf_writer_raw(w, keys[k], HERD_GGUF_ARRAY, buf, n);
			break;
		case 2:
			n = num_array(buf, HERD_GGUF_FLOAT32, tiny_scores, 8, 4);
			herd_gguf_writer_raw(w, keys[k], HERD_GGUF_ARRAY, buf, n);
			break;
		case 3:
			n = num_array(buf, HERD_GGUF_INT32, tiny_types, 8, 4);
			herd_gguf_writer_raw(w, keys[k], HERD_GGUF_ARRAY, buf, n);
			break;
		case 4: herd_gguf_writer_u32(w, keys[k], 1); break;
		}
	}
	if (o && o->key[0] == '+')
		herd_gguf_writer_raw(w, o->key + 1, o->vtype, o->val, o->len);
	assert_int_equal(herd_gguf_writer_save(w, path), HERD_OK);
	herd_gguf_writer_free(w);
	struct herd_gguf *g;
	enum herd_err e = herd_gguf_open(path, &g);
	unlink(path);
	if (e != HERD_OK)
		fail_msg("the test's GGUF does not open: %s", herd_last_error());
	struct herd_vocab *v = NULL;
	e = herd_vocab_load(g, &v);
	if (e == HERD_OK) {
		/* the valid tiny vocab tokenizes: " ab" → ▁ ab; "A" → byte token; "c" → <unk> */
		int32_t *ids;
		size_t n;
		assert_int_equal(herd_tokenize(v, "abAc", 4, true, &ids, &n), HERD_OK);
		assert_int_equal(n, 5);
		assert_int_equal(ids[0], 1);
		assert_int_equal(ids[1], 4);
		assert_int_equal(ids[2], 7);
		assert_int_equal(ids[3], 3);
		assert_int_equal(ids[4], 0);
		free(ids);
	} else {
		assert_null(v);
	}
	herd_vocab_free(v);
	herd_gguf_close(g);
	return e;
}

static void expect_error(const char *model, const struct kv_override *o, enum herd_err code, const char *needle)
{
	enum herd_err e = load_tiny(model, o);
	if (e != code || !strstr(herd_last_error(), needle))
		fail_msg("%s: expected error %d mentioning \"%s\", got %d \"%s\"", o ? o->key : model, code, needle, e,
			 herd_last_error());
}

static void corrupt_metadata(void **state)
{
	(void)state;
	unsigned char b[4096];
	size_t n;
	assert_int_equal(load_tiny("llama", NULL), HERD_OK); /* the base file is valid */

	expect_error("t5", NULL, HERD_ERR_UNSUPPORTED, "tokenizer.ggml.model");
	expect_error("bert", NULL, HERD_ERR_UNSUPPORTED, "\"bert\" is not supported");

	/* scores: one entry short; NaN; not numbers */
	n = num_array(b, HERD_GGUF_FLOAT32, tiny_scores, 7, 4);
	expect_error("llama", &(struct kv_override){"tokenizer.ggml.scores", HERD_GGUF_ARRAY, b, n},
		     HERD_ERR_FORMAT, "tokenizer.ggml.scores: has 7 entries");
	float nan_scores[8];
	memcpy(nan_scores, tiny_scores, sizeof nan_scores);
	nan_scores[5] = 0.0f / 0.0f;
	n = num_array(b, HERD_GGUF_FLOAT32, nan_scores, 8, 4);
	expect_error("llama", &(struct kv_override){"tokenizer.ggml.scores", HERD_GGUF_ARRAY, b, n},
		     HERD_ERR_FORMAT, "tokenizer.ggml.scores[5]: must be a finite float");
	n = str_array(b, tiny_tokens, 8);
	expect_error("llama", &(struct kv_override){"tokenizer.ggml.scores", HERD_GGUF_ARRAY, b, n},
		     HERD_ERR_FORMAT, "tokenizer.ggml.scores: must be an array of numbers");

	/* token types: out of range */
	int32_t types[8];
	memcpy(types, tiny_types, sizeof types);
	types[6] = 9;
	n = num_array(b, HERD_GGUF_INT32, types, 8, 4);
	expect_error("llama", &(struct kv_override){"tokenizer.ggml.token_type", HERD_GGUF_ARRAY, b, n},
		     HERD_ERR_FORMAT, "tokenizer.ggml.token_type[6]: must be 0..6");

	/* tokens: not an array; empty; a byte token that is not <0xNN> */
	uint32_t one = 1;
	expect_error("llama", &(struct kv_override){"tokenizer.ggml.tokens", HERD_GGUF_UINT32, &one, 4},
		     HERD_ERR_FORMAT, "tokenizer.ggml.tokens: must be an array");
	n = str_array(b, tiny_tokens, 0);
	expect_error("llama", &(struct kv_override){"tokenizer.ggml.tokens", HERD_GGUF_ARRAY, b, n},
		     HERD_ERR_FORMAT, "tokenizer.ggml.tokens: must have 1..");
	const char *bad_byte[8];
	memcpy(bad_byte, tiny_tokens, sizeof bad_byte);
	bad_byte[3] = "<0xZZ>";
	n = str_array(b, bad_byte, 8);
	expect_error("llama", &(struct kv_override){"tokenizer.ggml.tokens", HERD_GGUF_ARRAY, b, n},
		     HERD_ERR_FORMAT, "tokenizer.ggml.tokens[3]: a byte token must read <0xNN>");

	/* special ids: out of range, wrong type */
	uint32_t big = 8;
	expect_error("llama", &(struct kv_override){"tokenizer.ggml.bos_token_id", HERD_GGUF_UINT32, &big, 4},
		     HERD_ERR_FORMAT, "tokenizer.ggml.bos_token_id: token id must be in 0..7, got 8");
	n = put_u64(b, 1);
	b[8] = 'x';
	expect_error("llama", &(struct kv_override){"tokenizer.ggml.bos_token_id", HERD_GGUF_STRING, b, 9},
		     HERD_ERR_FORMAT, "tokenizer.ggml.bos_token_id: must be an integer");
	big = 99;
	expect_error("llama", &(struct kv_override){"+tokenizer.ggml.eos_token_id", HERD_GGUF_UINT32, &big, 4},
		     HERD_ERR_FORMAT, "tokenizer.ggml.eos_token_id");
	/* add_bos_token must be a bool */
	expect_error("llama", &(struct kv_override){"+tokenizer.ggml.add_bos_token", HERD_GGUF_UINT32, &one, 4},
		     HERD_ERR_FORMAT, "tokenizer.ggml.add_bos_token");

	/* gpt2: merges missing; a merge without a space */
	expect_error("gpt2", NULL, HERD_ERR_NOT_FOUND, "tokenizer.ggml.merges");
	const char *merges[] = {"a b", "ab"};
	n = str_array(b, merges, 2);
	expect_error("gpt2", &(struct kv_override){"+tokenizer.ggml.merges", HERD_GGUF_ARRAY, b, n}, HERD_ERR_FORMAT,
		     "tokenizer.ggml.merges[1]: must be two pieces separated by a space");
}

/* The model key itself missing. */
static void missing_model_key(void **state)
{
	(void)state;
	unsigned char b[16];
	size_t n = put_u64(b, 0);
	/* a zero-length model name is not a known tokenizer */
	expect_error("llama", &(struct kv_override){"tokenizer.ggml.model", HERD_GGUF_STRING, b, n},
		     HERD_ERR_UNSUPPORTED, "tokenizer.ggml.model");
	struct herd_gguf_writer *w = herd_gguf_writer_new(0);
	herd_gguf_writer_str(w, "general.architecture", "llama");
	char path[] = "/tmp/herd-tok-XXXXXX";
	int fd = mkstemp(path);
	close(fd);
	assert_int_equal(herd_gguf_writer_save(w, path), HERD_OK);
	herd_gguf_writer_free(w);
	struct herd_gguf *g;
	assert_int_equal(herd_gguf_open(path, &g), HERD_OK);
	unlink(path);
	struct herd_vocab *v = (struct herd_vocab *)1;
	assert_int_equal(herd_vocab_load(g, &v), HERD_ERR_NOT_FOUND);
	assert_null(v);
	assert_non_null(strstr(herd_last_error(), "tokenizer.ggml.model"));
	herd_gguf_close(g);
}

/* A 1 MB text: linear-time merging keeps it fast, and it survives the round trip. */
static void one_megabyte(void **state)
{
	(void)state;
	size_t plen;
	char *part = read_file(HERD_SHARED("reference/ppl-text.txt"), &plen);
	size_t len = 1 << 20;
	char *text = malloc(len);
	for (size_t o = 0; o < len; o += plen)
		memcpy(text + o, part, len - o < plen ? len - o : plen);
	const char *models[] = {HERD_SHARED("models/stories260K.gguf"), HERD_SHARED("models/vocab/ggml-vocab-gpt-2.gguf")};
	for (int m = 0; m < 2; m++) {
		struct loaded l = load(models[m]);
		double t0 = herd_now_ms();
		int32_t *ids;
		size_t n;
		assert_int_equal(herd_tokenize(l.v, text, len, false, &ids, &n), HERD_OK);
		double ms = herd_now_ms() - t0;
		assert_true(n > len / 8);
		char *back;
		size_t blen;
		assert_int_equal(herd_detokenize(l.v, ids, n, &back, &blen), HERD_OK);
		assert_int_equal(blen, len);
		assert_memory_equal(back, text, len);
		/* generous: a shared 2-core machine under AddressSanitizer */
		if (ms > 8000)
			fail_msg("tokenizing 1 MB took %.0f ms", ms);
		free(back);
		free(ids);
		unload(&l);
	}
	free(text);
	free(part);
}

HERD_TEST_MAIN(((const struct CMUnitTest[]){
	cmocka_unit_test(stories_reference_prompts),
	cmocka_unit_test(stories_token_texts),
	cmocka_unit_test(stories_random_utf8_round_trip),
	cmocka_unit_test(vocab_llama_spm),
	cmocka_unit_test(vocab_phi_3),
	cmocka_unit_test(vocab_gpt_2),
	cmocka_unit_test(vocab_mpt),
	cmocka_unit_test(vocab_starcoder),
	cmocka_unit_test(vocab_refact),
	cmocka_unit_test(vocab_falcon),
	cmocka_unit_test(vocab_deepseek_coder),
	cmocka_unit_test(corrupt_metadata),
	cmocka_unit_test(missing_model_key),
	cmocka_unit_test(one_megabyte),
}))
