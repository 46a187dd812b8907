/* The TLS 1.3 traffic secrets as the text a binary upgrade carries to the new process
 * (ktls_carry.c): every field survives the round trip for each suite, and every text that
 * ktls_keys_export cannot have written is refused. Needs no kernel TLS. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "tlsplice/ktls.h"

#include "../../src/ktls_internal.h" /* to fill and read the keys directly */

/* Offsets of ktls_carry.c's layout, as the rejection cases need them. */
#define OFF_VERSION 0
#define OFF_SUITE 1
#define OFF_LEN 3
#define OFF_FLAGS 4
#define OFF_RX 5
#define OFF_TX (OFF_RX + 48)
#define OFF_EVERY (OFF_TX + 48)

/* Keys of suite `id` with recognisable secrets; tx_ok: we re-key our sending side too. */
static struct ktls_keys *keys_make(uint16_t id, bool tx_ok)
{
	struct ktls_keys *k = OPENSSL_zalloc(sizeof(*k));

	cr_assert(k);
	k->su = ktls_suite_by_id(id);
	cr_assert(k->su);
	k->md = id == 0x1302 ? EVP_sha384() : EVP_sha256();
	k->len = (size_t)EVP_MD_get_size(k->md);
	for (size_t i = 0; i < k->len; i++) {
		k->rx[i] = (unsigned char)(0xa0 + i);
		k->tx[i] = tx_ok ? (unsigned char)(0x10 + i) : 0;
	}
	k->tx_ok = tx_ok;
	k->answer = tx_ok;
	k->every = tx_ok ? 262144 : 0;
	k->next = 5000000000ULL; /* past 32 bits */
	k->counts[0] = 70000;
	k->counts[1] = 3;
	return k;
}

static void text_of(const struct ktls_keys *k, char *out)
{
	cr_assert_eq(ktls_keys_export(k, out, KTLS_KEYS_TEXT_LEN + 1), 0);
	cr_assert_eq(strlen(out), KTLS_KEYS_TEXT_LEN);
	cr_assert_eq(strspn(out, "0123456789abcdef"), KTLS_KEYS_TEXT_LEN);
}

static void round_trip(uint16_t id, bool tx_ok)
{
	struct ktls_keys *k = keys_make(id, tx_ok), *back;
	char text[KTLS_KEYS_TEXT_LEN + 1], again[KTLS_KEYS_TEXT_LEN + 1];

	text_of(k, text);
	back = ktls_keys_import(text, strlen(text));
	cr_assert(back, "0x%04x refused: %s", id, strerror(errno));
	cr_assert_eq(back->su, k->su);
	cr_assert_eq(EVP_MD_get_type(back->md), EVP_MD_get_type(k->md));
	cr_assert_eq(back->len, k->len);
	cr_assert_eq(memcmp(back->rx, k->rx, k->len), 0, "receive secret differs");
	cr_assert_eq(memcmp(back->tx, k->tx, k->len), 0, "send secret differs");
	cr_assert_eq(back->tx_ok, tx_ok);
	cr_assert_eq(back->answer, tx_ok);
	cr_assert_eq(back->every, k->every);
	cr_assert_eq(back->next, k->next);
	cr_assert_eq(ktls_keys_count(back, KTLS_RX), 70000);
	cr_assert_eq(ktls_keys_count(back, KTLS_TX), 3);
	/* an answer owed before the upgrade is still owed after it */
	cr_assert_eq(ktls_rekey_tx_due(back, 0), tx_ok);
	text_of(back, again);
	cr_assert_str_eq(again, text);
	ktls_keys_free(k);
	ktls_keys_free(back);
}

Test(ktls_carry, round_trip_every_suite_both_ways)
{
	round_trip(0x1301, true);
	round_trip(0x1302, true);
	round_trip(0x1303, true);
}

Test(ktls_carry, round_trip_receive_only)
{
	round_trip(0x1301, false);
	round_trip(0x1302, false);
}

/* key_update_bytes goes on counting from where it was: the next re-key is due at the same
 * number of bytes sent, which travel with the connection too. */
Test(ktls_carry, key_update_bytes_due_point_carries)
{
	struct ktls_keys *k = keys_make(0x1301, true), *back;
	char text[KTLS_KEYS_TEXT_LEN + 1];

	k->answer = false;
	k->every = 1000;
	k->next = 4096;
	text_of(k, text);
	back = ktls_keys_import(text, strlen(text));
	cr_assert(back);
	cr_assert_not(ktls_rekey_tx_due(back, 4095));
	cr_assert(ktls_rekey_tx_due(back, 4096));
	ktls_keys_free(k);
	ktls_keys_free(back);
}

