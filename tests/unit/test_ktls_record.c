/* The record policy (record.h): one verdict per record, the same for the kernel path (which
 * classifies what recvmsg returns) and the userspace path (which maps OpenSSL's failures). */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/ssl.h>

#include "tlsplice/record.h"

static struct record_verdict classify(unsigned version, unsigned type, const uint8_t *buf,
				      size_t len)
{
	struct record_state st = { 0 };
	struct record_verdict v;
	record_classify(version, type, buf, len, &st, &v);
	return v;
}

static void expect_fatal(struct record_verdict v, int alert, const char *text)
{
	cr_assert_eq(v.action, RECORD_FATAL);
	cr_assert_eq(v.alert, alert, "alert %d, want %d", v.alert, alert);
	cr_assert_str_eq(v.text, text);
}

Test(record, data_is_relayed_even_empty)
{
	static const uint8_t data[3] = "abc";
	for (unsigned ver = RECORD_TLS12; ver <= RECORD_TLS13; ver++) {
		cr_assert_eq(classify(ver, RECORD_DATA, data, 3).action, RECORD_RELAY);
		cr_assert_eq(classify(ver, RECORD_DATA, NULL, 0).action, RECORD_RELAY,
			     "an empty record is nothing, not the end");
	}
}

Test(record, thirty_three_empty_records_in_a_row_are_fatal)
{
	static const uint8_t data[1] = "x";
	struct record_state st = { 0 };
	struct record_verdict v;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < RECORD_MAX_EMPTY; i++) {
			record_classify(RECORD_TLS13, RECORD_DATA, NULL, 0, &st, &v);
			cr_assert_eq(v.action, RECORD_RELAY, "empty record %d", i + 1);
		}
		if (round == 0) /* data in between starts the count again */
			record_classify(RECORD_TLS13, RECORD_DATA, data, 1, &st, &v);
	}
	record_classify(RECORD_TLS13, RECORD_DATA, NULL, 0, &st, &v);
	expect_fatal(v, 10, "too many empty records");
}

Test(record, oversized_record)
{
	static uint8_t big[16385];
	expect_fatal(classify(RECORD_TLS13, RECORD_DATA, big, sizeof(big)), 22, "record too long");
	cr_assert_eq(classify(RECORD_TLS13, RECORD_DATA, big, 16384).action, RECORD_RELAY);
}

Test(record, close_notify)
{
	static const uint8_t warn[2] = { 1, 0 }, fatal[2] = { 2, 0 };
	cr_assert_eq(classify(RECORD_TLS12, RECORD_ALERT, warn, 2).action, RECORD_CLOSE_NOTIFY);
	cr_assert_eq(classify(RECORD_TLS13, RECORD_ALERT, warn, 2).action, RECORD_CLOSE_NOTIFY);
	cr_assert_eq(classify(RECORD_TLS13, RECORD_ALERT, fatal, 2).action, RECORD_CLOSE_NOTIFY);
	expect_fatal(classify(RECORD_TLS12, RECORD_ALERT, fatal, 2), -1,
		     "alert from client (level 2, description 0)");
}

Test(record, warning_alerts_tls12_are_ignored_until_the_fifth)
{
	static const uint8_t unknown_ca[2] = { 1, 48 }, data[1] = "x";
	struct record_state st = { 0 };
	struct record_verdict v;
	for (int i = 0; i < RECORD_MAX_WARN - 1; i++) {
		record_classify(RECORD_TLS12, RECORD_ALERT, unknown_ca, 2, &st, &v);
		cr_assert_eq(v.action, RECORD_IGNORE);
	}
	record_classify(RECORD_TLS12, RECORD_DATA, data, 1, &st, &v); /* resets the count */
	for (int i = 0; i < RECORD_MAX_WARN - 1; i++) {
		record_classify(RECORD_TLS12, RECORD_ALERT, unknown_ca, 2, &st, &v);
		cr_assert_eq(v.action, RECORD_IGNORE);
	}
	record_classify(RECORD_TLS12, RECORD_ALERT, unknown_ca, 2, &st, &v);
	expect_fatal(v, 10, "too many warning alerts");
}

Test(record, tls13_only_user_canceled_is_a_warning)
{
	static const uint8_t canceled[2] = { 1, 90 }, canceled_fatal[2] = { 2, 90 },
			     unknown_ca[2] = { 1, 48 };
	cr_assert_eq(classify(RECORD_TLS13, RECORD_ALERT, canceled, 2).action, RECORD_IGNORE);
	cr_assert_eq(classify(RECORD_TLS13, RECORD_ALERT, canceled_fatal, 2).action, RECORD_IGNORE);
	expect_fatal(classify(RECORD_TLS13, RECORD_ALERT, unknown_ca, 2), -1,
		     "alert from client (level 1, description 48)");
}

Test(record, fatal_alerts_and_malformed_alerts)
{
	static const uint8_t hs_failure[2] = { 2, 40 }, no_reneg[2] = { 1, 100 },
			     bad_level[2] = { 3, 40 }, three[3] = { 2, 40, 0 };
	expect_fatal(classify(RECORD_TLS12, RECORD_ALERT, hs_failure, 2), -1,
		     "alert from client (level 2, description 40)");
	expect_fatal(classify(RECORD_TLS12, RECORD_ALERT, no_reneg, 2), 40,
		     "alert from client (level 1, description 100)");
	expect_fatal(classify(RECORD_TLS13, RECORD_ALERT, bad_level, 2), 47, "bad alert record");
	expect_fatal(classify(RECORD_TLS13, RECORD_ALERT, three, 3), 50, "bad alert record");
	expect_fatal(classify(RECORD_TLS12, RECORD_ALERT, three, 1), 50, "bad alert record");
}

