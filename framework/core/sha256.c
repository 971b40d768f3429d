#include "core/sha256.h"

#include <openssl/evp.h>

void dm_sha256(const void *data, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    EVP_Digest(data, n, out, &len, EVP_sha256(), NULL);
}

static void to_hex(const unsigned char h[32], char out[65])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    out[64] = '\0';
}

void dm_sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char h[32];
    dm_sha256(data, n, h);
    to_hex(h, out);
}

void dm_sha256_hex_parts(const void *const *parts, const size_t *sizes, size_t n_parts, char out[65])
{
    unsigned char h[32];
    unsigned int len = 32;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; i < n_parts; i++)
        EVP_DigestUpdate(ctx, parts[i], sizes[i]);
    EVP_DigestFinal_ex(ctx, h, &len);
    EVP_MD_CTX_free(ctx);
    to_hex(h, out);
}