static void set_byte(char *text, size_t off, unsigned v)
{
	char hex[3];

	snprintf(hex, sizeof(hex), "%02x", v & 0xff);
	memcpy(text + 2 * off, hex, 2);
}

/* text with one byte changed is refused with EINVAL. */
static void refused_with(const char *valid, size_t off, unsigned v, const char *what)
{
	char text[KTLS_KEYS_TEXT_LEN + 1];

	memcpy(text, valid, sizeof(text));
	set_byte(text, off, v);
	errno = 0;
	cr_assert_null(ktls_keys_import(text, strlen(text)), "taken: %s", what);
	cr_assert_eq(errno, EINVAL, "%s: errno %d", what, errno);
}

Test(ktls_carry, malformed_texts_are_refused)
{
	struct ktls_keys *k = keys_make(0x1301, true), *r = keys_make(0x1303, false);
	char good[KTLS_KEYS_TEXT_LEN + 1], rx_only[KTLS_KEYS_TEXT_LEN + 1];
	char text[KTLS_KEYS_TEXT_LEN + 2];

	text_of(k, good);
	text_of(r, rx_only);
	refused_with(good, OFF_VERSION, 2, "format version 2");
	refused_with(good, OFF_VERSION, 0, "format version 0");
	refused_with(good, OFF_SUITE + 1, 0x04, "suite 0x1304 (AES-128-CCM, not in the kernel)");
	refused_with(good, OFF_SUITE, 0x00, "suite 0x0001");
	refused_with(good, OFF_LEN, 48, "a SHA-256 suite with a 48-byte secret");
	refused_with(good, OFF_LEN, 0, "an empty secret");
	refused_with(good, OFF_LEN, 255, "a secret longer than the room for it");
	refused_with(good, OFF_FLAGS, 4, "an unknown flag");
	refused_with(good, OFF_RX + 32, 1, "a byte past the receive secret");
	refused_with(good, OFF_TX + 47, 1, "a byte past the send secret");
	refused_with(rx_only, OFF_FLAGS, 2, "an answer owed where we cannot send one");
	refused_with(rx_only, OFF_TX, 1, "a send secret where we do not send");
	refused_with(rx_only, OFF_EVERY + 7, 1, "key_update_bytes where we do not send");

	/* length and alphabet */
	cr_assert_null(ktls_keys_import(good, KTLS_KEYS_TEXT_LEN - 1));
	cr_assert_null(ktls_keys_import(good, KTLS_KEYS_TEXT_LEN - 2));
	cr_assert_null(ktls_keys_import(good, 0));
	cr_assert_null(ktls_keys_import(NULL, KTLS_KEYS_TEXT_LEN));
	memcpy(text, good, KTLS_KEYS_TEXT_LEN);
	text[KTLS_KEYS_TEXT_LEN] = '0';
	text[KTLS_KEYS_TEXT_LEN + 1] = '\0';
	cr_assert_null(ktls_keys_import(text, strlen(text)), "one digit too many");
	memcpy(text, good, sizeof(good));
	text[100] = 'g';
	cr_assert_null(ktls_keys_import(text, strlen(text)), "not a hex digit");
	text[100] = ' ';
	cr_assert_null(ktls_keys_import(text, strlen(text)), "a space inside");
	text[100] = '\0';
	cr_assert_null(ktls_keys_import(text, KTLS_KEYS_TEXT_LEN), "a NUL inside");
	/* and the valid ones are taken, so the refusals above are for the change alone */
	ktls_keys_free(ktls_keys_import(good, strlen(good)));
	struct ktls_keys *ok = ktls_keys_import(rx_only, strlen(rx_only));
	cr_assert(ok);
	ktls_keys_free(ok);
	OPENSSL_cleanse(good, sizeof(good));
	OPENSSL_cleanse(rx_only, sizeof(rx_only));
	ktls_keys_free(k);
	ktls_keys_free(r);
}

Test(ktls_carry, export_needs_room_and_keys)
{
	struct ktls_keys *k = keys_make(0x1302, true);
	char out[KTLS_KEYS_TEXT_LEN + 1];

	cr_assert_eq(ktls_keys_export(k, out, KTLS_KEYS_TEXT_LEN), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(ktls_keys_export(NULL, out, sizeof(out)), -1);
	ktls_keys_free(k);
}
