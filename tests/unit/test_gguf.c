/* gguf: the reader against the real model files (facts from PROVENANCE.md), and against
 * corrupt files that the test makes itself: every one must give its own clear error. */
#include "herd_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

static struct herd_gguf *open_ok(const char *path)
{
	struct herd_gguf *g = NULL;
	enum herd_err e = herd_gguf_open(path, &g);
	if (e)
		fail_msg("%s: %s", path, herd_last_error());
	return g;
}

static void stories_header_facts(void **state)
{
	(void)state;
	struct herd_gguf *g = open_ok(HERD_SHARED("models/stories260K.gguf"));
	assert_int_equal(herd_gguf_version(g), 3);
	assert_int_equal(herd_gguf_tensor_count(g), 48);
	assert_int_equal(herd_gguf_kv_count(g), 19);
	assert_int_equal(herd_gguf_alignment(g), 32);
	assert_int_equal(herd_gguf_data_offset(g), 14176);
	struct herd_gguf_str s;
	assert_int_equal(herd_gguf_get_str(g, "general.architecture", &s), HERD_OK);
	assert_int_equal(s.len, 5);
	assert_memory_equal(s.ptr, "llama", 5);
	int64_t v;
	assert_int_equal(herd_gguf_get_int(g, "llama.embedding_length", 1, 1 << 20, &v), HERD_OK);
	assert_int_equal(v, 64);
	assert_int_equal(herd_gguf_get_int(g, "llama.attention.head_count_kv", 1, 1 << 20, &v), HERD_OK);
	assert_int_equal(v, 4);
	double eps;
	assert_int_equal(herd_gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &eps), HERD_OK);
	assert_true(eps > 0.9e-5 && eps < 1.1e-5);
	/* the vocabulary: 512 tokens, strings in O(1) */
	int64_t ti = herd_gguf_find_kv(g, "tokenizer.ggml.tokens");
	assert_true(ti >= 0);
	assert_int_equal(herd_gguf_arr_type(g, ti), HERD_GGUF_STRING);
	assert_int_equal(herd_gguf_arr_len(g, ti), 512);
	s = herd_gguf_arr_str(g, ti, 1);
	assert_int_equal(s.len, 3);
	assert_memory_equal(s.ptr, "<s>", 3);
	/* missing and wrongly typed keys */
	assert_int_equal(herd_gguf_get_int(g, "llama.no_such_key", 0, 1, &v), HERD_ERR_NOT_FOUND);
	assert_non_null(strstr(herd_last_error(), "llama.no_such_key"));
	assert_int_equal(herd_gguf_get_int(g, "general.architecture", 0, 1, &v), HERD_ERR_FORMAT);
	/* tensors */
	const struct herd_tensor *t = herd_gguf_find_tensor(g, "token_embd.weight");
	assert_non_null(t);
	assert_int_equal(t->type, HERD_TYPE_F32);
	assert_int_equal(t->n_dims, 2);
	assert_int_equal(t->ne[0], 64);
	assert_int_equal(t->ne[1], 512);
	assert_int_equal(t->nbytes, 64 * 512 * 4);
	t = herd_gguf_find_tensor(g, "blk.0.ffn_down.weight");
	assert_non_null(t);
	assert_int_equal(t->ne[0], 172);
	assert_null(herd_gguf_find_tensor(g, "blk.9.ffn_down.weight"));
	herd_gguf_close(g);
}

/* Tensor types inside each quantized file, as PROVENANCE.md lists them. */
static void count_types(const char *path, int counts[HERD_TYPE_COUNT])
{
	struct herd_gguf *g = open_ok(path);
	memset(counts, 0, sizeof(int) * HERD_TYPE_COUNT);
	for (int64_t i = 0; i < herd_gguf_tensor_count(g); i++)
		counts[herd_gguf_tensor(g, i)->type]++;
	herd_gguf_close(g);
}

