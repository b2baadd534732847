/* model + forward pass against llama.cpp's outputs (../shared/reference): greedy ids and
 * logits of the F32 model, logits of the quantized files, every block type of the kquant set,
 * bad model files built here, input limits and memory use. Model tests run with 1 and 2
 * threads. Token ids come from the reference files, so these tests do not depend on the
 * tokenizer (test_generate.c covers text). */
#include "herd_test.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_int.h"

static json_t *load_json(const char *path)
{
	json_error_t err;
	json_t *j = json_load_file(path, 0, &err);
	if (!j)
		fail_msg("%s: %s (line %d)", path, err.text, err.line);
	return j;
}

static int32_t *json_ids(json_t *arr, size_t *n)
{
	*n = json_array_size(arr);
	int32_t *ids = malloc(*n * sizeof *ids);
	for (size_t i = 0; i < *n; i++)
		ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
	return ids;
}

static struct herd_model *load(const char *path)
{
	struct herd_model *m = NULL;
	enum herd_err e = herd_model_load(path, &m);
	if (e)
		fail_msg("%s: %s", path, herd_last_error());
	return m;
}

static struct herd_ctx *new_ctx(const struct herd_model *m, int n_ctx, int threads)
{
	struct herd_ctx_params p = herd_ctx_default_params();
	p.n_ctx = n_ctx;
	p.n_threads = threads;
	struct herd_ctx *c = NULL;
	if (herd_ctx_new(m, &p, &c))
		fail_msg("ctx: %s", herd_last_error());
	/* the test models are too small for the engine to wake a second thread on its own */
	herd_ctx_tune(c, 0, 0);
	return c;
}

static int32_t argmax(const float *x, int32_t n)
{
	int32_t b = 0;
	for (int32_t i = 1; i < n; i++)
		if (x[i] > x[b])
			b = i;
	return b;
}

/* Largest |logits[i] - ref[i]| over the vocabulary. */
static double max_diff(const float *logits, json_t *ref, int32_t n)
{
	assert_int_equal(json_array_size(ref), n);
	double d = 0;
	for (int32_t i = 0; i < n; i++) {
		double x = fabs(logits[i] - json_number_value(json_array_get(ref, i)));
		if (x > d)
			d = x;
	}
	return d;
}

static int32_t ref_argmax(json_t *ref)
{
	size_t b = 0;
	for (size_t i = 1; i < json_array_size(ref); i++)
		if (json_number_value(json_array_get(ref, i)) >
		    json_number_value(json_array_get(ref, b)))
			b = i;
	return (int32_t)b;
}

/* Evaluates the prompt and returns the last position's logits (owned by the ctx). */
static const float *prompt_logits(struct herd_ctx *c, json_t *ids_json)
{
	size_t n;
	int32_t *ids = json_ids(ids_json, &n);
	herd_ctx_reset(c);
	enum herd_err e = herd_ctx_eval(c, ids, (int32_t)n, false);
	free(ids);
	if (e)
		fail_msg("eval: %s", herd_last_error());
	return herd_ctx_logits(c, (int32_t)n - 1);
}

/* ---- stories260K F32: greedy ids of every prompt, token for token ---- */

