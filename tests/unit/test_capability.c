/* capability + identity: the node's key file, and the signed capability record — round trip,
 * and every kind of tampering a stranger on the DHT could try, refused with the field named. */
#define _GNU_SOURCE
#include "herd_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "swarm.h"

static char tmpdir[64];

static const char *make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/herd-cap-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return tmpdir;
}

static void remove_tmpdir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	assert_int_equal(system(cmd), 0);
}

static void write_file(const char *path, const char *text, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, n, f), n);
	fclose(f);
}

static void identity_created_then_reloaded(void **state)
{
	(void)state;
	const char *dir = make_tmpdir();
	char sub[128], path[160];
	snprintf(sub, sizeof sub, "%s/data", dir); /* not there yet: created */
	struct herd_identity a, b;
	assert_int_equal(herd_identity_load_or_create(sub, &a), HERD_OK);
	snprintf(path, sizeof path, "%s/identity.key", sub);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(herd_identity_load_or_create(sub, &b), HERD_OK);
	assert_string_equal(a.peer_id, b.peer_id);
	assert_memory_equal(a.public_key, b.public_key, 32);
	assert_memory_equal(a.secret_key, b.secret_key, 64);

	/* the peer id is hex of the first 16 bytes of BLAKE2b-256(public key), computed here
	 * independently with libsodium */
	uint8_t h[32];
	char hex[65];
	crypto_generichash(h, 32, a.public_key, 32, NULL, 0);
	sodium_bin2hex(hex, sizeof hex, h, 16);
	assert_string_equal(a.peer_id, hex);
	assert_int_equal(strlen(a.peer_id), 32);

	/* the key pair signs and verifies */
	uint8_t sig[64];
	crypto_sign_detached(sig, NULL, (const uint8_t *)"x", 1, b.secret_key);
	assert_int_equal(crypto_sign_verify_detached(sig, (const uint8_t *)"x", 1, a.public_key),
			 0);

	/* a different dir gives a different identity */
	struct herd_identity c;
	snprintf(sub, sizeof sub, "%s/other", dir);
	assert_int_equal(herd_identity_load_or_create(sub, &c), HERD_OK);
	assert_string_not_equal(a.peer_id, c.peer_id);
	remove_tmpdir();
}

static void identity_corrupt_file_is_an_error(void **state)
{
	(void)state;
	const char *dir = make_tmpdir();
	char path[160];
	snprintf(path, sizeof path, "%s/identity.key", dir);
	struct herd_identity id;

	write_file(path, "garbage\n", 8);
	assert_int_equal(herd_identity_load_or_create(dir, &id), HERD_ERR_FORMAT);
	assert_non_null(strstr(herd_last_error(), path));
	assert_non_null(strstr(herd_last_error(), "corrupt identity file"));
	/* never replaced */
	FILE *f = fopen(path, "r");
	char buf[16] = {0};
	assert_non_null(fgets(buf, sizeof buf, f));
	fclose(f);
	assert_string_equal(buf, "garbage\n");

	/* right length and magic, not hex */
	char line[256];
	int n = snprintf(line, sizeof line, "herd-ed25519-v1 %0128d\n", 0);
	line[20] = 'z';
	write_file(path, line, (size_t)n);
	assert_int_equal(herd_identity_load_or_create(dir, &id), HERD_ERR_FORMAT);
	assert_non_null(strstr(herd_last_error(), "hex"));

	/* a valid seed with a public half that does not belong to it */
	struct herd_identity good;
	herd_identity_generate(&good);
	good.secret_key[40] ^= 1;
	memcpy(line, "herd-ed25519-v1 ", 16);
	sodium_bin2hex(line + 16, 129, good.secret_key, 64);
	line[16 + 128] = '\n';
	write_file(path, line, 16 + 128 + 1);
	assert_int_equal(herd_identity_load_or_create(dir, &id), HERD_ERR_FORMAT);
	assert_non_null(strstr(herd_last_error(), "public key does not match"));

	/* and the repaired line loads */
	good.secret_key[40] ^= 1;
	sodium_bin2hex(line + 16, 129, good.secret_key, 64);
	line[16 + 128] = '\n';
	write_file(path, line, 16 + 128 + 1);
	assert_int_equal(herd_identity_load_or_create(dir, &id), HERD_OK);
	assert_string_equal(id.peer_id, good.peer_id);
	remove_tmpdir();
}

