/* gguf — the GGUF reader: maps a file read-only and validates every byte of its header before
 * anything else looks at it. After herd_gguf_open succeeds, every accessor is a bounds-safe
 * look-up into tables built here: no later code parses raw header bytes.
 *
 * Format (v2/v3, little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv, then n_kv
 * (string key, u32 type, value), n_tensors (string name, u32 n_dims, u64 ne[n_dims], u32 type,
 * u64 offset), padding to the alignment, tensor data. A string is u64 length + bytes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine_int.h"
#include "limits.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "herd reads GGUF (little-endian) with plain loads: a big-endian port needs byte swaps here"
#endif

#define GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_NAME 256 /* tensor names (ggml's own limit is 64) */

struct kv {
	struct herd_gguf_str key;
	enum herd_gguf_vtype type;
	const uint8_t *val;          /* scalar value, or the first array element */
	enum herd_gguf_vtype arr_type;
	uint64_t arr_len;
	const uint8_t **arr_strs;    /* string arrays: where each element (its u64 length) starts */
};

struct herd_gguf {
	const uint8_t *map;
	uint64_t size;
	uint32_t version;
	uint64_t alignment;
	uint64_t data_offset;
	int64_t n_kv, n_tensors;
	struct kv *kvs;
	struct herd_tensor *tensors;
	char *names; /* NUL-terminated tensor names, back to back */
};

/* ---- a bounds-checked cursor over the mapping ---- */
struct cur {
	const uint8_t *p, *end;
	const uint8_t *base;
	const char *path;
	const char *what; /* what is being read, for messages */
};

static enum herd_err truncated(const struct cur *c, size_t need)
{
	return herd_fail(HERD_ERR_FORMAT, "%s: truncated: %s needs %zu bytes at offset %zu, file has %zu",
			 c->path, c->what, need, (size_t)(c->p - c->base), (size_t)(c->end - c->base));
}

static enum herd_err take(struct cur *c, void *dst, size_t n)
{
	if ((size_t)(c->end - c->p) < n)
		return truncated(c, n);
	memcpy(dst, c->p, n);
	c->p += n;
	return HERD_OK;
}

static enum herd_err skip(struct cur *c, uint64_t n)
{
	if ((uint64_t)(c->end - c->p) < n)
		return truncated(c, (size_t)n);
	c->p += n;
	return HERD_OK;
}

static enum herd_err take_str(struct cur *c, struct herd_gguf_str *s)
{
	uint64_t len = 0;
	enum herd_err e = take(c, &len, 8);
	if (e)
		return e;
	if (len > HERD_GGUF_MAX_STRING)
		return herd_fail(HERD_ERR_FORMAT, "%s: %s: string length %llu at offset %zu is over the limit %u",
				 c->path, c->what, (unsigned long long)len, (size_t)(c->p - c->base - 8),
				 HERD_GGUF_MAX_STRING);
	s->ptr = (const char *)c->p;
	s->len = len;
	return skip(c, len);
}

static const size_t scalar_size[HERD_GGUF_VTYPE_COUNT] = {
	[HERD_GGUF_UINT8] = 1, [HERD_GGUF_INT8] = 1,    [HERD_GGUF_UINT16] = 2, [HERD_GGUF_INT16] = 2,
	[HERD_GGUF_UINT32] = 4, [HERD_GGUF_INT32] = 4,  [HERD_GGUF_FLOAT32] = 4, [HERD_GGUF_BOOL] = 1,
	[HERD_GGUF_UINT64] = 8, [HERD_GGUF_INT64] = 8,  [HERD_GGUF_FLOAT64] = 8,
};

const char *herd_gguf_vtype_name(enum herd_gguf_vtype t)
{
	static const char *names[HERD_GGUF_VTYPE_COUNT] = {
		"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
	};
	return (unsigned)t < HERD_GGUF_VTYPE_COUNT ? names[t] : "?";
}

