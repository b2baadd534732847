/* identity — a node's ed25519 key pair, kept in DATA_DIR/identity.key, and the peer id
 * derived from it. The one thing to know: the file is created once and then only read; a
 * file that does not parse is an error, never silently replaced (that would change the
 * node's peer id and throw away its reputation). */
#define _GNU_SOURCE
#include "swarm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

/* File format: one line, "herd-ed25519-v1 " + 128 hex chars of the libsodium secret key
 * (seed || public key) + "\n". Text, so that an operator can see what it is. */
#define KEY_MAGIC "herd-ed25519-v1 "
#define KEY_FILE_LEN (sizeof KEY_MAGIC - 1 + 2 * HERD_SECRET_KEY_LEN + 1)

int64_t herd_unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sodium_ready(void)
{
	/* idempotent and thread-safe; fails only when no entropy source exists */
	HERD_ASSERT(sodium_init() >= 0);
}

void herd_peer_id_of(const uint8_t public_key[HERD_PUBLIC_KEY_LEN], char out[HERD_PEER_ID_HEX + 1])
{
	uint8_t h[32];
	crypto_generichash(h, sizeof h, public_key, HERD_PUBLIC_KEY_LEN, NULL, 0);
	sodium_bin2hex(out, HERD_PEER_ID_HEX + 1, h, HERD_PEER_ID_HEX / 2);
}

static void fill_from_secret(struct herd_identity *id)
{
	crypto_sign_ed25519_sk_to_pk(id->public_key, id->secret_key);
	herd_peer_id_of(id->public_key, id->peer_id);
}

void herd_identity_generate(struct herd_identity *out)
{
	sodium_ready();
	memset(out, 0, sizeof *out);
	crypto_sign_keypair(out->public_key, out->secret_key);
	herd_peer_id_of(out->public_key, out->peer_id);
}

static enum herd_err load(const char *path, struct herd_identity *out)
{
	char buf[KEY_FILE_LEN + 2];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return herd_fail(HERD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) == 0 && (st.st_mode & 077))
		herd_log(WARN, "%s: readable by others (mode %03o); it should be 0600", path,
			 (unsigned)(st.st_mode & 0777));
	ssize_t n = read(fd, buf, sizeof buf);
	int read_errno = errno;
	close(fd);
	if (n < 0)
		return herd_fail(HERD_ERR_IO, "%s: cannot read: %s", path, strerror(read_errno));
	if ((size_t)n != KEY_FILE_LEN || memcmp(buf, KEY_MAGIC, sizeof KEY_MAGIC - 1) ||
	    buf[KEY_FILE_LEN - 1] != '\n')
		return herd_fail(
		    HERD_ERR_FORMAT,
		    "%s: corrupt identity file: expected \"%s\" and %d hex chars (%zu bytes), "
		    "got %zd bytes",
		    path, KEY_MAGIC, 2 * HERD_SECRET_KEY_LEN, KEY_FILE_LEN, n);
	const char *hex = buf + sizeof KEY_MAGIC - 1;
	size_t bin_len = 0;
	memset(out, 0, sizeof *out);
	if (sodium_hex2bin(out->secret_key, sizeof out->secret_key, hex, 2 * HERD_SECRET_KEY_LEN,
			   NULL, &bin_len, NULL) != 0 ||
	    bin_len != HERD_SECRET_KEY_LEN)
		return herd_fail(HERD_ERR_FORMAT,
				 "%s: corrupt identity file: key is not %d hex chars", path,
				 2 * HERD_SECRET_KEY_LEN);
	/* the second half is the public key: it must be the one the seed gives */
	uint8_t pk[HERD_PUBLIC_KEY_LEN], sk[HERD_SECRET_KEY_LEN];
	crypto_sign_seed_keypair(pk, sk, out->secret_key);
	bool same = sodium_memcmp(sk, out->secret_key, sizeof sk) == 0;
	sodium_memzero(sk, sizeof sk);
	if (!same)
		return herd_fail(
		    HERD_ERR_FORMAT,
		    "%s: corrupt identity file: public key does not match the secret key", path);
	fill_from_secret(out);
	return HERD_OK;
}

static enum herd_err create(const char *dir, const char *path, struct herd_identity *out)
{
	herd_identity_generate(out);
	char line[KEY_FILE_LEN + 1];
	memcpy(line, KEY_MAGIC, sizeof KEY_MAGIC - 1);
	sodium_bin2hex(line + sizeof KEY_MAGIC - 1, 2 * HERD_SECRET_KEY_LEN + 1, out->secret_key,
		       HERD_SECRET_KEY_LEN);
	line[KEY_FILE_LEN - 1] = '\n';

	/* write a temporary file and rename it, so a crash never leaves half a key behind */
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s/.identity.key.%ld", dir, (long)getpid()) >=
	    (int)sizeof tmp)
		return herd_fail(HERD_ERR_BAD_INPUT, "data dir: path too long");
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return herd_fail(HERD_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
	enum herd_err err = HERD_OK;
	if (write(fd, line, KEY_FILE_LEN) != (ssize_t)KEY_FILE_LEN || fsync(fd) != 0)
		err = herd_fail(HERD_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
	close(fd);
	sodium_memzero(line, sizeof line);
	/* link() rather than rename(): it fails when another process created the key meanwhile */
	if (!err && link(tmp, path) != 0) {
		if (errno == EEXIST) {
			unlink(tmp);
			return load(path, out);
		}
		err = herd_fail(HERD_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
	}
	unlink(tmp);
	if (!err)
		herd_log(INFO, "created identity %s, peer id %s", path, out->peer_id);
	return err;
}

enum herd_err herd_identity_load_or_create(const char *data_dir, struct herd_identity *out)
{
	sodium_ready();
	if (!data_dir || !*data_dir)
		return herd_fail(HERD_ERR_BAD_INPUT, "data dir: must not be empty");
	char path[4096];
	if (snprintf(path, sizeof path, "%s/identity.key", data_dir) >= (int)sizeof path)
		return herd_fail(HERD_ERR_BAD_INPUT, "data dir: path too long");
	if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
		return herd_fail(HERD_ERR_IO, "%s: cannot create data dir: %s", data_dir,
				 strerror(errno));
	if (access(path, F_OK) == 0)
		return load(path, out);
	if (errno != ENOENT)
		return herd_fail(HERD_ERR_IO, "%s: %s", path, strerror(errno));
	return create(data_dir, path, out);
}
