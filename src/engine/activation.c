/* activation — the float row operations between the matrices, with AVX2 eight at a time, else
 * plain loops:
 * - SwiGLU's g = silu(g) * u, silu(g) = g / (1 + e^-g), through avx2_math.h's exponential
 *   (within 2 ulp of expf; the row's tail through masked loads, so that every element gets the
 *   same instructions wherever a row is cut);
 * - RMSNorm, bit for bit the same both ways (see herd_rmsnorm). */
#include <math.h>

#include "quant_int.h"

/* The squares are summed in 8 interleaved double chains, chain k taking elements k, k + 8, ..:
 * the AVX2 version's two vectors of 4 doubles are those chains, in the same order. */
static void rmsnorm_ref(float *out, float *x, const float *d, const float *w, int64_t n, float eps)
{
	if (d)
		for (int64_t i = 0; i < n; i++)
			x[i] += d[i];
	double part[8] = {0};
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int k = 0; k < 8; k++)
			part[k] += (double)(x[i + k] * x[i + k]);
	double ss = 0;
	for (int k = 0; k < 8; k++)
		ss += part[k];
	for (; i < n; i++)
		ss += (double)(x[i] * x[i]);
	const float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
	for (i = 0; i < n; i++)
		out[i] = (x[i] * scale) * w[i];
}

static void silu_mul_ref(float *g, const float *u, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

#if defined(__x86_64__)
#include "avx2_math.h"

/* silu(g) = g t / (1 + t) below 0 and g / (1 + t) above, t = e^-|g| <= 1 (what exp8 takes,
 * and no overflow for large |g|). */
AVX2 static inline __m256 silu8(__m256 g)
{
	const __m256 t = exp8(_mm256_or_ps(g, _mm256_set1_ps(-0.0f)));
	const __m256 num = _mm256_blendv_ps(g, _mm256_mul_ps(g, t), g);
	return _mm256_div_ps(num, _mm256_add_ps(_mm256_set1_ps(1.0f), t));
}

AVX2 static void silu_mul_avx2(float *g, const float *u, int64_t n)
{
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(
		    g + i, _mm256_mul_ps(silu8(_mm256_loadu_ps(g + i)), _mm256_loadu_ps(u + i)));
	if (i < n) {
		const __m256i m = tail_mask((int32_t)(n - i));
		_mm256_maskstore_ps(g + i, m,
				    _mm256_mul_ps(silu8(_mm256_maskload_ps(g + i, m)),
						  _mm256_maskload_ps(u + i, m)));
	}
}

AVX2 static void rmsnorm_avx2(float *out, float *x, const float *d, const float *w, int64_t n,
			      float eps)
{
	__m256d lo = _mm256_setzero_pd(), hi = lo;
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 v = _mm256_loadu_ps(x + i);
		if (d) {
			v = _mm256_add_ps(v, _mm256_loadu_ps(d + i));
			_mm256_storeu_ps(x + i, v);
		}
		const __m256 sq = _mm256_mul_ps(v, v);
		lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
		hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
	}
	double part[8];
	_mm256_storeu_pd(part, lo);
	_mm256_storeu_pd(part + 4, hi);
	double ss = 0;
	for (int k = 0; k < 8; k++)
		ss += part[k];
	for (; i < n; i++) {
		if (d)
			x[i] += d[i];
		ss += (double)(x[i] * x[i]);
	}
	const float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
	const __m256 s8 = _mm256_set1_ps(scale);
	for (i = 0; i + 8 <= n; i += 8)
		_mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), s8),
							_mm256_loadu_ps(w + i)));
	for (; i < n; i++)
		out[i] = (x[i] * scale) * w[i];
}
#endif

void herd_silu_mul(float *g, const float *u, int64_t n)
{
#if defined(__x86_64__)
	if (herd_simd_enabled()) {
		silu_mul_avx2(g, u, n);
		return;
	}
#endif
	silu_mul_ref(g, u, n);
}

void herd_rmsnorm(float *out, float *x, const float *d, const float *w, int64_t n, float eps)
{
#if defined(__x86_64__)
	if (herd_simd_enabled()) {
		rmsnorm_avx2(out, x, d, w, n, eps);
		return;
	}
#endif
	rmsnorm_ref(out, x, d, w, n, eps);
}
