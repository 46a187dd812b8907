/* proxy_tlv: the TLVs of a PROXY v2 header sent on (ALPN, authority, SSL), its CRC32c, and
 * that the accepting parser takes what the builder makes. */
#include <criterion/criterion.h>

#include <string.h>

#include "tlsplice/proxy_in.h"
#include "tlsplice/proxy_tlv.h"

static const unsigned char base[28] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11,
	0x00, 0x0c, 192,  0,    2,    7,    198,  51,   100,  9,    0x9c, 0x40, 0x01, 0xbb,
};

static const struct proxy_tlv_facts facts = {
	.alpn = (const unsigned char *)"h2",
	.alpn_len = 2,
	.authority = "demo.test",
	.version = "TLSv1.3",
	.cipher = "TLS_AES_128_GCM_SHA256",
	.cn = "client.test",
	.cert = true,
	.cert_in_conn = true,
	.verify = 0,
};

Test(proxy_tlv, crc32c_known_answer)
{
	cr_assert_eq(proxy_tlv_crc32c((const unsigned char *)"123456789", 9), 0xe3069283u);
	cr_assert_eq(proxy_tlv_crc32c((const unsigned char *)"", 0), 0);
}

Test(proxy_tlv, every_tlv_in_order)
{
	static const unsigned char want[] = {
		0x01, 0x00, 0x02, 'h', '2',  0x02, 0x00, 0x09, 'd', 'e',  'm',  'o',  '.',
		't',  'e',  's',  't', 0x20, 0x00, 0x36, 0x07, 0,   0,    0,    0, /* SSL */
		0x21, 0x00, 0x07, 'T', 'L',  'S',  'v',  '1',  '.', '3',  0x23, 0x00, 22,
		'T',  'L',  'S',  '_', 'A',  'E',  'S',  '_',  '1', '2',  '8',  '_',  'G',
		'C',  'M',  '_',  'S', 'H',  'A',  '2',  '5',  '6', 0x22, 0x00, 11,   'c',
		'l',  'i',  'e',  'n', 't',  '.',  't',  'e',  's', 't',
	};
	unsigned char h[PROXY_TLV_HEADER_MAX];
	memcpy(h, base, sizeof(base));
	size_t n = proxy_tlv_append(h, sizeof(base), sizeof(h),
				    PROXY_TLV_ALPN | PROXY_TLV_AUTHORITY | PROXY_TLV_SSL, false,
				    &facts);
	cr_assert_eq(n, sizeof(base) + sizeof(want));
	cr_assert_eq(memcmp(h + sizeof(base), want, sizeof(want)), 0);
	cr_assert_eq((h[14] << 8) | h[15], (int)(n - 16));
}

Test(proxy_tlv, no_certificate_says_not_verified)
{
	struct proxy_tlv_facts f = facts;
	unsigned char h[PROXY_TLV_HEADER_MAX];
	f.cert = false;
	memcpy(h, base, sizeof(base));
	size_t n = proxy_tlv_append(h, sizeof(base), sizeof(h), PROXY_TLV_SSL, false, &f);
	cr_assert_gt(n, sizeof(base));
	cr_assert_eq(h[28], 0x20);
	cr_assert_eq(h[31], 0x01, "client: SSL only");
	cr_assert_eq(h[35], 1, "verify is non-zero");
	cr_assert_null(memmem(h, n, "client.test", 11), "a CN without a certificate");
}

Test(proxy_tlv, the_crc_seals_and_the_parser_checks_it)
{
	unsigned char h[PROXY_TLV_HEADER_MAX];
	struct proxy_in_info in;
	char err[128];
	memcpy(h, base, sizeof(base));
	size_t n = proxy_tlv_append(h, sizeof(base), sizeof(h), PROXY_TLV_ALPN | PROXY_TLV_SSL,
				    true, &facts);
	cr_assert_eq(h[n - 7], 0x03);
	cr_assert_eq(proxy_in_parse(h, n, PROXY_IN_V2, &in, err, sizeof(err)), (int)n, "%s", err);
	cr_assert(in.has_addr);
	h[n - 1] ^= 1;
	cr_assert_eq(proxy_in_parse(h, n, PROXY_IN_V2, &in, err, sizeof(err)), -1);
	cr_assert_str_eq(err, "bad PROXY v2 header (CRC32c mismatch)");
	h[n - 1] ^= 1;
	h[20] ^= 1; /* an address byte */
	cr_assert_eq(proxy_in_parse(h, n, PROXY_IN_V2, &in, err, sizeof(err)), -1);
}

Test(proxy_tlv, too_little_room_adds_nothing)
{
	unsigned char h[64];
	memcpy(h, base, sizeof(base));
	cr_assert_eq(proxy_tlv_append(h, sizeof(base), sizeof(h), PROXY_TLV_SSL, true, &facts), 0);
	cr_assert_eq(h[15], 0x0c, "the header was changed");
}