Test(record, unexpected_handshake_messages)
{
	static const uint8_t nst[] = { 4, 0, 0, 1, 0 }, fin[] = { 20, 0, 0, 0 },
			     garbage[] = { 0xde, 0xad, 0xbe, 0xef }, hello[] = { 1, 0, 0, 0 };
	for (unsigned ver = RECORD_TLS12; ver <= RECORD_TLS13; ver++) {
		expect_fatal(classify(ver, RECORD_HANDSHAKE, nst, sizeof(nst)), 10,
			     "unexpected handshake message");
		expect_fatal(classify(ver, RECORD_HANDSHAKE, fin, sizeof(fin)), 10,
			     "unexpected handshake message");
		expect_fatal(classify(ver, RECORD_HANDSHAKE, garbage, sizeof(garbage)), 10,
			     "unexpected handshake message");
		expect_fatal(classify(ver, RECORD_HANDSHAKE, NULL, 0), 10,
			     "unexpected handshake message");
	}
	expect_fatal(classify(RECORD_TLS13, RECORD_HANDSHAKE, hello, sizeof(hello)), 10,
		     "unexpected handshake message");
}

Test(record, tls12_renegotiation_is_refused_with_a_warning)
{
	static const uint8_t hello[] = { 1, 0, 0, 2, 3, 3 };
	struct record_verdict v = classify(RECORD_TLS12, RECORD_HANDSHAKE, hello, sizeof(hello));
	cr_assert_eq(v.action, RECORD_WARN);
	cr_assert_eq(v.alert, 100);
}

Test(record, key_update)
{
	static const uint8_t ok[] = { 24, 0, 0, 1, 1 }, bad_value[] = { 24, 0, 0, 1, 2 },
			     bad_len[] = { 24, 0, 0, 2, 0, 0 };
	cr_assert_eq(classify(RECORD_TLS13, RECORD_HANDSHAKE, ok, sizeof(ok)).action,
		     RECORD_KEY_UPDATE);
	expect_fatal(classify(RECORD_TLS13, RECORD_HANDSHAKE, bad_value, sizeof(bad_value)), 47,
		     "bad KeyUpdate");
	expect_fatal(classify(RECORD_TLS13, RECORD_HANDSHAKE, bad_len, sizeof(bad_len)), 50,
		     "bad KeyUpdate");
	expect_fatal(classify(RECORD_TLS12, RECORD_HANDSHAKE, ok, sizeof(ok)), 10,
		     "unexpected handshake message");
}

Test(record, other_types_are_fatal)
{
	static const uint8_t one[1] = { 1 };
	static const unsigned types[] = { 20, 24, 25, 0, 255 };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		expect_fatal(classify(RECORD_TLS13, types[i], one, 1), 10, "unexpected record");
}

Test(record, kernel_errors)
{
	struct record_verdict v;
	record_from_errno(EBADMSG, &v);
	expect_fatal(v, 20, "record failed to decrypt");
	record_from_errno(EMSGSIZE, &v);
	expect_fatal(v, 22, "record too long");
	record_from_errno(ECONNRESET, &v);
	expect_fatal(v, -1, strerror(ECONNRESET));
	record_from_errno(EKEYEXPIRED, &v);
	cr_assert_eq(v.action, RECORD_KEY_UPDATE);
}

Test(record, openssl_failures_in_the_same_words)
{
	struct record_verdict v;
	cr_assert(record_from_openssl(SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC, 23, -1, -1, &v));
	expect_fatal(v, 20, "record failed to decrypt");
	cr_assert(record_from_openssl(SSL_R_DATA_LENGTH_TOO_LONG, 23, -1, -1, &v));
	expect_fatal(v, 22, "record too long");
	cr_assert(record_from_openssl(SSL_R_UNEXPECTED_MESSAGE, 22, -1, -1, &v));
	expect_fatal(v, 10, "unexpected handshake message");
	cr_assert(record_from_openssl(SSL_R_CCS_RECEIVED_EARLY, 20, -1, -1, &v));
	expect_fatal(v, 10, "unexpected record");
	cr_assert(record_from_openssl(SSL_R_BAD_RECORD_TYPE, 23, -1, -1, &v));
	expect_fatal(v, 10, "unexpected record");
	cr_assert(record_from_openssl(SSL_AD_REASON_OFFSET + 48, 21, 1, 48, &v));
	expect_fatal(v, -1, "alert from client (level 1, description 48)");
	cr_assert(record_from_openssl(SSL_R_TOO_MANY_WARN_ALERTS, 21, 1, 48, &v));
	expect_fatal(v, 10, "too many warning alerts");
	cr_assert(!record_from_openssl(SSL_R_WRONG_VERSION_NUMBER, 23, -1, -1, &v),
		  "not a record-policy failure: OpenSSL's text stays");
}

/* Every byte string is classified without reading past it; the verdict is well formed. */
Test(record, any_bytes_give_a_well_formed_verdict)
{
	uint8_t buf[8];
	struct record_state st = { 0 };
	for (unsigned type = 0; type < 256; type++) {
		for (unsigned b = 0; b < 256; b += 17) {
			memset(buf, (int)b, sizeof(buf));
			for (size_t len = 0; len <= sizeof(buf); len++) {
				struct record_verdict v;
				record_classify(type & 1 ? RECORD_TLS13 : RECORD_TLS12, type, buf,
						len, &st, &v);
				cr_assert(v.action <= RECORD_FATAL);
				cr_assert(v.action != RECORD_FATAL || v.text[0]);
				cr_assert(v.alert >= -1 && v.alert <= 255);
			}
		}
	}
}