static void quantized_files_tensor_types(void **state)
{
	(void)state;
	int c[HERD_TYPE_COUNT];
	count_types(HERD_SHARED("models/stories260K-Q8_0.gguf"), c);
	assert_int_equal(c[HERD_TYPE_Q8_0], 32);
	assert_int_equal(c[HERD_TYPE_F16], 5);
	assert_int_equal(c[HERD_TYPE_F32], 11);
	count_types(HERD_SHARED("models/stories260K-Q4_0.gguf"), c);
	assert_int_equal(c[HERD_TYPE_Q4_0], 31);
	assert_int_equal(c[HERD_TYPE_Q8_0], 1);
	count_types(HERD_SHARED("models/stories260K-Q4_K_M.gguf"), c);
	assert_int_equal(c[HERD_TYPE_Q5_0], 29);
	assert_int_equal(c[HERD_TYPE_Q8_0], 3);
	count_types(HERD_SHARED("models/kquant/rand256-Q3_K_M.gguf"), c);
	assert_int_equal(c[HERD_TYPE_Q3_K], 9);
	assert_int_equal(c[HERD_TYPE_Q4_K], 4);
	assert_int_equal(c[HERD_TYPE_Q5_K], 2);
	assert_int_equal(c[HERD_TYPE_Q6_K], 1);
	count_types(HERD_SHARED("models/kquant/rand256-Q2_K.gguf"), c);
	assert_int_equal(c[HERD_TYPE_Q2_K], 9);
	assert_int_equal(c[HERD_TYPE_Q3_K], 6);
	count_types(HERD_SHARED("models/kquant/rand256-BF16.gguf"), c);
	assert_int_equal(c[HERD_TYPE_BF16], 16);
	count_types(HERD_SHARED("models/kquant/rand256-IQ4_NL.gguf"), c);
	assert_int_equal(c[HERD_TYPE_IQ4_NL], 15);
}

static void every_shared_model_opens(void **state)
{
	(void)state;
	static const char *files[] = {
		"models/llama-2-tiny-random.gguf", "models/stories260K-F16.gguf",
		"models/kquant/rand256-F32.gguf", "models/kquant/rand256-F16.gguf",
		"models/kquant/rand256-Q8_0.gguf", "models/kquant/rand256-Q6_K.gguf",
		"models/kquant/rand256-Q5_K_M.gguf", "models/kquant/rand256-Q5_1.gguf",
		"models/kquant/rand256-Q4_K_M.gguf", "models/kquant/rand256-Q4_1.gguf",
		"models/vocab/ggml-vocab-llama-spm.gguf", "models/vocab/ggml-vocab-gpt-2.gguf",
	};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		char path[512];
		snprintf(path, sizeof path, "%s/%s", HERD_SHARED_DIR, files[i]);
		herd_gguf_close(open_ok(path));
	}
	struct herd_gguf *g = open_ok(HERD_SHARED("models/llama-2-tiny-random.gguf"));
	assert_int_equal(herd_gguf_data_offset(g), 724416);
	int64_t ti = herd_gguf_find_kv(g, "tokenizer.ggml.tokens");
	assert_int_equal(herd_gguf_arr_len(g, ti), 32000);
	herd_gguf_close(g);
}

/* ---- corrupt files ---- */

static char tmpdir[256];

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/herd-test-gguf-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd);
}

static void *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	void *p = malloc(*len);
	assert_int_equal(fread(p, 1, *len, f), *len);
	fclose(f);
	return p;
}

static void spit(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, len, f), len);
	fclose(f);
}

/* Opens bytes written to a file; returns the error (and leaves the message). */
static enum herd_err open_bytes(const void *p, size_t len)
{
	char path[300];
	snprintf(path, sizeof path, "%s/x.gguf", tmpdir);
	spit(path, p, len);
	struct herd_gguf *g = NULL;
	enum herd_err e = herd_gguf_open(path, &g);
	if (!e)
		herd_gguf_close(g);
	else
		assert_null(g);
	return e;
}

static void expect_error(const void *p, size_t len, enum herd_err want, const char *needle)
{
	enum herd_err e = open_bytes(p, len);
	if (e != want || !strstr(herd_last_error(), needle))
		fail_msg("want %s with '%s', got %s: %s", herd_strerror(want), needle, herd_strerror(e),
			 herd_last_error());
}

static void truncated_at_every_point(void **state)
{
	(void)state;
	size_t len;
	uint8_t *p = slurp(HERD_SHARED("models/stories260K-Q4_0.gguf"), &len);
	assert_int_equal(open_bytes(p, len), HERD_OK);
	/* every prefix through the header, then a stride through the tensor data */
	for (size_t n = 0; n < len; n += n < 1024 ? 1 : n < 16000 ? 13 : 997) {
		enum herd_err e = open_bytes(p, n);
		if (e != HERD_ERR_FORMAT)
			fail_msg("truncated at %zu: got %s (%s)", n, herd_strerror(e), herd_last_error());
		assert_non_null(strstr(herd_last_error(), "truncated") ? herd_last_error()
						 : strstr(herd_last_error(), "past the end"));
	}
	free(p);
}