static struct herd_identity ident;

static void sample(struct herd_capability *c)
{
	assert_int_equal(herd_capability_measure(&ident, c), HERD_OK);
	snprintf(c->address, sizeof c->address, "127.0.0.1:8080");
	snprintf(c->swarm, sizeof c->swarm, "test");
	c->slots = 4;
	c->running = 1;
	c->queued = 2;
	c->n_models = 2;
	snprintf(c->models[0].name, sizeof c->models[0].name, "stories15M");
	c->models[0].size_bytes = 24700000;
	memset(c->models[0].sha256, 'a', 64);
	c->models[0].n_tensor_types = 2;
	strcpy(c->models[0].tensor_types[0], "q8_0");
	strcpy(c->models[0].tensor_types[1], "f32");
	c->models[0].tokens_per_s = 312.5;
	snprintf(c->models[1].name, sizeof c->models[1].name, "tinyllama");
	c->models[1].size_bytes = 1;
	memset(c->models[1].sha256, '0', 64);
	c->timestamp_ms = herd_unix_ms();
	c->seq = 7;
}

static int setup(void **state)
{
	(void)state;
	herd_identity_generate(&ident);
	return 0;
}

static void machine_is_measured(void **state)
{
	(void)state;
	struct herd_capability c;
	assert_int_equal(herd_capability_measure(&ident, &c), HERD_OK);
	assert_int_equal(c.cpu_cores, (int)sysconf(_SC_NPROCESSORS_ONLN));
	long long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	long long mb = pages * psize / (1024 * 1024);
	/* /proc/meminfo MemTotal and sysconf agree within 1% */
	assert_true(c.memory_mb > mb * 99 / 100 && c.memory_mb <= mb + 1);
	assert_string_equal(c.peer_id, ident.peer_id);
	assert_false(c.has_gpu);
}

static void record_round_trip(void **state)
{
	(void)state;
	struct herd_capability c, d;
	sample(&c);
	char *text;
	size_t len;
	assert_int_equal(herd_capability_encode(&c, &ident, &text, &len), HERD_OK);
	assert_int_equal(strlen(text), len);
	assert_true(len < 1024);
	assert_int_equal(herd_capability_decode(text, len, herd_unix_ms(), 15000, &d), HERD_OK);
	assert_string_equal(d.peer_id, c.peer_id);
	assert_memory_equal(d.public_key, c.public_key, 32);
	assert_string_equal(d.address, "127.0.0.1:8080");
	assert_string_equal(d.swarm, "test");
	assert_int_equal(d.cpu_cores, c.cpu_cores);
	assert_int_equal(d.memory_mb, c.memory_mb);
	assert_false(d.has_gpu);
	assert_int_equal(d.n_models, 2);
	assert_string_equal(d.models[0].name, "stories15M");
	assert_int_equal(d.models[0].size_bytes, 24700000);
	assert_int_equal(d.models[0].n_tensor_types, 2);
	assert_string_equal(d.models[0].tensor_types[1], "f32");
	assert_true(d.models[0].tokens_per_s == 312.5);
	assert_int_equal(d.models[1].n_tensor_types, 0);
	assert_int_equal(d.slots, 4);
	assert_int_equal(d.running, 1);
	assert_int_equal(d.queued, 2);
	assert_int_equal(d.timestamp_ms, c.timestamp_ms);
	assert_int_equal(d.seq, 7);
	assert_string_equal(d.version, HERD_VERSION);

	/* the documented format: "gpu": null present, and sig = ed25519 over the sorted compact
	 * JSON without "sig" — checked here with libsodium, not with the decoder */
	json_t *o = json_loads(text, 0, NULL);
	assert_non_null(o);
	assert_true(json_is_null(json_object_get(o, "gpu")));
	const char *sighex = json_string_value(json_object_get(o, "sig"));
	uint8_t sig[64];
	assert_int_equal(sodium_hex2bin(sig, 64, sighex, 128, NULL, NULL, NULL), 0);
	json_object_del(o, "sig");
	char *body = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
	assert_int_equal(
	    crypto_sign_verify_detached(sig, (uint8_t *)body, strlen(body), ident.public_key), 0);
	assert_non_null(strstr(body, "\"load\":{\"queued\":2,\"running\":1}"));
	free(body);
	json_decref(o);

	/* a GPU object round-trips too */
	c.has_gpu = true;
	strcpy(c.gpu_name, "H200");
	c.gpu_memory_mb = 141000;
	free(text);
	assert_int_equal(herd_capability_encode(&c, &ident, &text, &len), HERD_OK);
	assert_int_equal(herd_capability_decode(text, len, herd_unix_ms(), 0, &d), HERD_OK);
	assert_true(d.has_gpu);
	assert_string_equal(d.gpu_name, "H200");
	assert_int_equal(d.gpu_memory_mb, 141000);
	free(text);
}

