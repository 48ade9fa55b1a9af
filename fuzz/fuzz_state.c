/*
 * fuzz_state.c — libFuzzer driver for the sealed OAuth state.
 * 1. wx_state_open on arbitrary bytes with a fixed key set (two keys, ids 1 and 2) and with and
 *    without a binding: never crashes; the result is one of the documented codes; if it returns
 *    WX_OK (only possible for a real seal, so practically never) the input is [A-Za-z0-9] and at
 *    most 128 bytes and the return path is NUL-terminated.
 * 2. Round trip: the input (minus its first byte, which picks binding and key order) used as a
 *    return path; when wx_state_seal accepts it, the state is [A-Za-z0-9]{1,128}, opens with
 *    the same key set (and the right binding) to the same path, expiry and nonce, is refused
 *    with another binding, and is refused after flipping any one character.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wxauth/wxauth.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define NOW INT64_C(1700000000)

static struct wx_state_key keyv[2], keyr[2];
static struct wx_state_keys keys = {keyv, 2}, rotated = {keyr, 2};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (wx_init())
        abort();
    keyv[0].id = 1;
    keyv[1].id = 2;
    for (int i = 0; i < WX_STATE_KEY_LEN; i++) {
        keyv[0].key[i] = (unsigned char)i;
        keyv[1].key[i] = (unsigned char)(0xff - i);
    }
    keyr[0] = keyv[1];
    keyr[1] = keyv[0];
    return 0;
}

static int alnum(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

static void open_any(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    struct wx_slice in = {copy, size};
    struct wx_slice binds[] = {{NULL, 0}, {"browser", 7}};
    for (size_t b = 0; b < 2; b++) {
        struct wx_state st;
        int rc = wx_state_open(&keys, in, binds[b], NOW, &st);
        CHECK(rc == WX_OK || rc == WX_ERR_SYNTAX || rc == WX_ERR_CRYPTO || rc == WX_ERR_EXPIRED ||
              rc == WX_ERR_INVALID);
        if (size == 0 || size > WX_MAX_STATE || !alnum(copy, size))
            CHECK(rc == WX_ERR_SYNTAX);
        if (rc == WX_OK) {
            CHECK(size >= 1 && size <= WX_MAX_STATE && alnum(copy, size));
            CHECK(memchr(st.return_path, '\0', sizeof st.return_path) != NULL);
            CHECK(st.expires > NOW);
        }
    }
    free(copy);
}

static void round_trip(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    int bound = data[0] & 1;
    const struct wx_state_keys *opener = data[0] & 2 ? &rotated : &keys;
    char path[256];
    size_t n = size - 1;
    if (n >= sizeof path || memchr(data + 1, '\0', n))
        return;
    memcpy(path, data + 1, n);
    path[n] = '\0';
    struct wx_slice bind = bound ? (struct wx_slice){"browser-1", 9} : (struct wx_slice){NULL, 0};
    char out[WX_MAX_STATE + 1];
    struct wx_state sealed, st;
    int rc = wx_state_seal(&keys, path, bind, 600, NOW, out, &sealed);
    CHECK(rc == WX_OK || rc == WX_ERR_LIMIT || rc == WX_ERR_INVALID);
    if (n > (size_t)(WX_STATE_MAX_PATH - (bound ? 8 : 0)))
        CHECK(rc != WX_OK);
    if (rc != WX_OK)
        return;
    size_t len = strlen(out);
    CHECK(len >= 1 && len <= WX_MAX_STATE && alnum(out, len));
    CHECK(wx_state_valid((struct wx_slice){out, len}) == WX_OK);
    CHECK(wx_state_open(opener, (struct wx_slice){out, len}, bind, NOW, &st) == WX_OK);
    CHECK(strcmp(st.return_path, path) == 0 && strcmp(sealed.return_path, path) == 0);
    CHECK(st.expires == NOW + 600 && st.has_binding == bound);
    CHECK(memcmp(st.nonce, sealed.nonce, WX_STATE_NONCE_LEN) == 0);
    CHECK(wx_state_open(opener, (struct wx_slice){out, len}, bind, NOW + 600, &st) ==
          WX_ERR_EXPIRED);
    if (bound) {
        CHECK(wx_state_open(opener, (struct wx_slice){out, len}, (struct wx_slice){"browser-2", 9},
                            NOW, &st) == WX_ERR_INVALID);
        CHECK(wx_state_open(opener, (struct wx_slice){out, len}, (struct wx_slice){NULL, 0}, NOW,
                            &st) == WX_ERR_INVALID);
    }
    /* Flip one character, chosen by the path's length. */
    size_t pos = n % len;
    out[pos] = out[pos] == 'A' ? 'B' : 'A';
    CHECK(wx_state_open(opener, (struct wx_slice){out, len}, bind, NOW, &st) != WX_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    open_any(data, size);
    round_trip(data, size);
    return 0;
}