static void greedy_f32_with(int threads)
{
	json_t *tok = load_json(HERD_SHARED("reference/stories260K-tokenize.json"));
	json_t *ref = load_json(HERD_SHARED("reference/stories260K-F32-greedy48-kvf32.json"));
	struct herd_model *m = load(HERD_SHARED("models/stories260K.gguf"));
	struct herd_ctx *c = new_ctx(m, 128, threads);
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(ref, "results"), i, r)
	{
		const char *name = json_string_value(json_object_get(r, "name"));
		json_t *prompt = NULL, *p;
		size_t k;
		json_array_foreach(json_object_get(tok, "prompts"), k, p)
		{
			if (!strcmp(json_string_value(json_object_get(p, "name")), name))
				prompt = p;
		}
		assert_non_null(prompt);
		const float *logits = prompt_logits(c, json_object_get(prompt, "ids_with_bos"));
		size_t n_want;
		int32_t *want = json_ids(json_object_get(r, "generated_ids"), &n_want);
		assert_int_equal(n_want, 48);
		for (size_t s = 0; s < n_want; s++) {
			int32_t id = argmax(logits, 512);
			if (id != want[s])
				fail_msg("%s (%d threads): step %zu: got %d, llama.cpp %d", name,
					 threads, s, id, want[s]);
			if (s + 1 < n_want) {
				assert_int_equal(herd_ctx_eval(c, &id, 1, false), HERD_OK);
				logits = herd_ctx_logits(c, 0);
			}
		}
		free(want);
	}
	herd_ctx_free(c);
	herd_model_free(m);
	json_decref(tok);
	json_decref(ref);
}

static void f32_greedy_matches_llama_cpp_1_thread(void **state)
{
	(void)state;
	greedy_f32_with(1);
}

static void f32_greedy_matches_llama_cpp_2_threads(void **state)
{
	(void)state;
	greedy_f32_with(2);
}

/* ---- stories260K last-position logits: F32 (1e-3), Q8_0 and Q4_0 (closeness + top-1) ---- */

static void stories_logits(const char *key, const char *path, double tol, int threads)
{
	json_t *ref = load_json(HERD_SHARED("reference/stories260K-logits.json"));
	json_t *model = json_object_get(json_object_get(ref, "models"), key);
	assert_non_null(model);
	struct herd_model *m = load(path);
	struct herd_ctx *c = new_ctx(m, 64, threads);
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(model, "prompts"), i, p)
	{
		json_t *want =
		    json_object_get(json_object_get(p, "kv_f32"), "last_prompt_pos_logits");
		const float *logits = prompt_logits(c, json_object_get(p, "prompt_tokens"));
		double d = max_diff(logits, want, 512);
		if (d > tol)
			fail_msg("%s %s (%d threads): logits differ by %g > %g", key,
				 json_string_value(json_object_get(p, "name")), threads, d, tol);
		assert_int_equal(argmax(logits, 512), ref_argmax(want));
	}
	herd_ctx_free(c);
	herd_model_free(m);
	json_decref(ref);
}

static void f32_logits_within_1e3(void **state)
{
	(void)state;
	stories_logits("F32", HERD_SHARED("models/stories260K.gguf"), 1e-3, 1);
	stories_logits("F32", HERD_SHARED("models/stories260K.gguf"), 1e-3, 2);
}

/* The README's bound for quantized files (0.3 seen, 0.5 allowed) and the same top-1. These
 * files keep ffn_down in F16, whose input llama.cpp rounds to F16 and herd keeps in F32, so
 * they do not agree to the last digit even though the 8-bit rounding matches (measured:
 * 0.14 to 0.28). */
static void q8_0_and_q4_0_logits_close(void **state)
{
	(void)state;
	stories_logits("Q8_0", HERD_SHARED("models/stories260K-Q8_0.gguf"), 0.5, 1);
	stories_logits("Q4_0", HERD_SHARED("models/stories260K-Q4_0.gguf"), 0.5, 2);
}

/* ---- kquant set: every block type ---- */

