/* capability — the signed capability record a node announces on the DHT: the struct, its JSON
 * encoding and validation, and measuring the machine. Format: docs/protocol.md
 * "Capability records".
 *
 * The one thing to know: the signature covers the canonical bytes of the record, i.e. the
 * record's JSON object without "sig" dumped with JSON_SORT_KEYS | JSON_COMPACT. A reader
 * re-dumps what it parsed the same way, so unknown (newer) fields are signed too. */
#define _GNU_SOURCE
#include "swarm.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#define MAX_SAFE_INT ((int64_t)1 << 53) /* integers beyond this lose precision in JS clients */

/* ---- field rules shared by encode (our own record) and decode (anyone's) ---- */

static bool is_lower_hex(const char *s, size_t len)
{
	if (strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool is_token(const char *s, bool allow_punct)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '.' || c == '_' || c == '-')
			continue;
		if (allow_punct && c > 0x20 && c < 0x7f && c != '"' && c != '\\')
			continue;
		return false;
	}
	return true;
}

static bool is_hostname(const char *h, size_t len)
{
	if (len == 0 || len > 253)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		char c = h[i];
		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!(isalnum((unsigned char)c) || c == '-') || (c == '-' && label == 0) ||
		    ++label > 63)
			return false;
	}
	return label > 0 && h[len - 1] != '-';
}

/* "host:port" with host an IPv4 address, a [bracketed] IPv6 address or a DNS name, port
 * 1..65535; the unspecified addresses are refused (nobody can reach them). On failure *why
 * says which rule broke. */
static bool address_ok(const char *a, const char **why)
{
	const char *colon = strrchr(a, ':');
	if (!colon) {
		*why = "must be host:port";
		return false;
	}
	const char *p = colon + 1;
	if (!*p || strlen(p) > 5 || *p == '0') {
		*why = "port must be 1..65535";
		return false;
	}
	long port = 0;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p)) {
			*why = "port must be 1..65535";
			return false;
		}
		port = port * 10 + (*p - '0');
	}
	if (port < 1 || port > 65535) {
		*why = "port must be 1..65535";
		return false;
	}
	size_t hlen = (size_t)(colon - a);
	char host[HERD_CAP_MAX_ADDRESS + 1];
	if (hlen >= sizeof host) {
		*why = "host too long";
		return false;
	}
	memcpy(host, a, hlen);
	host[hlen] = 0;
	unsigned char bin[16];
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = 0;
		if (inet_pton(AF_INET6, host + 1, bin) != 1) {
			*why = "bracketed host must be an IPv6 address";
			return false;
		}
		static const unsigned char zero[16];
		if (!memcmp(bin, zero, 16)) {
			*why = "host must not be the unspecified address";
			return false;
		}
		return true;
	}
	if (inet_pton(AF_INET, host, bin) == 1) {
		if (!memcmp(bin, "\0\0\0\0", 4)) {
			*why = "host must not be the unspecified address";
			return false;
		}
		return true;
	}
	bool digits_and_dots = strspn(host, "0123456789.") == hlen;
	if (digits_and_dots || !is_hostname(host, hlen)) {
		*why = "host must be an IPv4 address, [IPv6] address or DNS name";
		return false;
	}
	return true;
}

#define BAD(...) herd_fail(HERD_ERR_BAD_INPUT, "capability." __VA_ARGS__)

static enum herd_err check_model(const struct herd_model_cap *m, int i)
{
	if (!is_token(m->name, true) || strlen(m->name) > HERD_CAP_MAX_NAME)
		return BAD("models[%d].name: must be 1..%d printable ASCII chars without spaces", i,
			   HERD_CAP_MAX_NAME);
	if (m->size_bytes >= (uint64_t)MAX_SAFE_INT)
		return BAD("models[%d].size_bytes: must be 0..2^53-1, got %" PRIu64, i,
			   m->size_bytes);
	if (!is_lower_hex(m->sha256, 64))
		return BAD("models[%d].sha256: must be 64 lower-case hex chars", i);
	if (m->n_tensor_types < 0 || m->n_tensor_types > HERD_CAP_MAX_TENSOR_TYPES)
		return BAD("models[%d].tensor_types: must have 0..%d entries, got %d", i,
			   HERD_CAP_MAX_TENSOR_TYPES, m->n_tensor_types);
	for (int j = 0; j < m->n_tensor_types; j++)
		if (!is_token(m->tensor_types[j], false) ||
		    strlen(m->tensor_types[j]) > HERD_CAP_MAX_TYPE_NAME)
			return BAD(
			    "models[%d].tensor_types[%d]: must be 1..%d chars of [A-Za-z0-9._-]", i,
			    j, HERD_CAP_MAX_TYPE_NAME);
	if (!(m->tokens_per_s >= 0 && m->tokens_per_s <= HERD_CAP_MAX_TOKENS_PER_S))
		return BAD("models[%d].tokens_per_s: must be 0..%g, got %g", i,
			   HERD_CAP_MAX_TOKENS_PER_S, m->tokens_per_s);
	return HERD_OK;
}