static enum herd_err read_kv(struct cur *c, struct kv *kv, int64_t i, int64_t n)
{
	char what[96];
	snprintf(what, sizeof what, "the key of metadata pair %lld of %lld", (long long)i, (long long)n);
	c->what = what;
	enum herd_err e = take_str(c, &kv->key);
	if (e)
		return e;
	if (kv->key.len == 0)
		return herd_fail(HERD_ERR_FORMAT, "%s: metadata pair %lld has an empty key", c->path, (long long)i);
	snprintf(what, sizeof what, "metadata '%.*s'", (int)(kv->key.len > 60 ? 60 : kv->key.len), kv->key.ptr);
	uint32_t type;
	if ((e = take(c, &type, 4)))
		return e;
	if (type >= HERD_GGUF_VTYPE_COUNT)
		return herd_fail(HERD_ERR_FORMAT, "%s: %s has unknown value type %u", c->path, what, type);
	kv->type = type;
	kv->val = c->p;
	if (type == HERD_GGUF_STRING) {
		struct herd_gguf_str s;
		return take_str(c, &s);
	}
	if (type != HERD_GGUF_ARRAY)
		return skip(c, scalar_size[type]);

	uint32_t at;
	uint64_t len;
	if ((e = take(c, &at, 4)) || (e = take(c, &len, 8)))
		return e;
	if (at >= HERD_GGUF_VTYPE_COUNT)
		return herd_fail(HERD_ERR_FORMAT, "%s: %s is an array of unknown type %u", c->path, what, at);
	if (at == HERD_GGUF_ARRAY)
		return herd_fail(HERD_ERR_UNSUPPORTED, "%s: %s is an array of arrays", c->path, what);
	if (len > HERD_GGUF_MAX_ARRAY)
		return herd_fail(HERD_ERR_FORMAT, "%s: %s: array length %llu is over the limit %u", c->path, what,
				 (unsigned long long)len, HERD_GGUF_MAX_ARRAY);
	kv->arr_type = at;
	kv->arr_len = len;
	kv->val = c->p;
	if (at != HERD_GGUF_STRING)
		return skip(c, len * scalar_size[at]); /* len ≤ 2^24, size ≤ 8: no overflow */
	/* each string takes at least its 8-byte length: a count the file cannot hold is caught
	 * before allocating for it */
	if (len > (uint64_t)(c->end - c->p) / 8)
		return truncated(c, (size_t)len * 8);
	kv->arr_strs = herd_xmalloc(len * sizeof *kv->arr_strs);
	for (uint64_t j = 0; j < len; j++) {
		struct herd_gguf_str s;
		kv->arr_strs[j] = c->p;
		if ((e = take_str(c, &s)))
			return e;
	}
	return HERD_OK;
}

static enum herd_err read_tensor(struct cur *c, struct herd_gguf *g, int64_t i, struct herd_gguf_str *name)
{
	struct herd_tensor *t = &g->tensors[i];
	char what[96];
	snprintf(what, sizeof what, "the name of tensor %lld of %lld", (long long)i, (long long)g->n_tensors);
	c->what = what;
	enum herd_err e = take_str(c, name);
	if (e)
		return e;
	if (name->len == 0 || name->len > GGUF_MAX_NAME || memchr(name->ptr, 0, name->len))
		return herd_fail(HERD_ERR_FORMAT, "%s: tensor %lld has an invalid name (length %llu)", c->path,
				 (long long)i, (unsigned long long)name->len);
	snprintf(what, sizeof what, "tensor '%.*s'", (int)name->len, name->ptr);
	uint32_t n_dims, type;
	if ((e = take(c, &n_dims, 4)))
		return e;
	if (n_dims < 1 || n_dims > HERD_GGUF_MAX_DIMS)
		return herd_fail(HERD_ERR_FORMAT, "%s: %s has %u dimensions (must be 1..%d)", c->path, what, n_dims,
				 HERD_GGUF_MAX_DIMS);
	t->n_dims = (int)n_dims;
	uint64_t n_elems = 1;
	for (int d = 0; d < 4; d++) {
		uint64_t ne = 1;
		if (d < (int)n_dims && (e = take(c, &ne, 8)))
			return e;
		if (ne == 0 || ne > (uint64_t)INT64_MAX / n_elems)
			return herd_fail(HERD_ERR_FORMAT, "%s: %s: dimension %d is %llu (zero, or too many elements)",
					 c->path, what, d, (unsigned long long)ne);
		n_elems *= ne;
		t->ne[d] = (int64_t)ne;
	}
	if ((e = take(c, &type, 4)) || (e = take(c, &t->offset, 8)))
		return e;
	if (type >= HERD_TYPE_COUNT || !herd_type_name(type))
		return herd_fail(HERD_ERR_FORMAT, "%s: %s has unknown type %u", c->path, what, type);
	t->type = type;
	int bs = herd_type_block_size(type);
	if (t->ne[0] % bs)
		return herd_fail(HERD_ERR_FORMAT, "%s: %s: row length %lld is not a multiple of %s's block of %d",
				 c->path, what, (long long)t->ne[0], herd_type_name(type), bs);
	uint64_t rows = n_elems / (uint64_t)t->ne[0];
	uint64_t row_bytes = (uint64_t)t->ne[0] / bs * herd_type_block_bytes(type);
	if (row_bytes && rows > UINT64_MAX / row_bytes)
		return herd_fail(HERD_ERR_FORMAT, "%s: %s is too large", c->path, what);
	t->nbytes = rows * row_bytes;
	return HERD_OK;
}

