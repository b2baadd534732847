/* quant_x16 — Q8_0 and Q4_0 weight matrices rewritten 16 rows interleaved at load, and their
 * matrix product. This file holds the layout (packing, a row back as floats) and picks the
 * kernels: quant_x16_avx512.c (AVX-512 VNNI: a register's 16 int32 lanes are a group's 16
 * rows) or quant_x16_avx2.c (AVX2: each half of the group, 8 rows, is one register).
 *
 * The one thing to know: in a file, a row's blocks lie back to back, so a kernel must sum each
 * block's 32 products across a register and then scale it alone — per 32 weights a dozen
 * instructions, which kept generation far below the memory's speed. Here 16 rows are one group
 * and each 64-byte line holds the same 4 element bytes of the 16 rows, one row per int32 lane:
 * a multiply-add against those 4 activation bytes broadcast advances every row's dot product at
 * once, and the rows' block scales (stored together) convert as one vector. No horizontal sums.
 *
 * A group of 16 rows and nb blocks per row is laid out as
 *   q[nb][K][16][4] bytes   (K = 8 for Q8_0: element bytes; K = 4 for Q4_0: packed bytes)
 *   d[nb][16]        fp16    (the blocks' scales), padded to 64 bytes so that groups stay
 *                            aligned: the file's size, plus 32 bytes a group when nb is odd
 * where q[i][k][r] holds row r's bytes 4k..4k+3 of block i. Q4_0's byte j holds element j in its
 * low nibble and element j + 16 in its high one (as in the file). For AVX-512's VPDPBUSD
 * (unsigned x signed bytes) Q8_0 weights are stored as w ^ 0x80 = w + 128; the AVX2 kernels
 * take them as they are. Q4_0's nibbles u = w + 8 already are unsigned. */
#include <stdlib.h>
#include <string.h>

#include "quant_x16.h"

bool herd_avx512_enabled(void)
{
	static int enabled = -1; /* a benign race: every thread computes the same answer */
	if (enabled < 0) {
		const char *e = getenv("HERD_NO_AVX512");
		enabled = !(e && *e && strcmp(e, "0") != 0) && herd_simd_enabled() &&
			  __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
			  __builtin_cpu_supports("avx512vl") &&
			  __builtin_cpu_supports("avx512vnni");
	}
	return enabled;
}

/* What the packing adds to Q8_0 weight bytes: 128 for the AVX-512 kernels, else nothing. */
static unsigned q8_bias(void)
{
	return herd_avx512_enabled() ? 0x80 : 0;
}

static const struct x16_kernels *kernels(enum herd_type t)
{
	return herd_avx512_enabled() ? herd_x16_avx512_kernels(t) : herd_x16_avx2_kernels(t);
}

/* Bytes of one group: its q part, then its scales padded to 64 bytes. */
static size_t group_bytes(enum herd_type t, int64_t nb)
{
	return (size_t)nb * x16_block_q(t) +
	       ((size_t)nb * X16_G * sizeof(herd_half) + 63) / 64 * 64;
}

size_t herd_x16_bytes(enum herd_type t, int64_t n, int64_t rows)
{
	return (size_t)(rows / X16_G) * group_bytes(t, n / QK);
}

bool herd_x16_packable(enum herd_type t, int64_t n, int64_t rows)
{
	return (t == HERD_TYPE_Q8_0 || t == HERD_TYPE_Q4_0) && n > 0 && n % QK == 0 &&
	       n / QK <= HERD_X16_MAX_BLOCKS && rows > 0 && rows % X16_G == 0 &&
	       herd_simd_enabled();
}

void herd_x16_pack(enum herd_type t, const void *src, int64_t n, int64_t rows, void *dst)
{
	/* both block types are {fp16 d; bytes qs[]}: d at offset 0, qs right after it */
	const int64_t nb = n / QK;
	const size_t qb = x16_block_q(t), bb = sizeof(herd_half) + qb / X16_G;
	const size_t row_bytes = (size_t)nb * bb, gb = group_bytes(t, nb);
	const uint32_t bias = t == HERD_TYPE_Q8_0 ? q8_bias() * 0x01010101u : 0;
	for (int64_t g = 0; g < rows / X16_G; g++) {
		uint8_t *q = (uint8_t *)dst + (size_t)g * gb;
		herd_half *d = (herd_half *)(q + (size_t)nb * qb);
		for (int r = 0; r < X16_G; r++) {
			const uint8_t *row =
			    (const uint8_t *)src + (size_t)(g * X16_G + r) * row_bytes;
			for (int64_t i = 0; i < nb; i++) {
				const uint8_t *b = row + (size_t)i * bb;
				memcpy(&d[i * X16_G + r], b, sizeof(herd_half));
				for (size_t k = 0; k < qb / (X16_G * 4); k++) {
					uint32_t v;
					memcpy(&v, b + sizeof(herd_half) + 4 * k, 4);
					v ^= bias;
					memcpy(q + (size_t)i * qb + (k * X16_G + (size_t)r) * 4, &v,
					       4);
				}
			}
		}
	}
}