static void kquant_with(int threads)
{
	json_t *ref = load_json(HERD_SHARED("reference/kquant-reference.json"));
	int n_block = 0, n_exact = 0;
	const char *key;
	json_t *model;
	json_object_foreach(json_object_get(ref, "models"), key, model)
	{
		char path[512];
		snprintf(path, sizeof path, "%s/models/kquant/%s", HERD_SHARED_DIR,
			 json_string_value(json_object_get(model, "file")));
		struct herd_model *m = load(path);
		struct herd_ctx *c = new_ctx(m, 64, threads);
		bool is_float = !strcmp(key, "F16") || !strcmp(key, "BF16"),
		     is_block = !is_float && strcmp(key, "F32");
		size_t i;
		json_t *p;
		json_array_foreach(json_object_get(model, "prompts"), i, p)
		{
			const float *logits = prompt_logits(c, json_object_get(p, "prompt_tokens"));
			json_t *want = json_object_get(p, "last_prompt_pos_logits");
			double tol = 0.5; /* block types: the README's bound */
			if (!strcmp(key, "F32")) {
				tol = 1e-3;
			} else if (is_float) {
				/* herd keeps float activations for F16/BF16: compare with float_act
				 */
				want = json_object_get(json_object_get(p, "float_act"),
						       "last_prompt_pos_logits");
				tol = 1e-3;
			}
			double d = max_diff(logits, want, 512);
			if (d > tol)
				fail_msg("%s %s (%d threads): logits differ by %g > %g", key,
					 json_string_value(json_object_get(p, "name")), threads, d,
					 tol);
			assert_int_equal(argmax(logits, 512), ref_argmax(want));
			if (is_block) {
				n_block++;
				n_exact += d <= 1e-3;
			}
		}
		herd_ctx_free(c);
		herd_model_free(m);
	}
	/* herd rounds activations to 8-bit blocks the way llama.cpp does: most block-type runs
	 * then agree to 1e-3 (measured: 12 of 18; the others part on a rounding tie somewhere
	 * and land 0.15 to 0.35 away, like float activations would). */
	if (n_exact < n_block / 2)
		fail_msg("only %d of %d block-type runs agree with llama.cpp within 1e-3", n_exact,
			 n_block);
	json_decref(ref);
}

static void kquant_every_type_matches_1_thread(void **state)
{
	(void)state;
	kquant_with(1);
}

static void kquant_every_type_matches_2_threads(void **state)
{
	(void)state;
	kquant_with(2);
}

/* ---- the other files load and run ---- */

static void other_files_load_and_run(void **state)
{
	(void)state;
	const char *files[] = {HERD_SHARED("models/stories260K-F16.gguf"),
			       HERD_SHARED("models/stories260K-Q4_K_M.gguf"),
			       HERD_SHARED("models/llama-2-tiny-random.gguf")};
	for (size_t f = 0; f < 3; f++) {
		struct herd_model *m = load(files[f]);
		const struct herd_model_info *I = herd_model_info(m);
		assert_string_equal(I->arch, "llama");
		struct herd_ctx *c = new_ctx(m, 32, 2);
		int32_t ids[4] = {1, 403, 407, 261};
		assert_int_equal(herd_ctx_eval(c, ids, 4, true), HERD_OK);
		for (int t = 0; t < 4; t++) {
			const float *l = herd_ctx_logits(c, t);
			assert_non_null(l);
			for (int32_t v = 0; v < I->n_vocab; v++)
				assert_true(isfinite(l[v]));
		}
		herd_ctx_free(c);
		herd_model_free(m);
	}
}

/* ---- the hyperparameters as the file states them ---- */

static void info_reports_the_file(void **state)
{
	(void)state;
	struct herd_model *m = load(HERD_SHARED("models/stories260K.gguf"));
	const struct herd_model_info *I = herd_model_info(m);
	assert_int_equal(I->n_vocab, 512);
	assert_int_equal(I->n_embd, 64);
	assert_int_equal(I->n_ff, 172);
	assert_int_equal(I->n_layer, 5);
	assert_int_equal(I->n_head, 8);
	assert_int_equal(I->n_head_kv, 4);
	assert_int_equal(I->n_rot, 8);
	assert_int_equal(I->n_ctx_train, 2048);
	assert_true(I->rope_freq_base == 10000.0f && I->rope_freq_scale == 1.0f);
	assert_true(fabsf(I->norm_eps - 1e-5f) < 1e-9f);
	assert_int_equal(I->file_bytes, 1185376);
	/* every F32 tensor once except token_embd, of which one row: all but 511 of 512 rows */
	assert_int_equal(I->weight_bytes, 1185376 - 14176 - 511 * 64 * 4);
	herd_model_free(m);
}