/* Everything except peer id / key consistency, timestamps and the signature. */
static enum herd_err check_fields(const struct herd_capability *c)
{
	const char *why = NULL;
	if (!is_lower_hex(c->peer_id, HERD_PEER_ID_HEX))
		return BAD("peer_id: must be %d lower-case hex chars", HERD_PEER_ID_HEX);
	if (strlen(c->address) > HERD_CAP_MAX_ADDRESS)
		return BAD("address: must be at most %d chars", HERD_CAP_MAX_ADDRESS);
	if (!address_ok(c->address, &why))
		return BAD("address: %s, got \"%s\"", why, c->address);
	if (!is_token(c->swarm, false) || strlen(c->swarm) > HERD_CAP_MAX_SWARM)
		return BAD("swarm: must be 1..%d chars of [A-Za-z0-9._-]", HERD_CAP_MAX_SWARM);
	if (c->cpu_cores < 1 || c->cpu_cores > HERD_CAP_MAX_CORES)
		return BAD("cpu_cores: must be 1..%d, got %d", HERD_CAP_MAX_CORES, c->cpu_cores);
	if (c->memory_mb < 1 || c->memory_mb > HERD_CAP_MAX_MEMORY_MB)
		return BAD("memory_mb: must be 1..%lld, got %" PRId64, HERD_CAP_MAX_MEMORY_MB,
			   c->memory_mb);
	if (c->has_gpu) {
		if (!is_token(c->gpu_name, true) || strlen(c->gpu_name) > HERD_CAP_MAX_NAME)
			return BAD("gpu.name: must be 1..%d printable ASCII chars without spaces",
				   HERD_CAP_MAX_NAME);
		if (c->gpu_memory_mb < 0 || c->gpu_memory_mb > HERD_CAP_MAX_MEMORY_MB)
			return BAD("gpu.memory_mb: must be 0..%lld, got %" PRId64,
				   HERD_CAP_MAX_MEMORY_MB, c->gpu_memory_mb);
	}
	if (c->n_models < 0 || c->n_models > HERD_CAP_MAX_MODELS)
		return BAD("models: must have 0..%d entries, got %d", HERD_CAP_MAX_MODELS,
			   c->n_models);
	for (int i = 0; i < c->n_models; i++) {
		enum herd_err err = check_model(&c->models[i], i);
		if (err)
			return err;
		for (int j = 0; j < i; j++)
			if (!strcmp(c->models[j].name, c->models[i].name))
				return BAD("models[%d].name: \"%s\" is listed twice", i,
					   c->models[i].name);
	}
	if (c->slots < 1 || c->slots > HERD_MAX_SLOTS)
		return BAD("slots: must be 1..%d, got %d", HERD_MAX_SLOTS, c->slots);
	if (c->running < 0 || c->running > c->slots)
		return BAD("load.running: must be 0..slots (%d), got %d", c->slots, c->running);
	if (c->queued < 0 || c->queued > 1000000)
		return BAD("load.queued: must be 0..1000000, got %d", c->queued);
	if (!is_token(c->version, true) || strlen(c->version) > HERD_CAP_MAX_VERSION)
		return BAD("version: must be 1..%d printable ASCII chars without spaces",
			   HERD_CAP_MAX_VERSION);
	if (c->timestamp_ms < 0 || c->timestamp_ms >= MAX_SAFE_INT)
		return BAD("timestamp: must be 0..2^53-1, got %" PRId64, c->timestamp_ms);
	if (c->seq >= (uint64_t)MAX_SAFE_INT)
		return BAD("seq: must be 0..2^53-1, got %" PRIu64, c->seq);
	return HERD_OK;
}

/* ---- JSON ---- */

