/* quant_int — block formats of the quantized tensor types, shared by the reference kernels
 * (quant.c) and the SIMD ones (quant_avx2.c). The layouts are ggml's, byte for byte, because
 * the blocks are read straight out of GGUF files: never reorder a field.
 *
 * Within a 32-element block (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL) byte j of qs holds element j in
 * its low nibble and element j + 16 in its high nibble. The K-quant layouts are spelled out
 * beside their packers in quant.c. */
#ifndef HERD_QUANT_INT_H
#define HERD_QUANT_INT_H

#include <assert.h>
#include <stdint.h>

#include "engine_int.h"

/* For the SIMD files' helpers: inlined whatever the optimizer thinks, or helpers without the
 * kernels' target extensions stay calls (and a prefetch in one is lost). */
#define INLINE static inline __attribute__((always_inline))

#define QK 32   /* elements per block of the 32-element types */
#define QK_K 256 /* elements per K-quant super-block */
#define K_SCALE_BYTES 12 /* 8 six-bit scales + 8 six-bit mins (Q4_K, Q5_K); 16 six-bit scales (Q3_K) */

typedef uint16_t herd_half; /* IEEE binary16 bits */

struct block_q4_0 {
	herd_half d;
	uint8_t qs[QK / 2];
};
struct block_q4_1 {
	herd_half d, m;
	uint8_t qs[QK / 2];
};
struct block_q5_0 {
	herd_half d;
	uint8_t qh[4]; /* bit j: fifth bit of element j (little-endian 32-bit word) */
	uint8_t qs[QK / 2];
};
struct block_q5_1 {
	herd_half d, m;
	uint8_t qh[4];
	uint8_t qs[QK / 2];
};
struct block_q8_0 {
	herd_half d;
	int8_t qs[QK];
};
struct block_q8_1 {
	herd_half d, s; /* s = d * sum(qs) */
	int8_t qs[QK];
};
struct block_iq4_nl {
	herd_half d;
	uint8_t qs[QK / 2]; /* indices into herd_iq4nl_values */
};
struct block_q2_K {
	uint8_t scales[QK_K / 16]; /* low nibble scale, high nibble min, per 16 elements */
	uint8_t qs[QK_K / 4];
	herd_half d, dmin;
};
struct block_q3_K {
	uint8_t hmask[QK_K / 8];
	uint8_t qs[QK_K / 4];
	uint8_t scales[K_SCALE_BYTES];
	herd_half d;
};
struct block_q4_K {
	herd_half d, dmin;
	uint8_t scales[K_SCALE_BYTES];
	uint8_t qs[QK_K / 2];
};
struct block_q5_K {
	herd_half d, dmin;
	uint8_t scales[K_SCALE_BYTES];
	uint8_t qh[QK_K / 8];
	uint8_t qs[QK_K / 2];
};
struct block_q6_K {
	uint8_t ql[QK_K / 2];
	uint8_t qh[QK_K / 4];
	int8_t scales[QK_K / 16];
	herd_half d;
};
struct block_q8_K {
	float d;
	int8_t qs[QK_K];
	int16_t bsums[QK_K / 16]; /* sum of each 16 qs */
};

static_assert(sizeof(struct block_q4_0) == 18, "Q4_0 block");
static_assert(sizeof(struct block_q4_1) == 20, "Q4_1 block");
static_assert(sizeof(struct block_q5_0) == 22, "Q5_0 block");
static_assert(sizeof(struct block_q5_1) == 24, "Q5_1 block");
static_assert(sizeof(struct block_q8_0) == 34, "Q8_0 block");
static_assert(sizeof(struct block_q8_1) == 36, "Q8_1 block");
static_assert(sizeof(struct block_iq4_nl) == 18, "IQ4_NL block");
static_assert(sizeof(struct block_q2_K) == 84, "Q2_K block");
static_assert(sizeof(struct block_q3_K) == 110, "Q3_K block");
static_assert(sizeof(struct block_q4_K) == 144, "Q4_K block");
static_assert(sizeof(struct block_q5_K) == 176, "Q5_K block");
static_assert(sizeof(struct block_q6_K) == 210, "Q6_K block");
static_assert(sizeof(struct block_q8_K) == 292, "Q8_K block");

