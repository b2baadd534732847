/* quant: tensor types and kernels. Round trips of herd's quantizers within a stated error per
 * type; dot products against the dot of the dequantized operands; fp16/bf16 edge cases; the
 * dequantizers against llama.cpp-quantized files (kquant/rand256-*, stories260K-Q4_0/Q8_0)
 * compared with the F32 originals, which a self-consistent round trip cannot check; the SIMD
 * kernels against the reference ones; the matrix product against plain vec_dot loops. */
#include "herd_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "quant_int.h"

/* Every weight type, with the bound on the relative RMS error of a round trip of N(0,1) data
 * through herd's quantizer, and of llama.cpp's blocks in the reference files against their F32
 * originals (measured: herd / llama.cpp worst tensor: F16 .00021/.00021, BF16 .0017/.0017,
 * Q8_0 .0054/.0054, Q6_K .018/.018, Q5_0 .043/-, Q5_1 .037/.038, Q5_K .036/.036, Q4_1 .077/.079,
 * Q4_0 .085/-, Q4_K .073/.072, IQ4_NL .074/.077, Q3_K .146/.152, Q2_K .27/.30). A wrong nibble
 * order or scale layout gives errors near 1. */
static const struct {
	enum herd_type t;
	double max_rel_rms;
} wtypes[] = {
	{HERD_TYPE_F32, 0},        {HERD_TYPE_F16, 0.0004},  {HERD_TYPE_BF16, 0.003},
	{HERD_TYPE_Q8_0, 0.007},   {HERD_TYPE_Q6_K, 0.022},  {HERD_TYPE_Q5_1, 0.045},
	{HERD_TYPE_Q5_0, 0.05},    {HERD_TYPE_Q5_K, 0.045},  {HERD_TYPE_Q4_1, 0.09},
	{HERD_TYPE_Q4_0, 0.10},    {HERD_TYPE_Q4_K, 0.09},   {HERD_TYPE_IQ4_NL, 0.09},
	{HERD_TYPE_Q3_K, 0.18},    {HERD_TYPE_Q2_K, 0.35},
};
#define N_WTYPES (sizeof wtypes / sizeof wtypes[0])

static uint64_t rng_state;