json_t *herd_capability_to_json(const struct herd_capability *c)
{
	char pk[2 * HERD_PUBLIC_KEY_LEN + 1];
	sodium_bin2hex(pk, sizeof pk, c->public_key, HERD_PUBLIC_KEY_LEN);
	json_t *models = json_array();
	for (int i = 0; i < c->n_models; i++) {
		const struct herd_model_cap *m = &c->models[i];
		json_t *types = json_array();
		for (int j = 0; j < m->n_tensor_types; j++)
			json_array_append_new(types, json_string(m->tensor_types[j]));
		json_array_append_new(
		    models, json_pack("{s:s, s:I, s:s, s:o, s:f}", "name", m->name, "size_bytes",
				      (json_int_t)m->size_bytes, "sha256", m->sha256,
				      "tensor_types", types, "tokens_per_s", m->tokens_per_s));
	}
	json_t *gpu = c->has_gpu ? json_pack("{s:s, s:I}", "name", c->gpu_name, "memory_mb",
					     (json_int_t)c->gpu_memory_mb)
				 : json_null();
	json_t *o = json_pack(
	    "{s:s, s:s, s:s, s:s, s:i, s:I, s:o, s:o, s:i, s:{s:i, s:i}, s:s, s:I, s:I}", "peer_id",
	    c->peer_id, "public_key", pk, "address", c->address, "swarm", c->swarm, "cpu_cores",
	    c->cpu_cores, "memory_mb", (json_int_t)c->memory_mb, "gpu", gpu, "models", models,
	    "slots", c->slots, "load", "running", c->running, "queued", c->queued, "version",
	    c->version, "timestamp", (json_int_t)c->timestamp_ms, "seq", (json_int_t)c->seq);
	HERD_ASSERT(o);
	return o;
}

static char *canonical(const json_t *o)
{
	return json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
}

enum herd_err herd_capability_encode(const struct herd_capability *cap,
				     const struct herd_identity *id, char **out, size_t *out_len)
{
	HERD_ASSERT(!strcmp(cap->peer_id, id->peer_id));
	HERD_ASSERT(!memcmp(cap->public_key, id->public_key, HERD_PUBLIC_KEY_LEN));
	*out = NULL;
	enum herd_err err = check_fields(cap);
	if (err)
		return err;
	json_t *o = herd_capability_to_json(cap);
	char *body = canonical(o);
	HERD_ASSERT(body);
	uint8_t sig[HERD_SIGNATURE_LEN];
	crypto_sign_detached(sig, NULL, (const uint8_t *)body, strlen(body), id->secret_key);
	free(body);
	char sig_hex[2 * HERD_SIGNATURE_LEN + 1];
	sodium_bin2hex(sig_hex, sizeof sig_hex, sig, sizeof sig);
	json_object_set_new(o, "sig", json_string(sig_hex));
	char *text = canonical(o);
	json_decref(o);
	HERD_ASSERT(text);
	size_t len = strlen(text);
	if (len > HERD_CAP_MAX_BYTES) {
		free(text);
		return herd_fail(HERD_ERR_LIMIT,
				 "capability: record is %zu bytes, limit %d (fewer models?)", len,
				 HERD_CAP_MAX_BYTES);
	}
	*out = text;
	if (out_len)
		*out_len = len;
	return HERD_OK;
}

/* ---- decoding: each getter names the field it refuses ---- */

static enum herd_err get_field(const json_t *o, const char *path, const char *key, json_t **v)
{
	*v = json_object_get(o, key);
	if (!*v)
		return BAD("%s%s: missing", path, key);
	return HERD_OK;
}

static enum herd_err get_int(const json_t *o, const char *path, const char *key, int64_t min,
			     int64_t max, int64_t *out)
{
	json_t *v;
	enum herd_err err = get_field(o, path, key, &v);
	if (err)
		return err;
	if (!json_is_integer(v))
		return BAD("%s%s: must be an integer", path, key);
	int64_t x = json_integer_value(v);
	if (x < min || x > max)
		return BAD("%s%s: must be %" PRId64 "..%" PRId64 ", got %" PRId64, path, key, min,
			   max, x);
	*out = x;
	return HERD_OK;
}

static enum herd_err get_str(const json_t *o, const char *path, const char *key, char *buf,
			     size_t max_len)
{
	json_t *v;
	enum herd_err err = get_field(o, path, key, &v);
	if (err)
		return err;
	if (!json_is_string(v))
		return BAD("%s%s: must be a string", path, key);
	size_t len = json_string_length(v);
	if (len == 0 || len > max_len)
		return BAD("%s%s: must be 1..%zu chars, got %zu", path, key, max_len, len);
	const char *s = json_string_value(v);
	if (strlen(s) != len)
		return BAD("%s%s: must not contain NUL", path, key);
	memcpy(buf, s, len + 1);
	return HERD_OK;
}

