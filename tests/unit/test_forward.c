/* forward: the SIMD attention kernel against its reference, and the forward pass giving the
 * same logits bit for bit whatever the thread count and the tiling of prompt processing (each
 * output element is computed by one thread with the same code wherever its chunk starts). */
#include "herd_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant_int.h"

static float frand(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (float)((*s >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f; /* [-1, 1) */
}

/* Head widths and position counts that are not multiples of the 8-float vector (and some
 * that are), for 1, 3, 8 and 11 query heads sharing the keys and values, against the plain
 * loops head by head: every output within 1e-5 of the sum of the magnitudes it adds up (the
 * versions differ in the order of float sums, in FMA rounding and in the exponential), and the
 * softmax weights left in the scratch within 1e-5 relative. */
static void attention_simd_matches_reference(void **state)
{
	(void)state;
	if (!herd_simd_enabled())
		skip();
	static const int32_t hds[] = {1, 7, 13, 32, 64, 67, 100, 128, 130};
	static const int32_t npos[] = {1, 2, 5, 33, 200};
	static const int32_t nqs[] = {1, 3, 8, 11};
	uint64_t seed = 42;
	for (size_t a = 0; a < sizeof hds / sizeof hds[0]; a++)
		for (size_t b = 0; b < sizeof npos / sizeof npos[0]; b++)
			for (size_t c = 0; c < sizeof nqs / sizeof nqs[0]; c++) {
				const int32_t hd = hds[a], n = npos[b], nq = nqs[c];
				const size_t stride =
				    (size_t)hd * 3 + 1; /* other kv heads between */
				const size_t qn = (size_t)nq * (size_t)hd,
					     sn = (size_t)nq * (size_t)n;
				float *q = malloc(qn * sizeof *q);
				float *k = malloc((size_t)n * stride * sizeof *k);
				float *v = malloc((size_t)n * stride * sizeof *v);
				float *sc1 = malloc((size_t)n * sizeof *sc1),
				      *sc2 = malloc(sn * sizeof *sc2);
				float *o1 = malloc((size_t)hd * sizeof *o1),
				      *o2 = malloc((qn + 8) * sizeof *o2);
				for (size_t i = 0; i < qn; i++)
					q[i] = 3 * frand(&seed);
				for (size_t i = 0; i < (size_t)n * stride; i++) {
					k[i] = frand(&seed);
					v[i] = 2 * frand(&seed);
				}
				for (size_t i = 0; i < qn + 8; i++)
					o2[i] =
					    12345.0f; /* guards: the kernel writes nq * hd floats */
				const float scale = 1.0f / sqrtf((float)hd);
				herd_attend(q, nq, k, v, stride, n, hd, scale, sc2, o2);
				for (int32_t h = 0; h < nq; h++) {
					herd_attend_head_ref(q + (size_t)h * hd, k, v, stride, n,
							     hd, scale, sc1, o1);
					const float *s2 = sc2 + (size_t)h * n,
						    *oh = o2 + (size_t)h * hd;
					double wsum = 0;
					for (int32_t j = 0; j < n; j++) {
						assert_true(fabsf(sc1[j] - s2[j]) <=
							    1e-5f * sc1[j] + 1e-12f);
						wsum += sc1[j];
					}
					assert_true(fabs(wsum - 1) < 1e-5);
					for (int32_t i = 0; i < hd; i++) {
						double mag = 0;
						for (int32_t j = 0; j < n; j++)
							mag +=
							    sc1[j] *
							    fabsf(
								v[(size_t)j * stride + (size_t)i]);
						if (fabs(o1[i] - oh[i]) > 1e-5 * mag + 1e-7)
							fail_msg("hd %d, n_pos %d, head %d of %d, "
								 "[%d]: simd %.9g, "
								 "reference %.9g",
								 hd, n, h, nq, i, oh[i], o1[i]);
					}
				}
				for (size_t i = qn; i < qn + 8; i++)
					assert_true(o2[i] == 12345.0f);
				free(q), free(k), free(v), free(sc1), free(sc2), free(o1), free(o2);
			}
}

/* SwiGLU's silu(g) * u against the plain formula with expf, within 1e-6 relative (the SIMD
 * exponential is within 2 ulp), on lengths around the 8-float vector, with values up to +-100
 * (e^100 overflows a float: the kernel must not), and nothing written past n. */
static void silu_mul_matches_formula(void **state)
{
	(void)state;
	static const int64_t ns[] = {1, 7, 8, 13, 5632};
	uint64_t seed = 7;
	for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
		const int64_t n = ns[a];
		float *g = malloc((size_t)(n + 8) * sizeof *g), *u = malloc((size_t)n * sizeof *u);
		float *want = malloc((size_t)n * sizeof *want);
		for (int64_t i = 0; i < n; i++) {
			g[i] = 100 * frand(&seed) * frand(&seed);
			u[i] = 2 * frand(&seed);
			want[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
		}
		for (int i = 0; i < 8; i++)
			g[n + i] = 12345.0f;
		herd_silu_mul(g, u, n);
		for (int64_t i = 0; i < n; i++)
			if (fabsf(g[i] - want[i]) > 1e-6f * fabsf(want[i]) + 1e-30f)
				fail_msg("n %lld, [%lld]: %.9g, want %.9g", (long long)n,
					 (long long)i, g[i], want[i]);
		for (int i = 0; i < 8; i++)
			assert_true(g[n + i] == 12345.0f);
		free(g), free(u), free(want);
	}
}

/* RMSNorm (with and without the residual added first) against the rounding it promises: float
 * squares summed in 8 interleaved double chains, a float mean, x * scale, then * w; bit for
 * bit, on lengths around the 8-float vector and tinyllama's, nothing written past n. With the
 * SIMD kernels it runs again with HERD_NO_SIMD=1, for the plain loops. */
static void rmsnorm_rounds_as_specified(void **state)
{
	(void)state;
	static const int64_t ns[] = {1, 7, 8, 13, 2048, 5632};
	uint64_t seed = 11;
	for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
		for (int add = 0; add < 2; add++) {
			const int64_t n = ns[a];
			float *x = malloc((size_t)n * sizeof *x),
			      *d = malloc((size_t)n * sizeof *d);
			float *w = malloc((size_t)n * sizeof *w),
			      *want = malloc((size_t)n * sizeof *want);
			float *out = malloc((size_t)(n + 8) * sizeof *out);
			float *xs = malloc((size_t)n * sizeof *xs);
			for (int64_t i = 0; i < n; i++) {
				x[i] = 4 * frand(&seed);
				d[i] = frand(&seed);
				w[i] = 1 + frand(&seed);
				xs[i] = add ? x[i] + d[i] : x[i];
			}
			double part[8] = {0}, ss = 0;
			int64_t i = 0;
			for (; i + 8 <= n; i += 8)
				for (int k = 0; k < 8; k++)
					part[k] += (double)(xs[i + k] * xs[i + k]);
			for (int k = 0; k < 8; k++)
				ss += part[k];
			for (; i < n; i++)
				ss += (double)(xs[i] * xs[i]);
			const float scale = 1.0f / sqrtf((float)(ss / (double)n) + 1e-5f);
			for (i = 0; i < n; i++)
				want[i] = (xs[i] * scale) * w[i];
			for (int k = 0; k < 8; k++)
				out[n + k] = 12345.0f;
			herd_rmsnorm(out, x, add ? d : NULL, w, n, 1e-5f);
			for (i = 0; i < n; i++) {
				if (x[i] != xs[i] || out[i] != want[i])
					fail_msg("n %lld add %d [%lld]: x %.9g want %.9g, out %.9g "
						 "want %.9g",
						 (long long)n, add, (long long)i, x[i], xs[i],
						 out[i], want[i]);
			}
			for (int k = 0; k < 8; k++)
				assert_true(out[n + k] == 12345.0f);
			free(x), free(d), free(w), free(want), free(out), free(xs);
		}
	if (herd_simd_enabled())
		herd_rerun_with("HERD_NO_SIMD", "rmsnorm_rounds_as_specified");
}

static struct herd_ctx *ctx(const struct herd_model *m, int threads, int n_batch)
{
	struct herd_ctx_params p = herd_ctx_default_params();
	p.n_ctx = 64;
	p.n_threads = threads;
	p.n_batch = n_batch;
	struct herd_ctx *c = NULL;
	if (herd_ctx_new(m, &p, &c))
		fail_msg("ctx: %s", herd_last_error());
	return c;
}

/* A 13-token prompt (all logits) and 3 single tokens through a context; returns the 16 rows. */
static float *run(struct herd_ctx *c, int32_t n_vocab)
{
	static const int32_t ids[13] = {1,   403, 407, 261, 378, 432, 383,
					286, 261, 376, 300, 17,	 99};
	float *out = malloc((size_t)16 * (size_t)n_vocab * sizeof *out);
	assert_int_equal(herd_ctx_eval(c, ids, 13, true), HERD_OK);
	memcpy(out, herd_ctx_logits(c, 0), (size_t)13 * (size_t)n_vocab * sizeof *out);
	for (int i = 0; i < 3; i++) {
		int32_t id = 50 + 7 * i;
		assert_int_equal(herd_ctx_eval(c, &id, 1, false), HERD_OK);
		memcpy(out + (size_t)(13 + i) * (size_t)n_vocab, herd_ctx_logits(c, 0),
		       (size_t)n_vocab * sizeof *out);
	}
	return out;
}

/* 1 thread with the defaults is the reference; 2 and 3 threads with every phase on every
 * thread, and activation tiles of a few tokens (so that prompt batches are cut into several
 * tiles), give the same bits. Models: F32 (float kernels), Q8_0 and Q4_0 (integer kernels on
 * Q8_0 activations; their ffn_down is F16). */
static void threads_and_tiles_give_the_same_bits(void **state)
{
	(void)state;
	static const char *const models[] = {HERD_SHARED("models/stories260K.gguf"),
					     HERD_SHARED("models/stories260K-Q8_0.gguf"),
					     HERD_SHARED("models/stories260K-Q4_0.gguf")};
	for (size_t f = 0; f < sizeof models / sizeof models[0]; f++) {
		const char *path = models[f];
		struct herd_model *m = NULL;
		if (herd_model_load(path, &m))
			fail_msg("%s: %s", path, herd_last_error());
		const int32_t V = herd_model_info(m)->n_vocab;
		struct herd_ctx *c = ctx(m, 1, 512);
		float *want = run(c, V);
		herd_ctx_free(c);
		static const struct {
			int threads, n_batch;
			size_t tile_bytes;
		} cases[] = {{2, 512, 0}, {3, 512, 0}, {1, 512, 700}, {2, 5, 700}, {3, 8, 1}};
		for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
			c = ctx(m, cases[k].threads, cases[k].n_batch);
			herd_ctx_tune(c, 0, cases[k].tile_bytes);
			float *got = run(c, V);
			for (size_t i = 0; i < (size_t)16 * (size_t)V; i++)
				if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
					fail_msg("%s, %d threads, batch %d, tile %zu bytes: token "
						 "%zu, logit %zu: "
						 "%.9g, 1 thread %.9g",
						 models[f], cases[k].threads, cases[k].n_batch,
						 cases[k].tile_bytes, i / (size_t)V, i % (size_t)V,
						 got[i], want[i]);
			free(got);
			herd_ctx_free(c);
		}
		free(want);
		herd_model_free(m);
	}
}

HERD_TEST_MAIN(((const struct CMUnitTest[]){
    cmocka_unit_test(attention_simd_matches_reference),
    cmocka_unit_test(silu_mul_matches_formula),
    cmocka_unit_test(rmsnorm_rounds_as_specified),
    cmocka_unit_test(threads_and_tiles_give_the_same_bits),
}))