static uint32_t rng_u32(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static float rng_gauss(void)
{
	double u1 = (rng_u32() + 1.0) / 4294967297.0, u2 = rng_u32() / 4294967296.0;
	return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

static void fill_gauss(float *x, int64_t n, float scale)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = scale * rng_gauss();
}

static double rel_rms(const float *a, const float *ref, int64_t n)
{
	double e = 0, r = 0;
	for (int64_t i = 0; i < n; i++) {
		e += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
		r += (double)ref[i] * ref[i];
	}
	return r > 0 ? sqrt(e / r) : sqrt(e);
}

/* ---- geometry ---- */

static void block_sizes_match_the_type_table(void **state)
{
	(void)state;
	assert_int_equal(herd_type_block_bytes(HERD_TYPE_Q4_0), sizeof(struct block_q4_0));
	assert_int_equal(herd_type_block_bytes(HERD_TYPE_Q4_1), sizeof(struct block_q4_1));
	assert_int_equal(herd_type_block_bytes(HERD_TYPE_Q5_0), sizeof(struct block_q5_0));
	assert_int_equal(herd_type_block_bytes(HERD_TYPE_Q5_1), sizeof(struct block_q5_1));
	assert_int_equal(herd_type_block_bytes(HERD_TYPE_Q8_0), sizeof(struct block_q8_0));
	assert_int_equal(herd_type_block_bytes(HERD_TYPE_Q8_1), sizeof(struct block_q8_1));
	assert_int_equal(herd_type_block_bytes(HERD_TYPE_IQ4_NL), sizeof(struct block_iq4_nl));
	assert_int_equal(herd_type_block_bytes(HERD_TYPE_Q2_K), sizeof(struct block_q2_K));
	assert_int_equal(herd_type_block_bytes(HERD_TYPE_Q3_K), sizeof(struct block_q3_K));
	assert_int_equal(herd_type_block_bytes(HERD_TYPE_Q4_K), sizeof(struct block_q4_K));
	assert_int_equal(herd_type_block_bytes(HERD_TYPE_Q5_K), sizeof(struct block_q5_K));
	assert_int_equal(herd_type_block_bytes(HERD_TYPE_Q6_K), sizeof(struct block_q6_K));
	assert_int_equal(herd_type_block_bytes(HERD_TYPE_Q8_K), sizeof(struct block_q8_K));
	for (size_t i = 0; i < N_WTYPES; i++) {
		assert_true(herd_type_supported(wtypes[i].t));
		const struct herd_type_ops *ops = herd_type_ops_ref(wtypes[i].t);
		assert_non_null(ops);
		/* the activation type has the same block length, so rows line up block for block */
		int bs = herd_type_block_size(wtypes[i].t), xbs = herd_type_block_size(ops->vec_dot_type);
		assert_true(xbs == 1 || xbs == bs);
	}
	assert_false(herd_type_supported(HERD_TYPE_Q8_K));
	assert_false(herd_type_supported((enum herd_type)16)); /* IQ2_XXS: known, not computed */
	assert_false(herd_type_supported((enum herd_type)4));  /* never used by ggml */
	assert_false(herd_type_supported((enum herd_type)1000));
	assert_null(herd_type_ops((enum herd_type)-1));
}

/* ---- fp16 / bf16 ---- */

static uint32_t fbits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static void fp16_edge_cases(void **state)
{
	(void)state;
	assert_int_equal(herd_fp32_to_fp16(0.0f), 0x0000);
	assert_int_equal(herd_fp32_to_fp16(-0.0f), 0x8000);
	assert_int_equal(herd_fp32_to_fp16(1.0f), 0x3C00);
	assert_int_equal(herd_fp32_to_fp16(-2.0f), 0xC000);
	assert_int_equal(herd_fp32_to_fp16(65504.0f), 0x7BFF);  /* largest finite */
	assert_int_equal(herd_fp32_to_fp16(65519.99f), 0x7BFF); /* below the halfway point */
	assert_int_equal(herd_fp32_to_fp16(65520.0f), 0x7C00);  /* halfway rounds to even: inf */
	assert_int_equal(herd_fp32_to_fp16(1e9f), 0x7C00);
	assert_int_equal(herd_fp32_to_fp16(-INFINITY), 0xFC00);
	assert_true((herd_fp32_to_fp16(NAN) & 0x7FFF) > 0x7C00);
	assert_int_equal(herd_fp32_to_fp16(ldexpf(1, -24)), 0x0001);    /* smallest subnormal */
	assert_int_equal(herd_fp32_to_fp16(ldexpf(1, -25)), 0x0000);    /* tie: to even (0) */
	assert_int_equal(herd_fp32_to_fp16(ldexpf(3, -25)), 0x0002);    /* tie: to even (2) */
	assert_int_equal(herd_fp32_to_fp16(ldexpf(1.0001f, -25)), 1);   /* above the tie */
	assert_int_equal(herd_fp32_to_fp16(ldexpf(1023, -24)), 0x03FF); /* largest subnormal */
	assert_int_equal(herd_fp32_to_fp16(ldexpf(2047, -25)), 0x0400); /* rounds up to a normal */
	assert_int_equal(herd_fp32_to_fp16(1.0f + ldexpf(1, -11)), 0x3C00); /* tie to even */
	assert_int_equal(herd_fp32_to_fp16(1.0f + ldexpf(3, -11)), 0x3C02); /* tie to even, up */
	assert_int_equal(herd_fp32_to_fp16(ldexpf(1, -30)), 0x0000);
	assert_true(herd_fp16_to_fp32(0x0001) == ldexpf(1, -24));
	assert_true(herd_fp16_to_fp32(0x8400) == -ldexpf(1, -14));
	assert_true(herd_fp16_to_fp32(0x7BFF) == 65504.0f);
	assert_true(isinf(herd_fp16_to_fp32(0x7C00)) && herd_fp16_to_fp32(0xFC00) < 0);
	assert_true(isnan(herd_fp16_to_fp32(0x7E00)));
	assert_int_equal(fbits(herd_fp16_to_fp32(0x8000)), 0x80000000u);
	/* every half survives the round trip (nans stay nans) */
	for (uint32_t h = 0; h < 0x10000; h++) {
		float f = herd_fp16_to_fp32((uint16_t)h);
		if (isnan(f))
			assert_true(isnan(herd_fp16_to_fp32(herd_fp32_to_fp16(f))));
		else
			assert_int_equal(herd_fp32_to_fp16(f), h);
	}
}

static void bf16_edge_cases(void **state)
{
	(void)state;
	assert_int_equal(herd_fp32_to_bf16(1.0f), 0x3F80);
	assert_int_equal(herd_fp32_to_bf16(-0.0f), 0x8000);
	assert_int_equal(herd_fp32_to_bf16(1.0f + ldexpf(1, -8)), 0x3F80); /* tie to even */
	assert_int_equal(herd_fp32_to_bf16(1.0f + ldexpf(3, -8)), 0x3F82); /* tie to even, up */
	assert_int_equal(herd_fp32_to_bf16(1.0f + ldexpf(1, -7) + ldexpf(1, -9)), 0x3F81);
	assert_int_equal(herd_fp32_to_bf16(INFINITY), 0x7F80);
	assert_int_equal(herd_fp32_to_bf16(3.4e38f), 0x7F80); /* rounds past the largest finite */
	assert_true((herd_fp32_to_bf16(NAN) & 0x7FFF) > 0x7F80);
	uint32_t snan = 0x7F800001; /* a nan whose payload sits below bf16's bits stays a nan */
	float f;
	memcpy(&f, &snan, 4);
	assert_true((herd_fp32_to_bf16(f) & 0x7FFF) > 0x7F80);
	assert_true(herd_bf16_to_fp32(0x4049) == 3.140625f);
	for (uint32_t h = 0; h < 0x10000; h++) {
		float g = herd_bf16_to_fp32((uint16_t)h);
		if (!isnan(g))
			assert_int_equal(herd_fp32_to_bf16(g), h);
	}
}

/* ---- round trips and dot products, per type ---- */

static void round_trip_error_within_bound(void **state)
{
	(void)state;
	const int64_t n = 8192;
	float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
	void *q = malloc(n * 4);
	rng_state = 0x9E3779B97F4A7C15ull;
	fill_gauss(x, n, 1.0f);
	for (size_t i = 0; i < N_WTYPES; i++) {
		const struct herd_type_ops *ops = herd_type_ops_ref(wtypes[i].t);
		ops->from_float(x, q, n);
		ops->to_float(q, y, n);
		double e = rel_rms(y, x, n);
		if (!(e <= wtypes[i].max_rel_rms))
			fail_msg("%s: relative rms error %.5f > %.5f", herd_type_name(wtypes[i].t), e,
				 wtypes[i].max_rel_rms);
		/* scale invariance: small and large magnitudes quantize as well */
		for (int k = 0; k < n; k++)
			y[k] = x[k] * 1e-3f;
		ops->from_float(y, q, n);
		float *z = malloc(n * sizeof *z);
		ops->to_float(q, z, n);
		double e2 = rel_rms(z, y, n);
		free(z);
		if (!(e2 <= wtypes[i].max_rel_rms * 1.1 + 1e-4))
			fail_msg("%s (x 1e-3): relative rms error %.5f", herd_type_name(wtypes[i].t), e2);
	}
	free(x);
	free(y);
	free(q);
}

static void zero_rows_quantize_to_zero(void **state)
{
	(void)state;
	const int64_t n = 512;
	float x[512] = {0}, y[512];
	unsigned char q[2048];
	for (size_t i = 0; i < N_WTYPES; i++) {
		const struct herd_type_ops *ops = herd_type_ops_ref(wtypes[i].t);
		ops->from_float(x, q, n);
		ops->to_float(q, y, n);
		for (int k = 0; k < n; k++)
			if (y[k] != 0 || isnan(y[k]))
				fail_msg("%s: zero row gives %g at %d", herd_type_name(wtypes[i].t), y[k], k);
	}
}

static double ref_dot_dequantized(const struct herd_type_ops *ops, const void *wq, const void *xq, int64_t n,
				  double *mag)
{
	float *wf = malloc(n * sizeof *wf), *xf = malloc(n * sizeof *xf);
	ops->to_float(wq, wf, n);
	herd_type_ops_ref(ops->vec_dot_type)->to_float(xq, xf, n);
	double s = 0, m = 0;
	for (int64_t k = 0; k < n; k++) {
		s += (double)wf[k] * xf[k];
		m += fabs((double)wf[k] * xf[k]);
	}
	free(wf);
	free(xf);
	*mag = m;
	return s;
}

/* vec_dot must compute exactly the dot of what the two operands decode to (the scales are
 * applied per block, so only float rounding separates them). */
static void vec_dot_equals_dot_of_dequantized(void **state)
{
	(void)state;
	const int64_t n = 4096;
	float *w = malloc(n * sizeof *w), *x = malloc(n * sizeof *x);
	void *wq = malloc(n * 4), *xq = malloc(n * 4);
	rng_state = 12345;
	for (size_t i = 0; i < N_WTYPES; i++) {
		const struct herd_type_ops *ops = herd_type_ops_ref(wtypes[i].t);
		fill_gauss(w, n, 0.05f);
		fill_gauss(x, n, 2.0f);
		ops->from_float(w, wq, n);
		herd_type_ops_ref(ops->vec_dot_type)->from_float(x, xq, n);
		double mag, want = ref_dot_dequantized(ops, wq, xq, n, &mag);
		double got = ops->vec_dot(n, wq, xq);
		/* Q8_1 stores d*sum(q) as fp16: the min term m*s is rounded to 11 bits by the format */
		double tol = 2e-6 * mag;
		if (ops->vec_dot_type == HERD_TYPE_Q8_1) {
			const struct block_q8_1 *xb = xq;
			for (int64_t b = 0; b < n / QK; b++) {
				float m = wtypes[i].t == HERD_TYPE_Q4_1 ? herd_fp16_to_fp32(((const struct block_q4_1 *)wq)[b].m)
									: herd_fp16_to_fp32(((const struct block_q5_1 *)wq)[b].m);
				tol += fabs(m * herd_fp16_to_fp32(xb[b].s)) * ldexp(1, -11);
			}
		}
		if (fabs(got - want) > tol)
			fail_msg("%s: vec_dot %.7g, dequantized dot %.7g (magnitude %.4g)",
				 herd_type_name(wtypes[i].t), got, want, mag);
		/* and it estimates the true float dot within the quantization error */
		double truth = 0;
		for (int k = 0; k < n; k++)
			truth += (double)w[k] * x[k];
		if (fabs(got - truth) > 4 * wtypes[i].max_rel_rms * mag / sqrt((double)n) + 0.02 * mag / sqrt((double)n))
			fail_msg("%s: vec_dot %.6g far from the float dot %.6g", herd_type_name(wtypes[i].t), got,
				 truth);
	}
	free(w);
	free(x);
	free(wq);
	free(xq);
}

/* ---- llama.cpp's blocks: dequantize real files and compare with the F32 originals ---- */

static void compare_file_with_f32(const char *path, const char *f32_path, int *n_checked, bool *seen)
{
	struct herd_gguf *g = NULL, *f = NULL;
	if (herd_gguf_open(path, &g) || herd_gguf_open(f32_path, &f))
		fail_msg("%s: %s", path, herd_last_error());
	for (int64_t i = 0; i < herd_gguf_tensor_count(g); i++) {
		const struct herd_tensor *t = herd_gguf_tensor(g, i);
		const struct herd_tensor *r = herd_gguf_find_tensor(f, t->name);
		assert_non_null(r);
		assert_int_equal(r->type, HERD_TYPE_F32);
		if (t->type == HERD_TYPE_F32)
			continue;
		int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
		assert_int_equal(n, r->ne[0] * r->ne[1] * r->ne[2] * r->ne[3]);
		double bound = -1;
		for (size_t k = 0; k < N_WTYPES; k++)
			if (wtypes[k].t == t->type)
				bound = wtypes[k].max_rel_rms;
		if (bound < 0)
			fail_msg("%s: %s has type %s, not in the test's list", path, t->name, herd_type_name(t->type));
		float *y = malloc(n * sizeof *y);
		herd_type_ops_ref(t->type)->to_float(t->data, y, n);
		double e = rel_rms(y, r->data, n);
		/* llama.cpp's quantizer is at least as good as herd's: the same bound holds; a wrong
		 * layout gives errors near or above 1 */
		if (!(e <= bound))
			fail_msg("%s: %s (%s): relative rms error %.5f > %.5f", path, t->name,
				 herd_type_name(t->type), e, bound);
		/* the selected (possibly SIMD) dequantizer gives the same floats */
		float *z = malloc(n * sizeof *z);
		herd_type_ops(t->type)->to_float(t->data, z, n);
		assert_memory_equal(y, z, n * sizeof *y);
		free(z);
		free(y);
		seen[t->type] = true;
		(*n_checked)++;
	}
	herd_gguf_close(g);
	herd_gguf_close(f);
}

static void llama_cpp_blocks_dequantize_correctly(void **state)
{
	(void)state;
	static const char *files[] = {"F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_1",
				      "Q4_K_M", "Q4_1", "IQ4_NL", "Q3_K_M", "Q2_K"};
	bool seen[HERD_TYPE_COUNT] = {0};
	int n_checked = 0;
	char path[512];
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(path, sizeof path, "%s/models/kquant/rand256-%s.gguf", HERD_SHARED_DIR, files[i]);
		compare_file_with_f32(path, HERD_SHARED("models/kquant/rand256-F32.gguf"), &n_checked, seen);
	}
	/* Q4_0 and Q5_0 are only in the stories260K files */
	compare_file_with_f32(HERD_SHARED("models/stories260K-Q4_0.gguf"), HERD_SHARED("models/stories260K.gguf"),
			      &n_checked, seen);
	compare_file_with_f32(HERD_SHARED("models/stories260K-Q4_K_M.gguf"), HERD_SHARED("models/stories260K.gguf"),
			      &n_checked, seen);
	for (size_t k = 0; k < N_WTYPES; k++)
		if (wtypes[k].t != HERD_TYPE_F32 && !seen[wtypes[k].t])
			fail_msg("no tensor of type %s was checked", herd_type_name(wtypes[k].t));
	assert_true(n_checked > 150);
}