/* The 16 levels of IQ4_NL (non-linear 4-bit), ggml's table. */
extern const int8_t herd_iq4nl_values[16];

/* Six-bit scale j and min j (0..7) of a Q4_K / Q5_K block. */
static inline void herd_k4_scale_min(const uint8_t *s, int j, int *sc, int *mn)
{
	if (j < 4) {
		*sc = s[j] & 63;
		*mn = s[j + 4] & 63;
	} else {
		*sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
		*mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
	}
}

/* Six-bit scale j (0..15) of a Q3_K block, as stored (0..63; the value is this minus 32). */
static inline int herd_k3_scale(const uint8_t *s, int j)
{
	int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
	int hi = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
	return lo | (hi << 4);
}

/* ---- SIMD kernels (quant_avx2.c): NULL / false when this CPU or build cannot run them ---- */
const struct herd_type_ops *herd_avx2_type_ops(enum herd_type t);
/* The fast matrix product; false when it has no kernel for wtype (the caller then uses the
 * reference loop). Same contract as herd_matmul. */
bool herd_avx2_matmul(enum herd_type wtype, const void *w, size_t w_stride, const void *x, size_t x_stride,
		      int64_t n, int64_t nt, int64_t r0, int64_t r1, float *y, int64_t ldy);
/* Whether the running CPU has AVX2, FMA and F16C (and HERD_NO_SIMD is not set). */
bool herd_simd_enabled(void);

/* ---- 16-row interleaved Q8_0 / Q4_0 matrices (quant_x16*.c) ---- */
/* Whether the CPU has AVX-512 F/BW/VL/VNNI besides herd_simd_enabled(), and HERD_NO_AVX512 is
 * not set: the packed matrices' kernels are then the AVX-512 ones, else the AVX2 ones (and the
 * packed bytes differ: a matrix is used by the set that packed it). */
bool herd_avx512_enabled(void);
/* Most blocks per row the kernel takes (n <= 32768): its per-token scratch is sized by it. */
#define HERD_X16_MAX_BLOCKS 1024
/* Whether herd_x16_pack takes a matrix of `rows` rows of n elements of type t: Q8_0 or Q4_0,
 * rows a multiple of 16, n / 32 <= HERD_X16_MAX_BLOCKS, and herd_simd_enabled(). */
bool herd_x16_packable(enum herd_type t, int64_t n, int64_t rows);
/* Bytes of the packed matrix: the file's, plus 32 per 16 rows when n / 32 is odd. */
size_t herd_x16_bytes(enum herd_type t, int64_t n, int64_t rows);
/* Writes the packable matrix src (rows back to back, as in a GGUF file) interleaved into dst,
 * herd_x16_bytes long and 64-byte aligned. */
void herd_x16_pack(enum herd_type t, const void *src, int64_t n, int64_t rows, void *dst);
/* Row `row` of a packed matrix as n floats (what to_float gives for the file's row). */
void herd_x16_row_to_float(enum herd_type t, const void *w, int64_t n, int64_t row, float *dst);
/* What the kernels need of a token's block i: where its integer sum starts (-offset x sum(x),
 * for an offset that made the weights unsigned), and d_x. */
struct herd_x16_xblock {
	int32_t start[HERD_X16_MAX_BLOCKS];
	float d[HERD_X16_MAX_BLOCKS];
};
/* One thread's scratch for herd_x16_matmul: a single token's blocks worked out for the
 * kernels, kept for the next call with the same token x (a matrix phase's further chunks).
 * Whoever changes the activations sets x to NULL first. */
struct herd_x16_prep {
	const void *x; /* the token b was worked out for; NULL: none */
	int64_t nb;
	int off;
	struct herd_x16_xblock b;
};
/* herd_matmul for a packed matrix w: y[t * ldy + r] = row r . token t for r in [r0, r1), which
 * must be multiples of 16, and t < nt; x holds nt rows of Q8_0 blocks x_stride apart. prep:
 * NULL, or the thread's scratch (used when nt is 1). */
void herd_x16_matmul(enum herd_type t, const void *w, int64_t n, const void *x, size_t x_stride,
		     int64_t nt, int64_t r0, int64_t r1, float *y, int64_t ldy,
		     struct herd_x16_prep *prep);

#endif