static enum herd_err get_hex(const json_t *o, const char *key, uint8_t *bin, size_t n)
{
	char buf[2 * 64 + 1];
	HERD_ASSERT(2 * n < sizeof buf);
	json_t *v;
	enum herd_err err = get_field(o, "", key, &v);
	if (err)
		return err;
	if (!json_is_string(v) || !is_lower_hex(json_string_value(v), 2 * n))
		return BAD("%s: must be %zu lower-case hex chars", key, 2 * n);
	memcpy(buf, json_string_value(v), 2 * n + 1);
	size_t got = 0;
	if (sodium_hex2bin(bin, n, buf, 2 * n, NULL, &got, NULL) != 0 || got != n)
		return BAD("%s: must be %zu lower-case hex chars", key, 2 * n);
	return HERD_OK;
}

static enum herd_err get_model(const json_t *m, int i, struct herd_model_cap *out)
{
	char path[32];
	snprintf(path, sizeof path, "models[%d].", i);
	if (!json_is_object(m))
		return BAD("models[%d]: must be an object", i);
	memset(out, 0, sizeof *out);
	int64_t x;
	enum herd_err err;
	if ((err = get_str(m, path, "name", out->name, HERD_CAP_MAX_NAME)) ||
	    (err = get_int(m, path, "size_bytes", 0, MAX_SAFE_INT - 1, &x)))
		return err;
	out->size_bytes = (uint64_t)x;
	if ((err = get_str(m, path, "sha256", out->sha256, 64)))
		return err;
	json_t *types, *tps;
	if ((err = get_field(m, path, "tensor_types", &types)))
		return err;
	if (!json_is_array(types))
		return BAD("%stensor_types: must be an array", path);
	if (json_array_size(types) > HERD_CAP_MAX_TENSOR_TYPES)
		return BAD("%stensor_types: must have 0..%d entries, got %zu", path,
			   HERD_CAP_MAX_TENSOR_TYPES, json_array_size(types));
	for (size_t j = 0; j < json_array_size(types); j++) {
		json_t *t = json_array_get(types, j);
		if (!json_is_string(t) || json_string_length(t) == 0 ||
		    json_string_length(t) > HERD_CAP_MAX_TYPE_NAME)
			return BAD("%stensor_types[%zu]: must be a string of 1..%d chars", path, j,
				   HERD_CAP_MAX_TYPE_NAME);
		memcpy(out->tensor_types[j], json_string_value(t), json_string_length(t) + 1);
	}
	out->n_tensor_types = (int)json_array_size(types);
	if ((err = get_field(m, path, "tokens_per_s", &tps)))
		return err;
	if (!json_is_number(tps))
		return BAD("%stokens_per_s: must be a number", path);
	out->tokens_per_s = json_number_value(tps);
	return HERD_OK;
}

static enum herd_err parse_fields(const json_t *o, struct herd_capability *c)
{
	enum herd_err err;
	int64_t x;
	memset(c, 0, sizeof *c);
	if ((err = get_str(o, "", "peer_id", c->peer_id, HERD_PEER_ID_HEX)) ||
	    (err = get_hex(o, "public_key", c->public_key, HERD_PUBLIC_KEY_LEN)) ||
	    (err = get_str(o, "", "address", c->address, HERD_CAP_MAX_ADDRESS)) ||
	    (err = get_str(o, "", "swarm", c->swarm, HERD_CAP_MAX_SWARM)) ||
	    (err = get_int(o, "", "cpu_cores", 1, HERD_CAP_MAX_CORES, &x)))
		return err;
	c->cpu_cores = (int)x;
	if ((err = get_int(o, "", "memory_mb", 1, HERD_CAP_MAX_MEMORY_MB, &c->memory_mb)))
		return err;

	json_t *gpu, *models, *load;
	if ((err = get_field(o, "", "gpu", &gpu)))
		return err;
	if (json_is_object(gpu)) {
		c->has_gpu = true;
		if ((err = get_str(gpu, "gpu.", "name", c->gpu_name, HERD_CAP_MAX_NAME)) ||
		    (err = get_int(gpu, "gpu.", "memory_mb", 0, HERD_CAP_MAX_MEMORY_MB,
				   &c->gpu_memory_mb)))
			return err;
	} else if (!json_is_null(gpu)) {
		return BAD("gpu: must be null or an object");
	}