static enum herd_err parse(struct herd_gguf *g, const char *path)
{
	struct cur c = {g->map, g->map + g->size, g->map, path, "the header"};
	uint32_t magic;
	enum herd_err e;
	if ((e = take(&c, &magic, 4)))
		return e;
	if (magic != GGUF_MAGIC)
		return herd_fail(HERD_ERR_FORMAT, "%s: not a GGUF file (magic %02x %02x %02x %02x, expected \"GGUF\")",
				 path, g->map[0], g->map[1], g->map[2], g->map[3]);
	if ((e = take(&c, &g->version, 4)))
		return e;
	if (g->version != 2 && g->version != 3)
		return herd_fail(HERD_ERR_UNSUPPORTED, "%s: GGUF version %u (herd reads versions 2 and 3)", path,
				 g->version);
	uint64_t nt, nkv;
	if ((e = take(&c, &nt, 8)) || (e = take(&c, &nkv, 8)))
		return e;
	if (nt > HERD_GGUF_MAX_TENSORS)
		return herd_fail(HERD_ERR_FORMAT, "%s: tensor count %llu is over the limit %u", path,
				 (unsigned long long)nt, HERD_GGUF_MAX_TENSORS);
	if (nkv > HERD_GGUF_MAX_KV)
		return herd_fail(HERD_ERR_FORMAT, "%s: metadata count %llu is over the limit %u", path,
				 (unsigned long long)nkv, HERD_GGUF_MAX_KV);
	g->n_kv = (int64_t)nkv;
	g->n_tensors = (int64_t)nt;
	g->kvs = herd_xcalloc(nkv, sizeof *g->kvs);
	g->tensors = herd_xcalloc(nt, sizeof *g->tensors);

	for (int64_t i = 0; i < g->n_kv; i++) {
		if ((e = read_kv(&c, &g->kvs[i], i, g->n_kv)))
			return e;
		for (int64_t j = 0; j < i; j++)
			if (g->kvs[j].key.len == g->kvs[i].key.len &&
			    !memcmp(g->kvs[j].key.ptr, g->kvs[i].key.ptr, g->kvs[i].key.len))
				return herd_fail(HERD_ERR_FORMAT, "%s: duplicate metadata key '%.*s'", path,
						 (int)g->kvs[i].key.len, g->kvs[i].key.ptr);
	}

	g->alignment = GGUF_DEFAULT_ALIGNMENT;
	int64_t ai = herd_gguf_find_kv(g, "general.alignment");
	if (ai >= 0) {
		int64_t a;
		if (g->kvs[ai].type != HERD_GGUF_UINT32 || !herd_gguf_kv_int(g, ai, &a) || a <= 0 || (a & (a - 1)))
			return herd_fail(HERD_ERR_FORMAT, "%s: general.alignment must be a power of two (u32)", path);
		g->alignment = (uint64_t)a;
	}