/* ---- SIMD kernels against the reference ones ---- */

static void fill_row(enum herd_type t, const struct herd_type_ops *ref, void *q, int64_t n, float scale)
{
	float *f = malloc(n * sizeof *f);
	fill_gauss(f, n, scale);
	ref->from_float(f, q, n);
	free(f);
}

/* Each SIMD dot product equals the reference within float rounding (both sum exact integer
 * products per block; only the order of the float sums differs): |diff| <= 1e-5 * sum|w*x|. */
static void simd_vec_dot_matches_reference(void **state)
{
	(void)state;
	if (!herd_simd_enabled())
		skip();
	static const int64_t nblocks[] = {1, 2, 3, 7, 33};
	static const int64_t nfloat[] = {1, 7, 8, 9, 33, 100, 257};
	rng_state = 777;
	for (size_t i = 0; i < N_WTYPES; i++) {
		enum herd_type t = wtypes[i].t;
		const struct herd_type_ops *ref = herd_type_ops_ref(t), *fast = herd_avx2_type_ops(t);
		assert_non_null(fast);
		assert_true(fast->vec_dot != ref->vec_dot);
		assert_int_equal(fast->vec_dot_type, ref->vec_dot_type);
		int bs = herd_type_block_size(t);
		for (int c = 0; c < (bs == 1 ? 7 : 5); c++) {
			int64_t n = bs == 1 ? nfloat[c] : nblocks[c] * bs;
			void *wq = malloc(n * 4 + 64), *xq = malloc(n * 4 + 64);
			fill_row(t, ref, wq, n, 0.1f);
			fill_row(ref->vec_dot_type, herd_type_ops_ref(ref->vec_dot_type), xq, n, 3.0f);
			double mag;
			ref_dot_dequantized(ref, wq, xq, n, &mag);
			float a = ref->vec_dot(n, wq, xq), b = fast->vec_dot(n, wq, xq);
			if (fabs((double)a - b) > 1e-5 * mag + 1e-30)
				fail_msg("%s n=%lld: simd %.8g, reference %.8g (magnitude %.4g)", herd_type_name(t),
					 (long long)n, b, a, mag);
			free(wq);
			free(xq);
		}
	}
}