void herd_x16_row_to_float(enum herd_type t, const void *w, int64_t n, int64_t row, float *dst)
{
	const int64_t nb = n / QK, g = row / X16_G;
	const int r = (int)(row % X16_G);
	const size_t qb = x16_block_q(t);
	const uint8_t *q = (const uint8_t *)w + (size_t)g * group_bytes(t, nb);
	const herd_half *d = (const herd_half *)(q + (size_t)nb * qb);
	const uint8_t bias = (uint8_t)q8_bias();
	for (int64_t i = 0; i < nb; i++) {
		const float s = herd_fp16_to_fp32(d[i * X16_G + r]);
		float *o = dst + i * QK;
		for (int k = 0; k < (int)(qb / (X16_G * 4)); k++)
			for (int j = 0; j < 4; j++) {
				uint8_t v =
				    q[(size_t)i * qb + (size_t)(k * X16_G + r) * 4 + (size_t)j];
				if (t == HERD_TYPE_Q8_0) {
					o[4 * k + j] = s * (float)(int8_t)(v ^ bias);
				} else {
					o[4 * k + j] = s * (float)((v & 0xF) - 8);
					o[16 + 4 * k + j] = s * (float)((v >> 4) - 8);
				}
			}
	}
}

/* Rows [r0, r1) of the packed matrix at q0 against one token x, into y[r0 .. r1). */
static void rows(const struct x16_kernels *K, const uint8_t *q0, size_t gb, int64_t nb,
		 const struct block_q8_0 *x, const struct herd_x16_xblock *xb, int64_t r0,
		 int64_t r1, float *y)
{
	const int64_t wide = K->wide * X16_G;
	int64_t r = r0;
	for (; r + wide <= r1; r += wide)
		K->rows_wide(q0 + (size_t)(r / X16_G) * gb, gb, nb, x, xb, y + r);
	for (; r < r1; r += X16_G)
		K->rows1(q0 + (size_t)(r / X16_G) * gb, gb, nb, x, xb, y + r);
}

void herd_x16_matmul(enum herd_type t, const void *w, int64_t n, const void *x, size_t x_stride,
		     int64_t nt, int64_t r0, int64_t r1, float *y, int64_t ldy,
		     struct herd_x16_prep *prep)
{
	HERD_ASSERT(r0 % X16_G == 0 && r1 % X16_G == 0 && n % QK == 0 &&
		    n / QK <= HERD_X16_MAX_BLOCKS);
	const int64_t nb = n / QK;
	const size_t gb = group_bytes(t, nb);
	const struct x16_kernels *K = kernels(t);
	if (nt == 1 && prep) {
		if (prep->x != x || prep->nb != nb || prep->off != K->offset) {
			herd_x16_prepare(x, nb, K->offset, &prep->b);
			prep->x = x;
			prep->nb = nb;
			prep->off = K->offset;
		}
		rows(K, w, gb, nb, x, &prep->b, r0, r1, y);
		return;
	}
	struct herd_x16_xblock xb[X16_TT];
	for (int64_t t0 = 0; t0 < nt; t0 += X16_TT) {
		const int tn = (int)(nt - t0 < X16_TT ? nt - t0 : X16_TT);
		const struct block_q8_0 *xt[X16_TT];
		for (int k = 0; k < tn; k++) {
			xt[k] = (const struct block_q8_0 *)((const char *)x +
							    (size_t)(t0 + k) * x_stride);
			herd_x16_prepare(xt[k], nb, K->offset, &xb[k]);
		}
		if (tn == 1) {
			rows(K, w, gb, nb, xt[0], &xb[0], r0, r1, y + t0 * ldy);
			continue;
		}
		for (int64_t r = r0; r < r1; r += X16_G) {
			float *yt[X16_TT];
			for (int k = 0; k < tn; k++)
				yt[k] = y + (t0 + k) * ldy + r;
			K->tokens[tn]((const uint8_t *)w + (size_t)(r / X16_G) * gb, nb, xt, xb,
				      yt);
		}
	}
}
