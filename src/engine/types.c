/* types — names and block geometry of every tensor type ggml has defined, so that a GGUF file
 * can be validated even when it holds a type herd cannot compute with. */
#include <string.h>
#include <strings.h>

#include "engine_int.h"

static const struct {
	const char *name;
	int block;    /* elements per block */
	size_t bytes; /* bytes per block */
} types[HERD_TYPE_COUNT] = {
	[0] = {"F32", 1, 4},
	[1] = {"F16", 1, 2},
	[2] = {"Q4_0", 32, 18},
	[3] = {"Q4_1", 32, 20},
	[6] = {"Q5_0", 32, 22},
	[7] = {"Q5_1", 32, 24},
	[8] = {"Q8_0", 32, 34},
	[9] = {"Q8_1", 32, 36},
	[10] = {"Q2_K", 256, 84},
	[11] = {"Q3_K", 256, 110},
	[12] = {"Q4_K", 256, 144},
	[13] = {"Q5_K", 256, 176},
	[14] = {"Q6_K", 256, 210},
	[15] = {"Q8_K", 256, 292},
	[16] = {"IQ2_XXS", 256, 66},
	[17] = {"IQ2_XS", 256, 74},
	[18] = {"IQ3_XXS", 256, 98},
	[19] = {"IQ1_S", 256, 50},
	[20] = {"IQ4_NL", 32, 18},
	[21] = {"IQ3_S", 256, 110},
	[22] = {"IQ2_S", 256, 82},
	[23] = {"IQ4_XS", 256, 136},
	[24] = {"I8", 1, 1},
	[25] = {"I16", 1, 2},
	[26] = {"I32", 1, 4},
	[27] = {"I64", 1, 8},
	[28] = {"F64", 1, 8},
	[29] = {"IQ1_M", 256, 56},
	[30] = {"BF16", 1, 2},
	[34] = {"TQ1_0", 256, 54},
	[35] = {"TQ2_0", 256, 66},
};

const char *herd_type_name(enum herd_type t)
{
	return (unsigned)t < HERD_TYPE_COUNT ? types[t].name : NULL;
}

int herd_type_block_size(enum herd_type t)
{
	return (unsigned)t < HERD_TYPE_COUNT ? types[t].block : 0;
}

size_t herd_type_block_bytes(enum herd_type t)
{
	return (unsigned)t < HERD_TYPE_COUNT ? types[t].bytes : 0;
}

size_t herd_type_row_bytes(enum herd_type t, int64_t n)
{
	HERD_ASSERT(herd_type_block_size(t) > 0 && n % herd_type_block_size(t) == 0);
	return (size_t)(n / herd_type_block_size(t)) * herd_type_block_bytes(t);
}

bool herd_type_from_name(const char *name, enum herd_type *out)
{
	for (int t = 0; t < HERD_TYPE_COUNT; t++) {
		if (types[t].name && !strcasecmp(types[t].name, name)) {
			*out = (enum herd_type)t;
			return true;
		}
	}
	return false;
}
