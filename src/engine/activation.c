/* activation — SwiGLU's g = silu(g) * u over a row, silu(g) = g / (1 + e^-g): with AVX2 eight
 * at a time through avx2_math.h's exponential (within 2 ulp of expf; the row's tail through masked
 * loads, so that every element gets the same instructions wherever a row is cut), else the
 * plain loop with expf. */
#include <math.h>

#include "quant_int.h"

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