/* A small valid file built with the writer: one kv, one 2x32 F32 tensor. */
static uint8_t *small_file(size_t *len)
{
	struct herd_gguf_writer *w = herd_gguf_writer_new(0);
	herd_gguf_writer_str(w, "general.architecture", "llama");
	int64_t ne[2] = {32, 2};
	herd_gguf_writer_tensor(w, "t", HERD_TYPE_F32, 2, ne, NULL, NULL);
	char path[300];
	snprintf(path, sizeof path, "%s/small.gguf", tmpdir);
	assert_int_equal(herd_gguf_writer_save(w, path), HERD_OK);
	herd_gguf_writer_free(w);
	return slurp(path, len);
}

/* Layout of small_file: header 24 bytes; kv: key len 8 + 20 bytes, type 4, str len 8 + 5;
 * tensor info: name len 8 + 1, n_dims 4, ne 2x8, type 4, offset 8. */
enum {
	OFF_NKV = 16,
	OFF_KV_TYPE = 24 + 8 + 20,
	OFF_KV_STRLEN = OFF_KV_TYPE + 4,
	OFF_T = OFF_KV_STRLEN + 8 + 5,
	OFF_T_NDIMS = OFF_T + 8 + 1,
	OFF_T_NE0 = OFF_T_NDIMS + 4,
	OFF_T_TYPE = OFF_T_NE0 + 16,
	OFF_T_OFFSET = OFF_T_TYPE + 4,
};

static void corrupt_headers_give_clear_errors(void **state)
{
	(void)state;
	size_t len;
	uint8_t *good = small_file(&len);
	assert_int_equal(open_bytes(good, len), HERD_OK);
	uint8_t *p = malloc(len);
	uint64_t u64;
	uint32_t u32;
#define RESET() memcpy(p, good, len)

	RESET();
	memcpy(p, "GGML", 4);
	expect_error(p, len, HERD_ERR_FORMAT, "not a GGUF file");
	RESET();
	u32 = 1;
	memcpy(p + 4, &u32, 4);
	expect_error(p, len, HERD_ERR_UNSUPPORTED, "version 1");
	RESET();
	u64 = 1ull << 40;
	memcpy(p + 8, &u64, 8);
	expect_error(p, len, HERD_ERR_FORMAT, "tensor count");
	RESET();
	memcpy(p + OFF_NKV, &u64, 8);
	expect_error(p, len, HERD_ERR_FORMAT, "metadata count");
	RESET();
	u64 = 3; /* a few more pairs than there are: runs into the tensor info, then the end */
	memcpy(p + OFF_NKV, &u64, 8);
	assert_int_equal(open_bytes(p, len), HERD_ERR_FORMAT);
	RESET();
	u32 = 77;
	memcpy(p + OFF_KV_TYPE, &u32, 4);
	expect_error(p, len, HERD_ERR_FORMAT, "unknown value type 77");
	RESET();
	u64 = 1ull << 62;
	memcpy(p + OFF_KV_STRLEN, &u64, 8);
	expect_error(p, len, HERD_ERR_FORMAT, "over the limit");
	RESET();
	u32 = 9;
	memcpy(p + OFF_T_NDIMS, &u32, 4);
	expect_error(p, len, HERD_ERR_FORMAT, "9 dimensions");
	RESET();
	u64 = 0;
	memcpy(p + OFF_T_NE0, &u64, 8);
	expect_error(p, len, HERD_ERR_FORMAT, "dimension 0 is 0");
	RESET();
	u64 = 1ull << 62; /* ne0 * ne1 overflows int64 */
	memcpy(p + OFF_T_NE0, &u64, 8);
	memcpy(p + OFF_T_NE0 + 8, &u64, 8);
	expect_error(p, len, HERD_ERR_FORMAT, "too many elements");
	RESET();
	u32 = 5; /* removed Q4_2: no type has this id */
	memcpy(p + OFF_T_TYPE, &u32, 4);
	expect_error(p, len, HERD_ERR_FORMAT, "unknown type 5");
	RESET();
	u32 = HERD_TYPE_Q4_K; /* a 32-long row cannot hold a 256-block */
	memcpy(p + OFF_T_TYPE, &u32, 4);
	expect_error(p, len, HERD_ERR_FORMAT, "not a multiple");
	RESET();
	u64 = 4096;
	memcpy(p + OFF_T_OFFSET, &u64, 8);
	expect_error(p, len, HERD_ERR_FORMAT, "past the end");
	RESET();
	u64 = 8;
	memcpy(p + OFF_T_OFFSET, &u64, 8);
	expect_error(p, len, HERD_ERR_FORMAT, "not aligned");
	free(p);
	free(good);
}