/* The SIMD activation quantizer rounds exactly as the reference does: identical bytes. */
static void simd_quantizers_match_reference(void **state)
{
	(void)state;
	if (!herd_simd_enabled())
		skip();
	static const enum herd_type act[] = {HERD_TYPE_Q8_0, HERD_TYPE_Q8_1, HERD_TYPE_Q8_K};
	const int64_t n = 2048;
	float *x = malloc(n * sizeof *x);
	void *a = malloc(n * 2), *b = malloc(n * 2);
	rng_state = 4242;
	fill_gauss(x, n, 5.0f);
	x[3] = 0; /* exact zero, and an all-zero block */
	memset(x + 64, 0, QK_K * sizeof *x);
	for (size_t i = 0; i < 3; i++) {
		size_t bytes = herd_type_row_bytes(act[i], n);
		herd_type_ops_ref(act[i])->from_float(x, a, n);
		herd_type_ops(act[i])->from_float(x, b, n);
		assert_memory_equal(a, b, bytes);
	}
	free(x);
	free(a);
	free(b);
}

/* herd_matmul (and the SIMD tiles directly) against one reference vec_dot per (row, token),
 * for nt = 1..9 and row ranges that do not start or end on a tile edge; rows outside the
 * range stay untouched. */
static void matmul_matches_vec_dot(void **state)
{
	(void)state;
	const int64_t rows = 13;
	rng_state = 99;
	for (size_t i = 0; i < N_WTYPES; i++) {
		enum herd_type t = wtypes[i].t;
		const struct herd_type_ops *ref = herd_type_ops_ref(t);
		int bs = herd_type_block_size(t);
		int64_t n = bs == 1 ? 75 : 3 * bs;
		size_t ws = herd_type_row_bytes(t, n) + 8; /* a stride wider than the row */
		size_t xs = herd_type_row_bytes(ref->vec_dot_type, n) + 4;
		char *w = calloc(rows, ws), *x = calloc(9, xs);
		for (int64_t r = 0; r < rows; r++)
			fill_row(t, ref, w + r * ws, n, 0.1f);
		for (int k = 0; k < 9; k++)
			fill_row(ref->vec_dot_type, herd_type_ops_ref(ref->vec_dot_type), x + k * xs, n, 2.0f);
		const int64_t ldy = rows + 3;
		float y[9 * 16], want[9 * 16];
		static const int64_t ranges[][2] = {{0, 13}, {1, 12}, {3, 10}, {5, 6}, {7, 7}};
		for (int nt = 1; nt <= 9; nt++) {
			for (int rg = 0; rg < 5; rg++) {
				int64_t r0 = ranges[rg][0], r1 = ranges[rg][1];
				for (int pass = 0; pass < 2; pass++) {
					for (int k = 0; k < 9 * 16; k++)
						y[k] = -12345.0f;
					if (pass == 0)
						herd_matmul(t, w, ws, x, xs, n, nt, r0, r1, y, ldy);
					else if (!herd_simd_enabled() ||
						 !herd_avx2_matmul(t, w, ws, x, xs, n, nt, r0, r1, y, ldy))
						continue;
					for (int k = 0; k < nt; k++)
						for (int64_t r = 0; r < ldy; r++) {
							float got = y[k * ldy + r];
							if (r < r0 || r >= r1) {
								assert_true(got == -12345.0f);
								continue;
							}
							want[k * ldy + r] = ref->vec_dot(n, w + r * ws, x + k * xs);
							double mag;
							ref_dot_dequantized(ref, w + r * ws, x + k * xs, n, &mag);
							if (fabs(got - want[k * ldy + r]) > 1e-5 * mag + 1e-30)
								fail_msg("%s nt=%d rows %lld..%lld: y[%d][%lld] = %g, want %g",
									 herd_type_name(t), nt, (long long)r0, (long long)r1, k,
									 (long long)r, got, want[k * ldy + r]);
						}
					for (int k = nt; k < 9; k++)
						for (int64_t r = 0; r < ldy; r++)
							assert_true(y[k * ldy + r] == -12345.0f);
				}
			}
		}
		free(w);
		free(x);
	}
}