	struct herd_gguf_str *names = herd_xcalloc(nt, sizeof *names);
	size_t names_bytes = 0;
	for (int64_t i = 0; i < g->n_tensors && !e; i++) {
		e = read_tensor(&c, g, i, &names[i]);
		names_bytes += names[i].len + 1;
	}
	if (!e) {
		char *p = g->names = herd_xmalloc(names_bytes);
		for (int64_t i = 0; i < g->n_tensors; i++) {
			memcpy(p, names[i].ptr, names[i].len);
			p[names[i].len] = 0;
			g->tensors[i].name = p;
			p += names[i].len + 1;
		}
	}
	free(names);
	if (e)
		return e;
	for (int64_t i = 0; i < g->n_tensors; i++)
		for (int64_t j = 0; j < i; j++)
			if (!strcmp(g->tensors[i].name, g->tensors[j].name))
				return herd_fail(HERD_ERR_FORMAT, "%s: duplicate tensor name '%s'", path,
						 g->tensors[i].name);

	uint64_t pos = (uint64_t)(c.p - g->map);
	g->data_offset = (pos + g->alignment - 1) / g->alignment * g->alignment;
	if (g->n_tensors && g->data_offset > g->size)
		return herd_fail(HERD_ERR_FORMAT, "%s: truncated: tensor data would start at %llu, file has %llu bytes",
				 path, (unsigned long long)g->data_offset, (unsigned long long)g->size);
	uint64_t data_size = g->size > g->data_offset ? g->size - g->data_offset : 0;
	for (int64_t i = 0; i < g->n_tensors; i++) {
		struct herd_tensor *t = &g->tensors[i];
		if (t->offset % g->alignment)
			return herd_fail(HERD_ERR_FORMAT, "%s: tensor '%s' offset %llu is not aligned to %llu", path,
					 t->name, (unsigned long long)t->offset, (unsigned long long)g->alignment);
		if (t->offset > data_size || t->nbytes > data_size - t->offset)
			return herd_fail(HERD_ERR_FORMAT,
					 "%s: tensor '%s' (%llu bytes at data offset %llu) ends past the end of the file "
					 "(%llu bytes of data)",
					 path, t->name, (unsigned long long)t->nbytes, (unsigned long long)t->offset,
					 (unsigned long long)data_size);
		t->data = g->map + g->data_offset + t->offset;
	}
	return HERD_OK;
}

enum herd_err herd_gguf_open(const char *path, struct herd_gguf **out)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return herd_fail(HERD_ERR_IO, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return herd_fail(HERD_ERR_IO, "%s: not a regular file", path);
	}
	if (st.st_size < 24) {
		close(fd);
		return herd_fail(HERD_ERR_FORMAT, "%s: truncated: %lld bytes is too short for a GGUF header", path,
				 (long long)st.st_size);
	}
	void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return herd_fail(HERD_ERR_IO, "%s: mmap: %s", path, strerror(errno));
	struct herd_gguf *g = herd_xcalloc(1, sizeof *g);
	g->map = map;
	g->size = (uint64_t)st.st_size;
	enum herd_err e = parse(g, path);
	if (e) {
		herd_gguf_close(g);
		return e;
	}
	*out = g;
	return HERD_OK;
}

void herd_gguf_close(struct herd_gguf *g)
{
	if (!g)
		return;
	for (int64_t i = 0; i < g->n_kv; i++)
		free(g->kvs[i].arr_strs);
	free(g->kvs);
	free(g->tensors);
	free(g->names);
	munmap((void *)g->map, g->size);
	free(g);
}

uint32_t herd_gguf_version(const struct herd_gguf *g)
{
	return g->version;
}

uint64_t herd_gguf_file_size(const struct herd_gguf *g)
{
	return g->size;
}

uint64_t herd_gguf_alignment(const struct herd_gguf *g)
{
	return g->alignment;
}

uint64_t herd_gguf_data_offset(const struct herd_gguf *g)
{
	return g->data_offset;
}

int64_t herd_gguf_kv_count(const struct herd_gguf *g)
{
	return g->n_kv;
}

static const struct kv *kv_at(const struct herd_gguf *g, int64_t i)
{
	HERD_ASSERT(i >= 0 && i < g->n_kv);
	return &g->kvs[i];
}

struct herd_gguf_str herd_gguf_kv_key(const struct herd_gguf *g, int64_t i)
{
	return kv_at(g, i)->key;
}