static void writer_round_trip_and_bad_values(void **state)
{
	(void)state;
	struct herd_gguf *src = open_ok(HERD_SHARED("models/stories260K.gguf"));
	struct herd_gguf_writer *w = herd_gguf_writer_new(64);
	for (int64_t i = 0; i < herd_gguf_kv_count(src); i++)
		herd_gguf_writer_copy_kv(w, src, i);
	herd_gguf_writer_u32(w, "general.alignment", 64);
	int64_t ne[1] = {32};
	herd_gguf_writer_tensor(w, "a", HERD_TYPE_Q8_0, 1, ne, NULL, NULL);
	herd_gguf_writer_tensor(w, "b", HERD_TYPE_F16, 1, ne, NULL, NULL);
	char path[300];
	snprintf(path, sizeof path, "%s/copy.gguf", tmpdir);
	assert_int_equal(herd_gguf_writer_save(w, path), HERD_OK);
	herd_gguf_writer_free(w);
	struct herd_gguf *g = open_ok(path);
	assert_int_equal(herd_gguf_alignment(g), 64);
	assert_int_equal(herd_gguf_kv_count(g), herd_gguf_kv_count(src) + 1);
	int64_t a = herd_gguf_find_kv(src, "tokenizer.ggml.scores"), b = herd_gguf_find_kv(g, "tokenizer.ggml.scores");
	assert_int_equal(herd_gguf_arr_len(src, a), herd_gguf_arr_len(g, b));
	for (uint64_t j = 0; j < herd_gguf_arr_len(g, b); j++) {
		double x, y;
		assert_true(herd_gguf_arr_float(src, a, j, &x) && herd_gguf_arr_float(g, b, j, &y));
		assert_true(x == y);
	}
	assert_int_equal(herd_gguf_find_tensor(g, "b")->offset, 64);
	herd_gguf_close(g);
	herd_gguf_close(src);

	/* alignment that is not a power of two; duplicate keys; arrays of arrays */
	w = herd_gguf_writer_new(0);
	herd_gguf_writer_u32(w, "general.alignment", 48);
	assert_int_equal(herd_gguf_writer_save(w, path), HERD_OK);
	herd_gguf_writer_free(w);
	assert_null((g = NULL, herd_gguf_open(path, &g) == HERD_ERR_FORMAT ? NULL : g));
	assert_non_null(strstr(herd_last_error(), "power of two"));

	w = herd_gguf_writer_new(0);
	herd_gguf_writer_u32(w, "x", 1);
	herd_gguf_writer_u32(w, "x", 2);
	assert_int_equal(herd_gguf_writer_save(w, path), HERD_OK);
	herd_gguf_writer_free(w);
	assert_int_equal(herd_gguf_open(path, &g), HERD_ERR_FORMAT);
	assert_non_null(strstr(herd_last_error(), "duplicate metadata key 'x'"));

	w = herd_gguf_writer_new(0);
	uint8_t nested[12] = {HERD_GGUF_ARRAY, 0, 0, 0, 0};
	herd_gguf_writer_raw(w, "nested", HERD_GGUF_ARRAY, nested, sizeof nested);
	assert_int_equal(herd_gguf_writer_save(w, path), HERD_OK);
	herd_gguf_writer_free(w);
	assert_int_equal(herd_gguf_open(path, &g), HERD_ERR_UNSUPPORTED);
	assert_non_null(strstr(herd_last_error(), "array of arrays"));

	/* an array whose count the file cannot hold fails before allocating for it */
	w = herd_gguf_writer_new(0);
	uint8_t huge[12] = {HERD_GGUF_STRING, 0, 0, 0, 0xff, 0xff, 0xff, 0};
	herd_gguf_writer_raw(w, "huge", HERD_GGUF_ARRAY, huge, sizeof huge);
	assert_int_equal(herd_gguf_writer_save(w, path), HERD_OK);
	herd_gguf_writer_free(w);
	assert_int_equal(herd_gguf_open(path, &g), HERD_ERR_FORMAT);

	assert_int_equal(herd_gguf_open("/nonexistent/m.gguf", &g), HERD_ERR_IO);
	assert_non_null(strstr(herd_last_error(), "/nonexistent/m.gguf"));
}

HERD_TEST_MAIN(((const struct CMUnitTest[]){
	cmocka_unit_test(stories_header_facts),
	cmocka_unit_test(quantized_files_tensor_types),
	cmocka_unit_test(every_shared_model_opens),
	cmocka_unit_test_setup_teardown(truncated_at_every_point, make_tmpdir, remove_tmpdir),
	cmocka_unit_test_setup_teardown(corrupt_headers_give_clear_errors, make_tmpdir, remove_tmpdir),
	cmocka_unit_test_setup_teardown(writer_round_trip_and_bad_values, make_tmpdir, remove_tmpdir),
}))