/* ---- bad input: token ids and context ---- */

static void bad_tokens_and_context_overflow(void **state)
{
	(void)state;
	struct herd_model *m = load(HERD_SHARED("models/stories260K.gguf"));
	struct herd_ctx *c = new_ctx(m, 8, 1);
	int32_t bad[3] = {1, 512, 5};
	assert_int_equal(herd_ctx_eval(c, bad, 3, false), HERD_ERR_BAD_INPUT);
	assert_non_null(strstr(herd_last_error(), "tokens[1]"));
	int32_t neg = -1;
	assert_int_equal(herd_ctx_eval(c, &neg, 1, false), HERD_ERR_BAD_INPUT);
	assert_int_equal(herd_ctx_pos(c), 0); /* nothing changed */
	int32_t ids[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
	assert_int_equal(herd_ctx_eval(c, ids, 9, false), HERD_ERR_LIMIT);
	assert_int_equal(herd_ctx_eval(c, ids, 6, false), HERD_OK);
	assert_int_equal(herd_ctx_pos(c), 6);
	assert_int_equal(herd_ctx_eval(c, ids, 3, false), HERD_ERR_LIMIT);
	assert_int_equal(herd_ctx_eval(c, ids, 2, false), HERD_OK);
	assert_int_equal(herd_ctx_eval(c, ids, 1, false), HERD_ERR_LIMIT);
	assert_non_null(strstr(herd_last_error(), "n_ctx 8"));
	herd_ctx_reset(c);
	assert_int_equal(herd_ctx_eval(c, ids, 1, false), HERD_OK);
	herd_ctx_free(c);
	struct herd_ctx_params p = herd_ctx_default_params();
	p.n_ctx = -3;
	assert_int_equal(herd_ctx_new(m, &p, &c), HERD_ERR_BAD_INPUT);
	assert_non_null(strstr(herd_last_error(), "n_ctx"));
	herd_model_free(m);
}

/* Batches: a prompt cut into batches gives the same logits as one pass, and all_logits rows
 * equal one-token-at-a-time evaluation. */
static void batches_agree_with_single_tokens(void **state)
{
	(void)state;
	struct herd_model *m = load(HERD_SHARED("models/stories260K.gguf"));
	struct herd_ctx_params p = herd_ctx_default_params();
	p.n_ctx = 64;
	p.n_threads = 2;
	p.n_batch = 3;
	struct herd_ctx *c = NULL, *one = new_ctx(m, 64, 1);
	assert_int_equal(herd_ctx_new(m, &p, &c), HERD_OK);
	herd_ctx_tune(c, 0, 0);
	int32_t ids[10] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376};
	assert_int_equal(herd_ctx_eval(c, ids, 10, true), HERD_OK);
	for (int t = 0; t < 10; t++) {
		assert_int_equal(herd_ctx_eval(one, &ids[t], 1, false), HERD_OK);
		const float *a = herd_ctx_logits(c, t), *b = herd_ctx_logits(one, 0);
		for (int v = 0; v < 512; v++)
			assert_true(fabsf(a[v] - b[v]) < 1e-4f);
	}
	herd_ctx_free(c);
	herd_ctx_free(one);
	herd_model_free(m);
}

/* ---- bad model files, built here with the GGUF writer ---- */

enum breakage { OK_FILE, BAD_ARCH, NO_EMBD_KEY, NO_ATTN_K, BAD_SHAPE, BAD_TYPE };

static void fill_small(void *ud, int64_t index, void *buf, uint64_t nbytes)
{
	(void)ud;
	float *f = buf;
	for (uint64_t i = 0; i < nbytes / 4; i++)
		f[i] = (float)((int)((i * 7 + (uint64_t)index * 13) % 17) - 8) / 64.0f;
}

static void fill_zero(void *ud, int64_t index, void *buf, uint64_t nbytes)
{
	(void)ud;
	(void)index;
	memset(buf, 0, nbytes);
}