int64_t herd_gguf_find_kv(const struct herd_gguf *g, const char *key)
{
	size_t n = strlen(key);
	for (int64_t i = 0; i < g->n_kv; i++)
		if (g->kvs[i].key.len == n && !memcmp(g->kvs[i].key.ptr, key, n))
			return i;
	return -1;
}

enum herd_gguf_vtype herd_gguf_kv_type(const struct herd_gguf *g, int64_t i)
{
	return kv_at(g, i)->type;
}

/* Reads one numeric/bool value of type t at p as an integer or a double. */
static bool num_int(enum herd_gguf_vtype t, const uint8_t *p, int64_t *out)
{
	union {
		uint8_t u8;
		int8_t i8;
		uint16_t u16;
		int16_t i16;
		uint32_t u32;
		int32_t i32;
		uint64_t u64;
		int64_t i64;
	} v;
	if ((unsigned)t >= HERD_GGUF_VTYPE_COUNT || !scalar_size[t] || t == HERD_GGUF_FLOAT32 ||
	    t == HERD_GGUF_FLOAT64)
		return false;
	memcpy(&v, p, scalar_size[t]);
	switch (t) {
	case HERD_GGUF_UINT8: *out = v.u8; return true;
	case HERD_GGUF_BOOL: *out = v.u8 != 0; return true;
	case HERD_GGUF_INT8: *out = v.i8; return true;
	case HERD_GGUF_UINT16: *out = v.u16; return true;
	case HERD_GGUF_INT16: *out = v.i16; return true;
	case HERD_GGUF_UINT32: *out = v.u32; return true;
	case HERD_GGUF_INT32: *out = v.i32; return true;
	case HERD_GGUF_INT64: *out = v.i64; return true;
	case HERD_GGUF_UINT64:
		if (v.u64 > (uint64_t)INT64_MAX)
			return false;
		*out = (int64_t)v.u64;
		return true;
	default: return false;
	}
}

static bool num_float(enum herd_gguf_vtype t, const uint8_t *p, double *out)
{
	if (t == HERD_GGUF_FLOAT32) {
		float f;
		memcpy(&f, p, 4);
		*out = f;
		return true;
	}
	if (t == HERD_GGUF_FLOAT64) {
		memcpy(out, p, 8);
		return true;
	}
	int64_t i;
	if (!num_int(t, p, &i))
		return false;
	*out = (double)i;
	return true;
}

static struct herd_gguf_str str_at(const uint8_t *p)
{
	struct herd_gguf_str s;
	memcpy(&s.len, p, 8);
	s.ptr = (const char *)p + 8;
	return s;
}

bool herd_gguf_kv_int(const struct herd_gguf *g, int64_t i, int64_t *out)
{
	const struct kv *kv = kv_at(g, i);
	return num_int(kv->type, kv->val, out);
}

bool herd_gguf_kv_float(const struct herd_gguf *g, int64_t i, double *out)
{
	const struct kv *kv = kv_at(g, i);
	return num_float(kv->type, kv->val, out);
}

struct herd_gguf_str herd_gguf_kv_str(const struct herd_gguf *g, int64_t i)
{
	const struct kv *kv = kv_at(g, i);
	if (kv->type != HERD_GGUF_STRING)
		return (struct herd_gguf_str){NULL, 0};
	return str_at(kv->val);
}

enum herd_gguf_vtype herd_gguf_arr_type(const struct herd_gguf *g, int64_t i)
{
	const struct kv *kv = kv_at(g, i);
	return kv->type == HERD_GGUF_ARRAY ? kv->arr_type : HERD_GGUF_VTYPE_COUNT;
}

uint64_t herd_gguf_arr_len(const struct herd_gguf *g, int64_t i)
{
	const struct kv *kv = kv_at(g, i);
	return kv->type == HERD_GGUF_ARRAY ? kv->arr_len : 0;
}

bool herd_gguf_arr_int(const struct herd_gguf *g, int64_t i, uint64_t j, int64_t *out)
{
	const struct kv *kv = kv_at(g, i);
	if (kv->type != HERD_GGUF_ARRAY || j >= kv->arr_len || kv->arr_type == HERD_GGUF_STRING)
		return false;
	return num_int(kv->arr_type, kv->val + j * scalar_size[kv->arr_type], out);
}