/* Encodes the sample, lets edit() change the parsed JSON, optionally re-signs it with the
 * node's real key (so that only the field rules can catch it), and decodes. */
static enum herd_err tampered(void (*edit)(json_t *), bool resign, int64_t now_ms)
{
	struct herd_capability c, d;
	sample(&c);
	char *text;
	assert_int_equal(herd_capability_encode(&c, &ident, &text, NULL), HERD_OK);
	json_t *o = json_loads(text, 0, NULL);
	free(text);
	edit(o);
	if (resign) {
		json_object_del(o, "sig");
		char *body = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
		uint8_t sig[64];
		char hex[129];
		crypto_sign_detached(sig, NULL, (uint8_t *)body, strlen(body), ident.secret_key);
		sodium_bin2hex(hex, sizeof hex, sig, 64);
		json_object_set_new(o, "sig", json_string(hex));
		free(body);
	}
	char *out = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(o);
	enum herd_err err =
	    herd_capability_decode(out, strlen(out), now_ms ? now_ms : herd_unix_ms(), 15000, &d);
	free(out);
	return err;
}

#define assert_refused(edit, resign, code, msg)                                                    \
	do {                                                                                       \
		assert_int_equal(tampered(edit, resign, 0), code);                                 \
		if (!strstr(herd_last_error(), msg))                                               \
			fail_msg("expected \"%s\" in \"%s\"", msg, herd_last_error());             \
	} while (0)

