/* sha256.h — SHA-256 through libcrypto (OpenSSL), for config hashes and params_sha256. */
#ifndef DM_CORE_SHA256_H
#define DM_CORE_SHA256_H

#include <stddef.h>

void dm_sha256(const void *data, size_t n, unsigned char out[32]);
/* Lower-case hex digest, NUL-terminated. */
void dm_sha256_hex(const void *data, size_t n, char out[65]);

/* Hex digest of the concatenation of n_parts buffers (no copy). */
void dm_sha256_hex_parts(const void *const *parts, const size_t *sizes, size_t n_parts, char out[65]);

#endif