bool herd_gguf_arr_float(const struct herd_gguf *g, int64_t i, uint64_t j, double *out)
{
	const struct kv *kv = kv_at(g, i);
	if (kv->type != HERD_GGUF_ARRAY || j >= kv->arr_len || kv->arr_type == HERD_GGUF_STRING)
		return false;
	return num_float(kv->arr_type, kv->val + j * scalar_size[kv->arr_type], out);
}

struct herd_gguf_str herd_gguf_arr_str(const struct herd_gguf *g, int64_t i, uint64_t j)
{
	const struct kv *kv = kv_at(g, i);
	if (kv->type != HERD_GGUF_ARRAY || kv->arr_type != HERD_GGUF_STRING || j >= kv->arr_len)
		return (struct herd_gguf_str){NULL, 0};
	return str_at(kv->arr_strs[j]);
}

static enum herd_err lookup(const struct herd_gguf *g, const char *key, int64_t *i)
{
	*i = herd_gguf_find_kv(g, key);
	if (*i < 0)
		return herd_fail(HERD_ERR_NOT_FOUND, "metadata key '%s' is missing", key);
	return HERD_OK;
}

enum herd_err herd_gguf_get_int(const struct herd_gguf *g, const char *key, int64_t min, int64_t max, int64_t *out)
{
	int64_t i, v;
	enum herd_err e = lookup(g, key, &i);
	if (e)
		return e;
	if (g->kvs[i].type == HERD_GGUF_BOOL || !herd_gguf_kv_int(g, i, &v))
		return herd_fail(HERD_ERR_FORMAT, "metadata '%s' must be an integer, is %s", key,
				 herd_gguf_vtype_name(g->kvs[i].type));
	if (v < min || v > max)
		return herd_fail(HERD_ERR_FORMAT, "metadata '%s' must be %lld..%lld, is %lld", key, (long long)min,
				 (long long)max, (long long)v);
	*out = v;
	return HERD_OK;
}

enum herd_err herd_gguf_get_float(const struct herd_gguf *g, const char *key, double *out)
{
	int64_t i;
	enum herd_err e = lookup(g, key, &i);
	if (e)
		return e;
	if (g->kvs[i].type == HERD_GGUF_BOOL || !herd_gguf_kv_float(g, i, out) || *out != *out)
		return herd_fail(HERD_ERR_FORMAT, "metadata '%s' must be a number, is %s", key,
				 herd_gguf_vtype_name(g->kvs[i].type));
	return HERD_OK;
}

enum herd_err herd_gguf_get_str(const struct herd_gguf *g, const char *key, struct herd_gguf_str *out)
{
	int64_t i;
	enum herd_err e = lookup(g, key, &i);
	if (e)
		return e;
	if (g->kvs[i].type != HERD_GGUF_STRING)
		return herd_fail(HERD_ERR_FORMAT, "metadata '%s' must be a string, is %s", key,
				 herd_gguf_vtype_name(g->kvs[i].type));
	*out = herd_gguf_kv_str(g, i);
	return HERD_OK;
}

enum herd_err herd_gguf_get_bool(const struct herd_gguf *g, const char *key, bool *out)
{
	int64_t i;
	enum herd_err e = lookup(g, key, &i);
	if (e)
		return e;
	if (g->kvs[i].type != HERD_GGUF_BOOL)
		return herd_fail(HERD_ERR_FORMAT, "metadata '%s' must be a bool, is %s", key,
				 herd_gguf_vtype_name(g->kvs[i].type));
	*out = g->kvs[i].val[0] != 0;
	return HERD_OK;
}

int64_t herd_gguf_tensor_count(const struct herd_gguf *g)
{
	return g->n_tensors;
}

const struct herd_tensor *herd_gguf_tensor(const struct herd_gguf *g, int64_t i)
{
	HERD_ASSERT(i >= 0 && i < g->n_tensors);
	return &g->tensors[i];
}

const struct herd_tensor *herd_gguf_find_tensor(const struct herd_gguf *g, const char *name)
{
	for (int64_t i = 0; i < g->n_tensors; i++)
		if (!strcmp(g->tensors[i].name, name))
			return &g->tensors[i];
	return NULL;
}
