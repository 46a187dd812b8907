/* PROXY v2 TLVs (haproxy.org's proxy-protocol.txt, section 2.2): what tlsplice knows of the
 * client's TLS session, told to the backend after the addresses. */
#include "tlsplice/proxy_tlv.h"

#include <string.h>

#define PP2_TYPE_ALPN 0x01
#define PP2_TYPE_AUTHORITY 0x02
#define PP2_TYPE_CRC32C 0x03
#define PP2_TYPE_SSL 0x20
#define PP2_SUBTYPE_SSL_VERSION 0x21
#define PP2_SUBTYPE_SSL_CN 0x22
#define PP2_SUBTYPE_SSL_CIPHER 0x23
#define PP2_CLIENT_SSL 0x01
#define PP2_CLIENT_CERT_CONN 0x02
#define PP2_CLIENT_CERT_SESS 0x04

#define TLV_VALUE_MAX 255u /* ALPN, SNI and CN are cut here, far above real ones */

/* Writes one TLV at out (room checked by the caller's running total); its size. */
static size_t tlv_put(unsigned char *out, unsigned type, const void *v, size_t len)
{
	out[0] = (unsigned char)type;
	out[1] = (unsigned char)(len >> 8);
	out[2] = (unsigned char)len;
	if (len)
		memcpy(out + 3, v, len);
	return 3 + len;
}

static size_t text_len(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n > TLV_VALUE_MAX ? TLV_VALUE_MAX : n;
}

/* The SSL TLV: client flags, verify result, then version, cipher and CN sub-TLVs. */
static size_t tlv_ssl(unsigned char *out, const struct proxy_tlv_facts *f)
{
	unsigned char *p = out + 3;
	uint32_t verify = f->cert ? (uint32_t)f->verify : 1; /* non-zero: no verified cert */
	p[0] = PP2_CLIENT_SSL;
	if (f->cert)
		p[0] |= PP2_CLIENT_CERT_SESS | (f->cert_in_conn ? PP2_CLIENT_CERT_CONN : 0);
	p[1] = (unsigned char)(verify >> 24);
	p[2] = (unsigned char)(verify >> 16);
	p[3] = (unsigned char)(verify >> 8);
	p[4] = (unsigned char)verify;
	p += 5;
	if (text_len(f->version))
		p += tlv_put(p, PP2_SUBTYPE_SSL_VERSION, f->version, text_len(f->version));
	if (text_len(f->cipher))
		p += tlv_put(p, PP2_SUBTYPE_SSL_CIPHER, f->cipher, text_len(f->cipher));
	if (f->cert && text_len(f->cn))
		p += tlv_put(p, PP2_SUBTYPE_SSL_CN, f->cn, text_len(f->cn));
	size_t len = (size_t)(p - out) - 3;
	out[0] = PP2_TYPE_SSL;
	out[1] = (unsigned char)(len >> 8);
	out[2] = (unsigned char)len;
	return 3 + len;
}

/* The most the TLVs of mask can take for f: checked before anything is written. */
static size_t tlv_room(unsigned mask, bool crc, const struct proxy_tlv_facts *f)
{
	size_t alpn = f->alpn_len > TLV_VALUE_MAX ? TLV_VALUE_MAX : f->alpn_len;
	size_t n = crc ? 7 : 0;
	if (mask & PROXY_TLV_ALPN)
		n += 3 + alpn;
	if (mask & PROXY_TLV_AUTHORITY)
		n += 3 + text_len(f->authority);
	if (mask & PROXY_TLV_SSL)
		n += 3 + 5 + 9 + text_len(f->version) + text_len(f->cipher) + text_len(f->cn);
	return n;
}

size_t proxy_tlv_append(unsigned char *hdr, size_t len, size_t cap, unsigned mask, bool crc,
			const struct proxy_tlv_facts *f)
{
	static const unsigned char zero[4] = { 0 };
	unsigned char *p = hdr + len;
	if (len < 16 || len + tlv_room(mask, crc, f) > cap)
		return 0;
	if ((mask & PROXY_TLV_ALPN) && f->alpn_len)
		p += tlv_put(p, PP2_TYPE_ALPN, f->alpn,
			     f->alpn_len > TLV_VALUE_MAX ? TLV_VALUE_MAX : f->alpn_len);
	if ((mask & PROXY_TLV_AUTHORITY) && text_len(f->authority))
		p += tlv_put(p, PP2_TYPE_AUTHORITY, f->authority, text_len(f->authority));
	if (mask & PROXY_TLV_SSL)
		p += tlv_ssl(p, f);
	unsigned char *sum = crc ? p + 3 : NULL;
	if (crc)
		p += tlv_put(p, PP2_TYPE_CRC32C, zero, 4);
	size_t total = (size_t)(p - hdr);
	hdr[14] = (unsigned char)((total - 16) >> 8);
	hdr[15] = (unsigned char)(total - 16);
	if (sum) { /* over the whole header with the checksum field zero, as the spec says */
		uint32_t c = proxy_tlv_crc32c(hdr, total);
		sum[0] = (unsigned char)(c >> 24);
		sum[1] = (unsigned char)(c >> 16);
		sum[2] = (unsigned char)(c >> 8);
		sum[3] = (unsigned char)c;
	}
	return total;
}

uint32_t proxy_tlv_crc32c(const unsigned char *buf, size_t len)
{
	uint32_t crc = 0xffffffffu;
	for (size_t i = 0; i < len; i++) {
		crc ^= buf[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
	}
	return ~crc;
}