	if ((err = get_field(o, "", "models", &models)))
		return err;
	if (!json_is_array(models))
		return BAD("models: must be an array");
	if (json_array_size(models) > HERD_CAP_MAX_MODELS)
		return BAD("models: must have 0..%d entries, got %zu", HERD_CAP_MAX_MODELS,
			   json_array_size(models));
	for (size_t i = 0; i < json_array_size(models); i++)
		if ((err = get_model(json_array_get(models, i), (int)i, &c->models[i])))
			return err;
	c->n_models = (int)json_array_size(models);

	if ((err = get_int(o, "", "slots", 1, HERD_MAX_SLOTS, &x)))
		return err;
	c->slots = (int)x;
	if ((err = get_field(o, "", "load", &load)))
		return err;
	if (!json_is_object(load))
		return BAD("load: must be an object");
	if ((err = get_int(load, "load.", "running", 0, HERD_MAX_SLOTS, &x)))
		return err;
	c->running = (int)x;
	if ((err = get_int(load, "load.", "queued", 0, 1000000, &x)))
		return err;
	c->queued = (int)x;
	if ((err = get_str(o, "", "version", c->version, HERD_CAP_MAX_VERSION)) ||
	    (err = get_int(o, "", "timestamp", 0, MAX_SAFE_INT - 1, &c->timestamp_ms)) ||
	    (err = get_int(o, "", "seq", 0, MAX_SAFE_INT - 1, &x)))
		return err;
	c->seq = (uint64_t)x;
	return check_fields(c);
}

enum herd_err herd_capability_decode(const void *data, size_t len, int64_t now_ms,
				     int64_t max_age_ms, struct herd_capability *out)
{
	if (len > HERD_CAP_MAX_BYTES)
		return herd_fail(HERD_ERR_LIMIT, "capability: record is %zu bytes, limit %d", len,
				 HERD_CAP_MAX_BYTES);
	json_error_t jerr;
	json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		return BAD("json: invalid at byte %d: %s", jerr.position, jerr.text);
	enum herd_err err = HERD_OK;
	char *body = NULL;
	uint8_t sig[HERD_SIGNATURE_LEN];
	if (!json_is_object(o)) {
		err = BAD("json: must be an object");
		goto out;
	}
	if ((err = parse_fields(o, out)) || (err = get_hex(o, "sig", sig, sizeof sig)))
		goto out;
	char expect[HERD_PEER_ID_HEX + 1];
	herd_peer_id_of(out->public_key, expect);
	if (strcmp(expect, out->peer_id)) {
		err = BAD("peer_id: does not match public_key (expected %s)", expect);
		goto out;
	}
	if (out->timestamp_ms > now_ms + HERD_CAP_MAX_FUTURE_MS) {
		err = BAD("timestamp: %" PRId64 " ms in the future (limit %d)",
			  out->timestamp_ms - now_ms, HERD_CAP_MAX_FUTURE_MS);
		goto out;
	}
	if (max_age_ms > 0 && out->timestamp_ms < now_ms - max_age_ms) {
		err = BAD("timestamp: stale, %" PRId64 " ms old (limit %" PRId64 ")",
			  now_ms - out->timestamp_ms, max_age_ms);
		goto out;
	}
	json_object_del(o, "sig");
	body = canonical(o);
	HERD_ASSERT(body);
	if (crypto_sign_verify_detached(sig, (const uint8_t *)body, strlen(body),
					out->public_key) != 0)
		err = BAD("sig: signature does not verify");
out:
	free(body);
	json_decref(o);
	return err;
}

/* ---- measuring the machine ---- */

static int64_t mem_total_mb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f)
		return -1;
	char line[256];
	long long kb = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "MemTotal: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb > 0 ? kb / 1024 : -1;
}

enum herd_err herd_capability_measure(const struct herd_identity *id, struct herd_capability *cap)
{
	memset(cap, 0, sizeof *cap);
	memcpy(cap->peer_id, id->peer_id, sizeof cap->peer_id);
	memcpy(cap->public_key, id->public_key, HERD_PUBLIC_KEY_LEN);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (cores < 1)
		return herd_fail(HERD_ERR_IO, "cannot count CPU cores: %s", strerror(errno));
	cap->cpu_cores = cores > HERD_CAP_MAX_CORES ? HERD_CAP_MAX_CORES : (int)cores;
	cap->memory_mb = mem_total_mb();
	if (cap->memory_mb < 1)
		return herd_fail(HERD_ERR_IO, "/proc/meminfo: cannot read MemTotal");
	cap->slots = 1;
	snprintf(cap->version, sizeof cap->version, "%s", HERD_VERSION);
	snprintf(cap->swarm, sizeof cap->swarm, "default");
	return HERD_OK;
}