/* A 1-layer Llama (dim 8, 2 heads, ffn 16) with stories260K's 512-token vocab. */
static void write_tiny(const char *path, enum breakage b)
{
	struct herd_gguf *src = NULL;
	assert_int_equal(herd_gguf_open(HERD_SHARED("models/stories260K.gguf"), &src), HERD_OK);
	struct herd_gguf_writer *w = herd_gguf_writer_new(0);
	herd_gguf_writer_str(w, "general.architecture", b == BAD_ARCH ? "gptneox" : "llama");
	if (b != NO_EMBD_KEY)
		herd_gguf_writer_u32(w, "llama.embedding_length", 8);
	herd_gguf_writer_u32(w, "llama.feed_forward_length", 16);
	herd_gguf_writer_u32(w, "llama.block_count", 1);
	herd_gguf_writer_u32(w, "llama.attention.head_count", 2);
	herd_gguf_writer_u32(w, "llama.context_length", 64);
	herd_gguf_writer_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	for (int64_t i = 0; i < herd_gguf_kv_count(src); i++) {
		struct herd_gguf_str k = herd_gguf_kv_key(src, i);
		if (k.len > 10 && !memcmp(k.ptr, "tokenizer.", 10))
			herd_gguf_writer_copy_kv(w, src, i);
	}
	struct {
		const char *name;
		int64_t ne0, ne1;
	} ts[] = {
	    {"token_embd.weight", 8, 512},	{"output_norm.weight", 8, 0},
	    {"blk.0.attn_norm.weight", 8, 0},	{"blk.0.attn_q.weight", 8, 8},
	    {"blk.0.attn_k.weight", 8, 8},	{"blk.0.attn_v.weight", 8, 8},
	    {"blk.0.attn_output.weight", 8, 8}, {"blk.0.ffn_norm.weight", 8, 0},
	    {"blk.0.ffn_gate.weight", 8, 16},	{"blk.0.ffn_up.weight", 8, 16},
	    {"blk.0.ffn_down.weight", 16, 8},
	};
	for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
		if (b == NO_ATTN_K && !strcmp(ts[i].name, "blk.0.attn_k.weight"))
			continue;
		int64_t ne[2] = {ts[i].ne0, ts[i].ne1};
		if (b == BAD_SHAPE && !strcmp(ts[i].name, "blk.0.ffn_up.weight"))
			ne[1] = 12;
		enum herd_type type = HERD_TYPE_F32;
		if (b == BAD_TYPE && !strcmp(ts[i].name, "blk.0.attn_v.weight"))
			type = (enum herd_type)24; /* I8: a type no Llama weight uses and herd does
						      not compute */
		herd_gguf_writer_tensor(w, ts[i].name, type, ne[1] ? 2 : 1, ne,
					type == HERD_TYPE_F32 ? fill_small : fill_zero, NULL);
	}
	assert_int_equal(herd_gguf_writer_save(w, path), HERD_OK);
	herd_gguf_writer_free(w);
	herd_gguf_close(src);
}

static void expect_load_error(enum breakage b, enum herd_err want, const char *needle)
{
	char path[] = "/tmp/herd-test-model-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	write_tiny(path, b);
	struct herd_model *m = NULL;
	enum herd_err e = herd_model_load(path, &m);
	unlink(path);
	if (e != want || (needle && !strstr(herd_last_error(), needle)))
		fail_msg("breakage %d: got %s \"%s\", want %s containing \"%s\"", b,
			 herd_strerror(e), herd_last_error(), herd_strerror(want),
			 needle ? needle : "");
	if (!e) {
		/* the good file runs */
		struct herd_ctx *c = new_ctx(m, 16, 1);
		int32_t ids[3] = {1, 100, 200};
		assert_int_equal(herd_ctx_eval(c, ids, 3, false), HERD_OK);
		assert_true(isfinite(herd_ctx_logits(c, 2)[0]));
		herd_ctx_free(c);
	}
	herd_model_free(m);
}