/* The 16-row interleaved kernels (quant_x16*.c): a packed matrix's rows come back exactly as
 * the file's (row_to_float = to_float); its product equals the reference vec_dot within
 * 1e-5 * sum|w x| (exact integer sums per block, float sums in another order), on widths of
 * 1, 3 and 65 blocks and 80 rows in group-aligned ranges; every token of a batch gets the bits
 * the same token gets alone (a prompt's logits equal generation's; alone is computed 16 rows a
 * call through one reused scratch, as a thread takes chunks); rows and tokens outside the
 * ranges stay untouched. Only Q8_0 and Q4_0 with whole groups of 16 rows are packable. On a
 * CPU with AVX-512 the test runs again with HERD_NO_AVX512=1, for the AVX2 kernels. */
static void x16_matmul_matches_reference(void **state)
{
	(void)state;
	if (!herd_simd_enabled())
		skip();
	/* the rerun below must really run the AVX2 kernels */
	const char *no512 = getenv("HERD_NO_AVX512");
	if (no512 && !strcmp(no512, "1"))
		assert_false(herd_avx512_enabled());
	static const enum herd_type types[] = {HERD_TYPE_Q8_0, HERD_TYPE_Q4_0};
	static const int64_t widths[] = {32, 96, 65 * 32};
	static const int64_t ranges[][2] = {{0, 80}, {16, 80}, {32, 48}, {16, 16}};
	const int64_t rows = 80, ldy = rows + 5; /* 5 groups: one pass of 4 and a single */
	const int max_nt = 9;
	static struct herd_x16_prep prep; /* a thread's scratch, as forward.c keeps one */
	rng_state = 1616;
	for (size_t ti = 0; ti < 2; ti++) {
		enum herd_type t = types[ti];
		const struct herd_type_ops *ref = herd_type_ops_ref(t);
		for (size_t wi = 0; wi < 3; wi++) {
			const int64_t n = widths[wi];
			const size_t ws = herd_type_row_bytes(t, n), xs = herd_type_row_bytes(HERD_TYPE_Q8_0, n) + 2;
			assert_true(herd_x16_packable(t, n, rows));
			char *w = malloc(ws * rows), *x = malloc(xs * max_nt);
			void *p = aligned_alloc(64, (herd_x16_bytes(t, n, rows) + 63) / 64 * 64);
			for (int64_t r = 0; r < rows; r++)
				fill_row(t, ref, w + r * ws, n, 0.1f);
			for (int k = 0; k < max_nt; k++)
				fill_row(HERD_TYPE_Q8_0, herd_type_ops_ref(HERD_TYPE_Q8_0), x + k * xs, n, 2.0f);
			prep.x = NULL; /* new activations */
			herd_x16_pack(t, w, n, rows, p);

			float *got = malloc(n * sizeof *got), *want = malloc(n * sizeof *want);
			for (int64_t r = 0; r < rows; r++) {
				herd_x16_row_to_float(t, p, n, r, got);
				ref->to_float(w + r * ws, want, n);
				for (int64_t k = 0; k < n; k++)
					assert_true(got[k] == want[k]); /* -0 == +0: the reference adds m = 0 */
			}
			free(got);
			free(want);

			float *y = malloc(max_nt * ldy * sizeof *y), *alone = malloc(ldy * sizeof *alone);
			for (int rg = 0; rg < 4; rg++) {
				const int64_t r0 = ranges[rg][0], r1 = ranges[rg][1];
				for (int nt = 1; nt <= max_nt; nt++) {
					for (int64_t k = 0; k < max_nt * ldy; k++)
						y[k] = -12345.0f;
					herd_x16_matmul(t, p, n, x, xs, nt, r0, r1, y, ldy, NULL);
					for (int k = 0; k < max_nt; k++) {
						for (int64_t k2 = 0; k2 < ldy; k2++)
							alone[k2] = -12345.0f;
						/* alone: group by group, as chunks, through the scratch */
						for (int64_t r = r0; k < nt && r < r1; r += 16)
							herd_x16_matmul(t, p, n, x + k * xs, xs, 1, r, r + 16, alone, ldy, &prep);
						for (int64_t r = 0; r < ldy; r++) {
							float v = y[k * ldy + r];
							assert_memory_equal(&v, &alone[r], sizeof v);
							if (k >= nt || r < r0 || r >= r1) {
								assert_true(v == -12345.0f);
								continue;
							}
							double mag;
							ref_dot_dequantized(ref, w + r * ws, x + k * xs, n, &mag);
							float r_ref = ref->vec_dot(n, w + r * ws, x + k * xs);
							if (fabs(v - r_ref) > 1e-5 * mag + 1e-30)
								fail_msg("%s n=%lld nt=%d rows %lld..%lld: y[%d][%lld] = %g, want %g",
									 herd_type_name(t), (long long)n, nt, (long long)r0,
									 (long long)r1, k, (long long)r, v, r_ref);
						}
					}
				}
			}
			free(y);
			free(alone);
			free(w);
			free(x);
			free(p);
		}
	}
	assert_false(herd_x16_packable(HERD_TYPE_Q8_0, 64, 40));
	assert_false(herd_x16_packable(HERD_TYPE_Q4_0, 64, 8));
	assert_false(herd_x16_packable(HERD_TYPE_Q5_0, 64, 16));
	assert_false(herd_x16_packable(HERD_TYPE_F16, 64, 16));
	assert_false(herd_x16_packable(HERD_TYPE_Q8_0, 32 * (HERD_X16_MAX_BLOCKS + 1), 16));
	if (herd_avx512_enabled())
		herd_rerun_with("HERD_NO_AVX512", "x16_matmul_matches_reference");
}

