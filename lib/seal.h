/*
 * seal.h — authenticated encryption of small records (cookies, one-time form tickets) with
 * XChaCha20-Poly1305 under a 32-byte key, encoded as URL-safe base64 without padding.
 */
#ifndef WX_SEAL_H
#define WX_SEAL_H

#include <wxauth/base.h>

#define WX_SEAL_MAX_PLAIN 4096 /* an RSA-2048 private JWK (the OIDC signing keys) is ~1.7 KB */

/* Appends the sealed form of plain (bound to the associated-data label ad) to out. */
int wx_seal(const unsigned char key[32], const char *ad, const void *plain, size_t len,
            struct wx_buf *out);
/*
 * Opens a sealed string into out (capacity outmax); *outlen receives the plaintext length.
 * WX_ERR_CRYPTO on any tampering, truncation or wrong label; WX_ERR_SYNTAX on bad encoding.
 */
int wx_unseal(const unsigned char key[32], const char *ad, struct wx_slice sealed, void *out,
              size_t outmax, size_t *outlen);

#endif