static void bad_model_files_are_refused_clearly(void **state)
{
	(void)state;
	expect_load_error(OK_FILE, HERD_OK, NULL);
	expect_load_error(BAD_ARCH, HERD_ERR_UNSUPPORTED, "\"gptneox\"");
	expect_load_error(NO_EMBD_KEY, HERD_ERR_NOT_FOUND, "llama.embedding_length");
	expect_load_error(NO_ATTN_K, HERD_ERR_NOT_FOUND, "blk.0.attn_k.weight");
	expect_load_error(BAD_SHAPE, HERD_ERR_FORMAT,
			  "'blk.0.ffn_up.weight' has shape [8, 12], expected [8, 16]");
	expect_load_error(BAD_TYPE, HERD_ERR_UNSUPPORTED, "'blk.0.attn_v.weight' has type I8");
	struct herd_model *m = NULL;
	assert_int_not_equal(herd_model_load("/nonexistent/model.gguf", &m), HERD_OK);
	assert_null(m);
}

/* ---- memory: weights are mapped, not copied ---- */

/* A field of /proc/self/status in KiB ("VmRSS:", "RssAnon:"). */
static long status_kib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, field, n))
			kib = atol(line + n);
	if (f)
		fclose(f);
	return kib;
}

static void weights_are_mapped_not_copied(void **state)
{
	(void)state;
	const char *path = HERD_SHARED("models/kquant/rand256-F32.gguf");
	long before = status_kib("VmRSS:"), anon_before = status_kib("RssAnon:");
	struct herd_model *m = load(path);
	struct herd_ctx *c = new_ctx(m, 256, 2);
	int32_t ids[5] = {1, 403, 407, 261, 378};
	assert_int_equal(herd_ctx_eval(c, ids, 5, false), HERD_OK);
	const float *logits = herd_ctx_logits(c, 4);
	for (int i = 0; i < 20; i++) {
		int32_t id = argmax(logits, 512);
		assert_int_equal(herd_ctx_eval(c, &id, 1, false), HERD_OK);
		logits = herd_ctx_logits(c, 0);
	}
	long after = status_kib("VmRSS:"), anon = status_kib("RssAnon:") - anon_before;
	const struct herd_model_info *I = herd_model_info(m);
	long kv_kib =
	    (long)(2L * I->n_layer * 256 * (I->n_embd / I->n_head * I->n_head_kv) * 4 / 1024);
	long allowed = (long)(I->file_bytes / 1024) + kv_kib + 64 * 1024;
	if (after - before > allowed)
		fail_msg("RSS grew by %ld KiB, allowed %ld", after - before, allowed);
	/* sharper: private memory grew by less than half the file, so the weights (all of which
	 * were read) are the file's pages, not a copy */
	if (anon > (long)(I->file_bytes / 2048) + kv_kib)
		fail_msg("anonymous RSS grew by %ld KiB: weights copied? (file %ld KiB)", anon,
			 (long)(I->file_bytes / 1024));
	herd_ctx_free(c);
	herd_model_free(m);
}

HERD_TEST_MAIN(((const struct CMUnitTest[]){
    cmocka_unit_test(f32_greedy_matches_llama_cpp_1_thread),
    cmocka_unit_test(f32_greedy_matches_llama_cpp_2_threads),
    cmocka_unit_test(f32_logits_within_1e3),
    cmocka_unit_test(q8_0_and_q4_0_logits_close),
    cmocka_unit_test(kquant_every_type_matches_1_thread),
    cmocka_unit_test(kquant_every_type_matches_2_threads),
    cmocka_unit_test(other_files_load_and_run),
    cmocka_unit_test(info_reports_the_file),
    cmocka_unit_test(bad_tokens_and_context_overflow),
    cmocka_unit_test(batches_agree_with_single_tokens),
    cmocka_unit_test(bad_model_files_are_refused_clearly),
    cmocka_unit_test(weights_are_mapped_not_copied),
}))