/* One thread's scratch serves every matrix of a phase: Q8_0 and Q4_0 (whose sums start at
 * different offsets) and rows of different lengths, all against the same token x. Going
 * through the scratch from one matrix to the next gives the bits each gets without it. */
static void x16_prep_follows_type_and_width(void **state)
{
	(void)state;
	if (!herd_simd_enabled())
		skip();
	static const struct {
		enum herd_type t;
		int64_t n;
	} mats[] = {{HERD_TYPE_Q8_0, 64}, {HERD_TYPE_Q8_0, 96}, {HERD_TYPE_Q4_0, 96},
		    {HERD_TYPE_Q8_0, 96}, {HERD_TYPE_Q4_0, 96}};
	const int nm = sizeof mats / sizeof mats[0];
	const int64_t rows = 32;
	rng_state = 4242;
	const struct herd_type_ops *q8 = herd_type_ops_ref(HERD_TYPE_Q8_0);
	char *x = malloc(herd_type_row_bytes(HERD_TYPE_Q8_0, 96));
	fill_row(HERD_TYPE_Q8_0, q8, x, 96, 2.0f);
	void *p[5];
	float want[5][32], got[32];
	for (int k = 0; k < nm; k++) {
		const enum herd_type t = mats[k].t;
		const int64_t n = mats[k].n;
		const size_t ws = herd_type_row_bytes(t, n);
		char *w = malloc(ws * rows);
		for (int64_t r = 0; r < rows; r++)
			fill_row(t, herd_type_ops_ref(t), w + r * ws, n, 0.1f);
		p[k] = aligned_alloc(64, (herd_x16_bytes(t, n, rows) + 63) / 64 * 64);
		herd_x16_pack(t, w, n, rows, p[k]);
		free(w);
		herd_x16_matmul(t, p[k], n, x, 0, 1, 0, rows, want[k], rows, NULL);
	}
	static struct herd_x16_prep prep;
	prep.x = NULL;
	for (int k = 0; k < nm; k++) {
		for (int64_t r = 0; r < rows; r += 16)
			herd_x16_matmul(mats[k].t, p[k], mats[k].n, x, 0, 1, r, r + 16, got, rows,
					&prep);
		assert_memory_equal(got, want[k], sizeof got);
	}
	for (int k = 0; k < nm; k++)
		free(p[k]);
	free(x);
	if (herd_avx512_enabled())
		herd_rerun_with("HERD_NO_AVX512", "x16_prep_follows_type_and_width");
}