static void more_cores(json_t *o)
{
	json_object_set_new(o, "cpu_cores", json_integer(512));
}
static void flip_sig(json_t *o)
{
	char s[129];
	strcpy(s, json_string_value(json_object_get(o, "sig")));
	s[10] = s[10] == '0' ? '1' : '0';
	json_object_set_new(o, "sig", json_string(s));
}
static void other_peer_id(json_t *o)
{
	json_object_set_new(o, "peer_id", json_string("0123456789abcdef0123456789abcdef"));
}
static void other_key(json_t *o)
{
	struct herd_identity x;
	herd_identity_generate(&x);
	char hex[65];
	sodium_bin2hex(hex, sizeof hex, x.public_key, 32);
	json_object_set_new(o, "public_key", json_string(hex));
}
static void huge(json_t *o)
{
	char *pad = malloc(5000);
	memset(pad, 'x', 4999);
	pad[4999] = 0;
	json_object_set_new(o, "padding", json_string(pad));
	free(pad);
}
static void cores_as_string(json_t *o)
{
	json_object_set_new(o, "cpu_cores", json_string("4"));
}
static void tps_as_string(json_t *o)
{
	json_t *m = json_array_get(json_object_get(o, "models"), 0);
	json_object_set_new(m, "tokens_per_s", json_string("fast"));
}
static void gpu_number(json_t *o)
{
	json_object_set_new(o, "gpu", json_integer(1));
}
static void no_slots(json_t *o)
{
	json_object_del(o, "slots");
}
static void no_sig(json_t *o)
{
	json_object_del(o, "sig");
}
static void no_model_sha(json_t *o)
{
	json_object_del(json_array_get(json_object_get(o, "models"), 1), "sha256");
}
static void unspecified_address(json_t *o)
{
	json_object_set_new(o, "address", json_string("0.0.0.0:8080"));
}
static void bad_port(json_t *o)
{
	json_object_set_new(o, "address", json_string("node1.example:99999"));
}
static void no_port(json_t *o)
{
	json_object_set_new(o, "address", json_string("node1.example"));
}
static void zero_slots(json_t *o)
{
	json_object_set_new(o, "slots", json_integer(0));
}
static void too_busy(json_t *o)
{
	json_object_set_new(json_object_get(o, "load"), "running", json_integer(5));
}
static void future(json_t *o)
{
	json_object_set_new(o, "timestamp", json_integer(herd_unix_ms() + 3600000));
}
static void old(json_t *o)
{
	json_object_set_new(o, "timestamp", json_integer(herd_unix_ms() - 60000));
}
static void bad_swarm(json_t *o)
{
	json_object_set_new(o, "swarm", json_string("a b"));
}
static void too_many_models(json_t *o)
{
	json_t *ms = json_object_get(o, "models");
	for (int i = 0; i < 8; i++)
		json_array_append(ms, json_array_get(ms, 1));
}
static void newer_field(json_t *o)
{
	json_object_set_new(o, "zz_future_field", json_string("ok"));
}

static void tampered_records_are_refused(void **state)
{
	(void)state;
	/* changed after signing */
	assert_refused(more_cores, false, HERD_ERR_BAD_INPUT,
		       "capability.sig: signature does not verify");
	assert_refused(flip_sig, false, HERD_ERR_BAD_INPUT,
		       "capability.sig: signature does not verify");
	assert_refused(no_sig, false, HERD_ERR_BAD_INPUT, "capability.sig: missing");
	/* identity: a peer id that is not the key's, a key that is not the signer's */
	assert_refused(other_peer_id, true, HERD_ERR_BAD_INPUT,
		       "capability.peer_id: does not match public_key");
	assert_refused(other_key, true, HERD_ERR_BAD_INPUT,
		       "capability.peer_id: does not match public_key");
	/* size */
	assert_refused(huge, true, HERD_ERR_LIMIT, "capability: record is");
	/* types and missing fields, even when properly signed */
	assert_refused(cores_as_string, true, HERD_ERR_BAD_INPUT,
		       "capability.cpu_cores: must be an integer");
	assert_refused(tps_as_string, true, HERD_ERR_BAD_INPUT,
		       "capability.models[0].tokens_per_s: must be a number");
	assert_refused(gpu_number, true, HERD_ERR_BAD_INPUT,
		       "capability.gpu: must be null or an object");
	assert_refused(no_slots, true, HERD_ERR_BAD_INPUT, "capability.slots: missing");
	assert_refused(no_model_sha, true, HERD_ERR_BAD_INPUT,
		       "capability.models[1].sha256: missing");
	/* ranges and syntax */
	assert_refused(unspecified_address, true, HERD_ERR_BAD_INPUT,
		       "capability.address: host must not be the unspecified address");
	assert_refused(bad_port, true, HERD_ERR_BAD_INPUT,
		       "capability.address: port must be 1..65535");
	assert_refused(no_port, true, HERD_ERR_BAD_INPUT, "capability.address: must be host:port");
	assert_refused(zero_slots, true, HERD_ERR_BAD_INPUT,
		       "capability.slots: must be 1..256, got 0");
	assert_refused(too_busy, true, HERD_ERR_BAD_INPUT,
		       "capability.load.running: must be 0..slots (4), got 5");
	assert_refused(bad_swarm, true, HERD_ERR_BAD_INPUT, "capability.swarm:");
	assert_refused(too_many_models, true, HERD_ERR_BAD_INPUT,
		       "capability.models: must have 0..8 entries, got 10");
	/* time */
	assert_refused(future, true, HERD_ERR_BAD_INPUT, "capability.timestamp:");
	assert_refused(old, true, HERD_ERR_BAD_INPUT, "capability.timestamp: stale");
	/* an unknown, newer field is fine: it is signed */
	assert_int_equal(tampered(newer_field, true, 0), HERD_OK);
	assert_int_equal(tampered(newer_field, false, 0), HERD_ERR_BAD_INPUT);
}

