/* quant_x16 — what the packed-matrix files share: the layout's constants and the table of
 * kernels that quant_x16_avx512.c and quant_x16_avx2.c each fill for Q8_0 and Q4_0, and that
 * quant_x16.c (layout, packing, dispatch) calls through. */
#ifndef HERD_QUANT_X16_H
#define HERD_QUANT_X16_H

#include "quant_int.h"

#define X16_G 16 /* rows per group */
#define X16_TT 4 /* most tokens per prompt pass over a group's blocks */

/* Bytes of one block's q part for a group: 16 rows x 32 elements. */
static inline size_t x16_block_q(enum herd_type t)
{
	return t == HERD_TYPE_Q8_0 ? X16_G * QK : X16_G * QK / 2;
}

/* What every group needs of a token's block i: where its integer sum starts (-offset x
 * sum(x), for an offset that made the weights unsigned), and d_x. */
struct x16_xblock {
	int32_t start[HERD_X16_MAX_BLOCKS];
	float d[HERD_X16_MAX_BLOCKS];
};

/* One instruction set's kernels for one type. q: a group's bytes; gb: bytes between groups;
 * nb: blocks a row. rows_wide: `wide` groups (rows1: one) against one token, into
 * y[0 .. 16 x groups); tokens[nt]: one group against nt (2..X16_TT) tokens, into y[t][0..15]. */
struct x16_kernels {
	int wide;
	void (*prepare)(const struct block_q8_0 *x, int64_t nb, struct x16_xblock *o);
	void (*rows1)(const uint8_t *q, size_t gb, int64_t nb, const struct block_q8_0 *x,
		      const struct x16_xblock *xb, float *y);
	void (*rows_wide)(const uint8_t *q, size_t gb, int64_t nb, const struct block_q8_0 *x,
			  const struct x16_xblock *xb, float *y);
	void (*tokens[X16_TT + 1])(const uint8_t *q, int64_t nb, const struct block_q8_0 *const *x,
				   const struct x16_xblock *xb, float *const *y);
};

/* The kernels for Q8_0 or Q4_0. The AVX-512 ones take Q8_0 stored as w + 128, the AVX2 ones
 * as w (quant_x16.c packs for the set the CPU runs). */
const struct x16_kernels *herd_x16_avx512_kernels(enum herd_type t);
const struct x16_kernels *herd_x16_avx2_kernels(enum herd_type t);

#endif