/* HERD_NO_SIMD=1 makes herd_type_ops (and so herd_matmul) use the reference kernels. The
 * choice is made once per process, so the test runs itself again with the variable set. */
static void no_simd_env_forces_reference(void **state)
{
	(void)state;
	const char *e = getenv("HERD_NO_SIMD");
	if (e && strcmp(e, "1") == 0) {
		assert_false(herd_simd_enabled());
		for (size_t i = 0; i < N_WTYPES; i++)
			assert_ptr_equal(herd_type_ops(wtypes[i].t), herd_type_ops_ref(wtypes[i].t));
		return;
	}
	if (herd_simd_enabled())
		assert_ptr_not_equal(herd_type_ops(HERD_TYPE_Q8_0), herd_type_ops_ref(HERD_TYPE_Q8_0));
	herd_rerun_with("HERD_NO_SIMD", "no_simd_env_forces_reference");
}

HERD_TEST_MAIN(((const struct CMUnitTest[]){
	cmocka_unit_test(block_sizes_match_the_type_table),
	cmocka_unit_test(fp16_edge_cases),
	cmocka_unit_test(bf16_edge_cases),
	cmocka_unit_test(round_trip_error_within_bound),
	cmocka_unit_test(zero_rows_quantize_to_zero),
	cmocka_unit_test(vec_dot_equals_dot_of_dequantized),
	cmocka_unit_test(llama_cpp_blocks_dequantize_correctly),
	cmocka_unit_test(simd_vec_dot_matches_reference),
	cmocka_unit_test(simd_quantizers_match_reference),
	cmocka_unit_test(matmul_matches_vec_dot),
	cmocka_unit_test(x16_matmul_matches_reference),
	cmocka_unit_test(x16_prep_follows_type_and_width),
	cmocka_unit_test(no_simd_env_forces_reference),
}))