static void garbage_is_refused(void **state)
{
	(void)state;
	struct herd_capability d;
	const char *cases[] = {"",	  "[]", "{", "null", "{\"peer_id\":1}", "{\"a\":1,\"a\":2}",
			       "\xff\xfe"};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		assert_int_equal(
		    herd_capability_decode(cases[i], strlen(cases[i]), herd_unix_ms(), 0, &d),
		    HERD_ERR_BAD_INPUT);
	assert_int_equal(herd_capability_decode("{}", 2, herd_unix_ms(), 0, &d),
			 HERD_ERR_BAD_INPUT);
	assert_string_equal(herd_last_error(), "capability.peer_id: missing");
}

static void encode_refuses_what_decode_would(void **state)
{
	(void)state;
	struct herd_capability c;
	char *text = NULL;
	sample(&c);
	c.slots = 0;
	assert_int_equal(herd_capability_encode(&c, &ident, &text, NULL), HERD_ERR_BAD_INPUT);
	assert_string_equal(herd_last_error(), "capability.slots: must be 1..256, got 0");
	assert_null(text);
	sample(&c);
	strcpy(c.address, "[::1]:80");
	assert_int_equal(herd_capability_encode(&c, &ident, &text, NULL), HERD_OK);
	free(text);
	strcpy(c.address, "[::1:80");
	assert_int_equal(herd_capability_encode(&c, &ident, &text, NULL), HERD_ERR_BAD_INPUT);
	assert_non_null(strstr(herd_last_error(), "capability.address:"));
	/* eight models with long names and six types each still fit the 4 KiB limit */
	sample(&c);
	c.n_models = HERD_CAP_MAX_MODELS;
	for (int i = 0; i < c.n_models; i++) {
		struct herd_model_cap *m = &c.models[i];
		memset(m->name, 'n', HERD_CAP_MAX_NAME);
		m->name[HERD_CAP_MAX_NAME] = 0;
		m->name[0] = (char)('a' + i);
		memset(m->sha256, 'f', 64);
		m->n_tensor_types = HERD_CAP_MAX_TENSOR_TYPES;
		for (int j = 0; j < m->n_tensor_types; j++)
			snprintf(m->tensor_types[j], sizeof m->tensor_types[j], "iq2_xx%c",
				 (char)('0' + j));
		m->tokens_per_s = 123.456;
		m->size_bytes = 1ull << 40;
	}
	size_t len;
	enum herd_err e = herd_capability_encode(&c, &ident, &text, &len);
	if (e)
		fail_msg("%s", herd_last_error());
	assert_true(len <= HERD_CAP_MAX_BYTES);
	free(text);
}

HERD_TEST_MAIN(((const struct CMUnitTest[]){
    cmocka_unit_test(identity_created_then_reloaded),
    cmocka_unit_test(identity_corrupt_file_is_an_error),
    cmocka_unit_test_setup(machine_is_measured, setup),
    cmocka_unit_test_setup(record_round_trip, setup),
    cmocka_unit_test_setup(tampered_records_are_refused, setup),
    cmocka_unit_test_setup(garbage_is_refused, setup),
    cmocka_unit_test_setup(encode_refuses_what_decode_would, setup),
}))
